"""What pretraining on EIPs teaches the network: representation maps (paper Figures 6-8).

Every configuration is embedded by a network's representation (``model.representation``: the
sum of its atom features, divided by the atom count by default so that the embedding, like the
energy per atom, does not grow with the cell size). Two networks of the same architecture are
compared: a randomly initialised one and the MP-pretrained one (multi-task pretraining on EIP
energies of the pool configs; no DFT). The embeddings are

- drawn as t-SNE maps coloured by the DFT energy per atom or by phase (the paper's figures);
- scored by :func:`knn_energy_error`: the cross-validated MAE (eV/atom) of a k-nearest-neighbour
  regression of the DFT energy per atom in representation space. A lower error means the energy
  varies more smoothly over the embedding, i.e. the representation already "knows" the energy
  before any DFT training. The MAE of predicting the mean energy is the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ase
import numpy as np
import pandas as pd
import torch

from .. import keys
from ..data import ConfigSet
from ..graphs import make_loader
from ..models import EnergyModel, ModelConfig, build_model
from ..training import model_inputs, resolve_device, seed_everything

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ..strategies.experiment import Experiment
    from ..workflows import GridConfig

RANDOM_INIT = "random init"
MP_PRETRAINED = "MP-pretrained"
MEAN_PREDICTOR = "mean predictor (reference)"
ENERGY_PER_ATOM = "energy_per_atom"  # eV/atom, DFT
NETWORK = "network"
MODEL = "model"
TSNE_X, TSNE_Y = "tsne_x", "tsne_y"
KNN_MAE = "knn_mae_atom"  # eV/atom
RELATIVE = "relative_to_mean"  # kNN MAE / MAE of the mean predictor
SUBSETS = ("non-pool", "held-out", "all")


# --- embeddings --------------------------------------------------------------------------------
@torch.no_grad()
def embeddings(
    model: EnergyModel,
    configs: Sequence[ase.Atoms],
    *,
    device: str = "auto",
    batch_size: int = 64,
    per_atom: bool = False,
) -> np.ndarray:
    """Per-configuration representation of ``model``, float64 [n_configs, width].

    ``per_atom=False`` returns ``model.representation`` (sum of atom features); ``True``
    divides it by the atom count (mean atom feature). The model is put in eval mode on
    ``device``; configs are kept in input order.
    """
    items = list(configs)
    if not items:
        return np.zeros((0, model.representation_module.width))
    target = resolve_device(device)
    model.to(target).eval()
    loader = make_loader(model_inputs(items, model.config, target=None, progress=False), batch_size)
    out = np.concatenate(
        [model.representation(batch.to(target)).double().cpu().numpy() for batch in loader]
    )
    if per_atom:
        out = out / np.array([len(a) for a in items], dtype=float)[:, None]
    return out


def random_network(config: ModelConfig, seed: int = 0, like: EnergyModel | None = None) -> EnergyModel:
    """A randomly initialised network of ``config`` (initialisation seeded with ``seed``).

    ``like``: a trained network whose fitted input scaling (SOAPNet's feature mean/std; every
    buffer of its representation) the random one takes, so that the two differ only in their
    learned weights.
    """
    seed_everything(seed)
    network = build_model(config)
    if like is not None:
        buffers = dict(like.representation_module.named_buffers())
        for name, buffer in network.representation_module.named_buffers():
            buffer.copy_(buffers[name].to(buffer.device))
    return network.eval()


# --- t-SNE and the kNN smoothness score ---------------------------------------------------------
def _standardised(features: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(np.asarray(features, dtype=float))


def tsne_map(
    features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000
) -> np.ndarray:
    """2-d t-SNE coordinates [n, 2] of standardised ``features`` [n, d] (PCA init, seeded).

    The perplexity is clipped to (n - 1) / 3 (at least 1) so tiny sets work; ``max_iter``
    (>= 250) is the number of optimisation steps.
    """
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 2:
        raise ValueError(f"t-SNE needs at least 2 configurations, got {n}")
    x = _standardised(features)
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    perplexity = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca" if x.shape[1] >= 2 else "random",
        random_state=seed,
        learning_rate="auto",
        max_iter=max_iter,
    )
    return tsne.fit_transform(x)


def _check_energies(energy_per_atom: np.ndarray, n_features: int, folds: int) -> np.ndarray:
    y = np.asarray(energy_per_atom, dtype=float).ravel()
    if len(y) != n_features:
        raise ValueError(f"{n_features} feature rows but {len(y)} energies")
    if not np.isfinite(y).all():
        raise ValueError(
            f"{int((~np.isfinite(y)).sum())} energies per atom are NaN or inf; embed DFT-labelled configs only"
        )
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if len(y) < 2 * folds:
        raise ValueError(f"need at least 2 * folds = {2 * folds} configurations, got {len(y)}")
    return y


def knn_energy_error(
    features: np.ndarray, energy_per_atom: np.ndarray, *, k: int = 10, folds: int = 5, seed: int = 0
) -> float:
    """Cross-validated MAE (eV/atom) of a k-NN regression of ``energy_per_atom`` on ``features``.

    Features are standardised within each training fold; ``k`` is clipped to the smallest
    training fold. Lower = the energy varies more smoothly over the representation.
    """
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=float)
    y = _check_energies(energy_per_atom, len(x), folds)
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    k = max(1, min(int(k), len(y) - int(np.ceil(len(y) / folds))))
    pipe = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k))
    predicted = cross_val_predict(
        pipe, x, y, cv=KFold(n_splits=folds, shuffle=True, random_state=seed)
    )
    return float(np.mean(np.abs(predicted - y)))


def mean_predictor_error(energy_per_atom: np.ndarray) -> float:
    """MAE (eV/atom) of predicting the mean energy per atom: the reference for the k-NN error."""
    y = np.asarray(energy_per_atom, dtype=float)
    if not np.isfinite(y).all():
        raise ValueError("energies per atom contain NaN or inf; embed DFT-labelled configs only")
    return float(np.mean(np.abs(y - y.mean())))


# --- which configurations, which networks --------------------------------------------------------
def configs_to_map(
    exp: Experiment, which: str = "non-pool", *, max_configs: int | None = None, seed: int = 0
) -> ConfigSet:
    """The DFT-labelled configs of an :class:`~eiplab.strategies.Experiment` to embed.

    ``which``: "non-pool" (train + val + test: never seen by pretraining, which uses the pool
    only), "held-out" (val + test) or "all" (every config with a DFT energy, pool included).
    At most ``max_configs`` are kept (a seeded random sample, in dataset order).
    """
    if which not in SUBSETS:
        raise ValueError(f"unknown subset {which!r}; choose from {SUBSETS}")
    parts = {"non-pool": (keys.TRAIN, keys.VAL, keys.TEST), "held-out": (keys.VAL, keys.TEST)}.get(
        which
    )
    wanted = set(exp.split.index[exp.split.isin(parts)]) if parts else set(exp.configs.ids)
    ids = [
        cid
        for cid, e in zip(exp.configs.ids, exp.configs.energies_dft(), strict=True)
        if cid in wanted and np.isfinite(e)
    ]
    if max_configs is not None and len(ids) > max_configs:
        keep = set(
            np.random.default_rng(seed).choice(len(ids), size=max_configs, replace=False).tolist()
        )
        ids = [cid for i, cid in enumerate(ids) if i in keep]
    return exp.configs.subset(ids)


def networks_to_compare(
    grid_dir: str | Path,
    model: str,
    exp: Experiment,
    grid: GridConfig,
    *,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, EnergyModel]:
    """{"random init": a fresh network, "MP-pretrained": the grid's pretrained backbone} of ``model``.

    The backbone is loaded from ``grid_dir/pretrain/<model>/`` or pretrained there first; the
    random network shares its fitted input scaling (only the learned weights differ).
    """
    from ..workflows import pretrained_backbone, store_of

    pretrained = pretrained_backbone(store_of(grid_dir), model, exp, grid, log=log)
    return {RANDOM_INIT: random_network(pretrained.config, seed, like=pretrained), MP_PRETRAINED: pretrained}


# --- maps, scores and the figure ----------------------------------------------------------------
def representation_maps(
    networks: Mapping[str, EnergyModel],
    configs: ConfigSet,
    *,
    model: str | None = None,
    per_atom: bool = True,
    seed: int = 0,
    perplexity: float = 30.0,
    k: int = 10,
    folds: int = 5,
    device: str = "auto",
    batch_size: int = 64,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """t-SNE maps and k-NN smoothness of each network's embedding of ``configs``.

    Returns ``(maps, summary)``. ``maps``: one row per network and config with config_id,
    network, tsne_x, tsne_y, energy_per_atom (eV/atom, DFT), phase, n_atoms. ``summary``: one
    row per network (plus the mean-predictor reference) with knn_mae_atom (eV/atom) and its
    ratio to the reference. ``model`` (a name) adds a "model" column to both.
    """
    energy = configs.energies_dft() / configs.n_atoms()
    reference = mean_predictor_error(energy)
    base = pd.DataFrame(
        {
            keys.CONFIG_ID: configs.ids,
            ENERGY_PER_ATOM: energy,
            keys.PHASE: [a.info.get(keys.PHASE, "unknown") for a in configs],
            keys.N_ATOMS: configs.n_atoms(),
        }
    )
    maps, rows = [], []
    for name, net in networks.items():
        features = embeddings(net, configs, device=device, batch_size=batch_size, per_atom=per_atom)
        xy = tsne_map(features, seed=seed, perplexity=perplexity)
        maps.append(base.assign(**{NETWORK: name, TSNE_X: xy[:, 0], TSNE_Y: xy[:, 1]}))
        rows.append(
            {
                NETWORK: name,
                KNN_MAE: knn_energy_error(features, energy, k=k, folds=folds, seed=seed),
            }
        )
    rows.append({NETWORK: MEAN_PREDICTOR, KNN_MAE: reference})
    summary = pd.DataFrame(rows).assign(
        **{RELATIVE: lambda d: d[KNN_MAE] / reference, "n_configs": len(configs), "k": k}
    )
    columns = [keys.CONFIG_ID, NETWORK, TSNE_X, TSNE_Y, ENERGY_PER_ATOM, keys.PHASE, keys.N_ATOMS]
    maps_df = pd.concat(maps, ignore_index=True)[columns] if maps else pd.DataFrame(columns=columns)
    if model is not None:
        maps_df.insert(0, MODEL, model)
        summary.insert(0, MODEL, model)
    return maps_df, summary


def tsne_figure(maps: pd.DataFrame, color: str = ENERGY_PER_ATOM, title: str | None = None) -> go.Figure:
    """Plotly scatter of t-SNE maps, one panel per network (rows per model if several).

    ``color``: "energy_per_atom" (continuous, eV/atom) or "phase" (categorical). Hover shows
    the config id, energy per atom and phase. t-SNE axes carry no units.
    """
    import plotly.express as px

    if color not in maps.columns:
        raise ValueError(f"cannot colour by {color!r}; columns are {list(maps.columns)}")
    several = MODEL in maps.columns and maps[MODEL].nunique() > 1
    fig = px.scatter(
        maps,
        x=TSNE_X,
        y=TSNE_Y,
        color=color,
        facet_col=NETWORK,
        facet_row=MODEL if several else None,
        hover_data={
            keys.CONFIG_ID: True,
            ENERGY_PER_ATOM: ":.4f",
            keys.PHASE: True,
            TSNE_X: False,
            TSNE_Y: False,
        },
        color_continuous_scale="Viridis",
        labels={ENERGY_PER_ATOM: "E_DFT / atom (eV)", TSNE_X: "t-SNE 1", TSNE_Y: "t-SNE 2"},
        title=title,
    )
    fig.update_xaxes(matches=None, showticklabels=False)
    fig.update_yaxes(matches=None, showticklabels=False)
    fig.update_traces(marker={"size": 6, "opacity": 0.85})
    return fig
