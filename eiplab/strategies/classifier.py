"""Label augmentation, steps 1-2: the auxiliary K+1-class classifier and pool selection.

The classifier has the same backbone type as the energy network and a graph-level head with
K+1 logits (EIP 0..K-1, or "none"). It is trained with cross-entropy on the DFT-labelled
training configs (labels from :func:`best_eip_labels`), the slanted triangular schedule, and
the checkpoint with the best validation accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F  # noqa: N812

from .. import keys
from ..graphs import make_loader
from ..models import ModelConfig, build_model
from ..training import TrainSettings, model_inputs, predict, prepare_for_fit, seed_everything, train
from .experiment import Experiment
from .labels import AUTO, DEFAULT_TAU, auto_tau, best_eip_labels

if TYPE_CHECKING:
    from torch_geometric.data import Batch
    from torch_geometric.loader import DataLoader

CLASS = "eip_class"  # long [1] per graph: classifier target (0..K-1 EIP, K = none)
NONE_CLASS = "none"


def class_names(model_ids: list[str]) -> list[str]:
    """Class index -> name: the EIP ids, then "none"."""
    return list(model_ids) + [NONE_CLASS]


def resolve_tau(exp: Experiment, tau: float | str = DEFAULT_TAU) -> float:
    """tau in eV/atom: a number as given, or ``"auto"`` resolved on the experiment's TRAINING
    configs and EIPs (:func:`eiplab.strategies.labels.auto_tau`)."""
    if tau == AUTO:
        train = exp.parts[keys.TRAIN]
        return auto_tau(exp.aligned_for(keys.TRAIN).to_numpy(), train.energies_dft(), train.n_atoms())
    if isinstance(tau, str):
        raise ValueError(f"tau must be a number (eV/atom) or {AUTO!r}, not {tau!r}")
    return float(tau)


def classifier_targets(exp: Experiment, part: str, tau: float = DEFAULT_TAU) -> np.ndarray:
    """Class labels of the DFT-labelled configs of ``part`` (aligned energies; tau in eV/atom)."""
    configs = exp.parts[part]
    return best_eip_labels(exp.aligned_for(part).to_numpy(), configs.energies_dft(), configs.n_atoms(), tau)


def cross_entropy(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy between K+1 logits [n_configs, K+1] and ``eip_class``."""
    return F.cross_entropy(prediction, batch[CLASS].reshape(-1))


@torch.no_grad()
def accuracy_metrics(model: torch.nn.Module, loader: DataLoader, device: torch.device | str) -> dict[str, float]:
    """Validation accuracy (fraction of configs whose argmax is their class)."""
    model.eval()
    hit, total = 0, 0
    for batch in loader:
        batch = batch.to(device)
        hit += int((model(batch).argmax(dim=1) == batch[CLASS].reshape(-1)).sum())
        total += int(batch[CLASS].numel())
    return {"val_accuracy": hit / total if total else float("nan")}


def _graphs_with_classes(exp: Experiment, part: str, config: ModelConfig, tau: float):
    graphs = model_inputs(exp.parts[part], config, target=None, progress=False)
    for g, c in zip(graphs, classifier_targets(exp, part, tau), strict=True):
        g[CLASS] = torch.tensor([int(c)])
    return graphs


@dataclass
class ClassifierResult:
    """Trained classifier and its validation accuracy; ``class_counts``: training labels per class;
    ``tau``: the "none" threshold used, eV/atom."""

    model: torch.nn.Module
    val_accuracy: float
    class_counts: pd.Series
    history: list
    tau: float = DEFAULT_TAU


def train_classifier(
    exp: Experiment,
    config: ModelConfig,
    settings: TrainSettings,
    *,
    tau: float | str = DEFAULT_TAU,
    out_dir: str | Path | None = None,
) -> ClassifierResult:
    """Train the K+1-class classifier on TRAIN, select on VAL accuracy (``tau``: eV/atom or
    ``"auto"``, resolved on TRAIN by :func:`resolve_tau`)."""
    tau = resolve_tau(exp, tau)
    k = len(exp.model_ids)
    config = config.replace(n_out=k + 1, head="graph")
    settings = replace(settings, schedule="slanted_triangular", select_on="val_accuracy", select_mode="max")
    train_graphs = _graphs_with_classes(exp, keys.TRAIN, config, tau)
    val_graphs = _graphs_with_classes(exp, keys.VAL, config, tau)
    seed_everything(settings.seed)
    model = build_model(config)
    prepare_for_fit(model, train_graphs, energy_baseline=False)  # outputs are logits: no energy baseline
    result = train(
        model,
        make_loader(train_graphs, settings.batch_size, shuffle=True, seed=settings.seed),
        make_loader(val_graphs, settings.batch_size),
        cross_entropy,
        settings,
        out_dir=out_dir,
        metrics_fn=accuracy_metrics,
        run_info={"strategy": "la-classifier", "tau": tau, "classes": class_names(exp.model_ids)},
    )
    labels = np.array([int(g[CLASS]) for g in train_graphs])
    counts = pd.Series(np.bincount(labels, minlength=k + 1), index=class_names(exp.model_ids), name="train_configs")
    return ClassifierResult(result.model, float(result.best_metrics.get("val_accuracy", np.nan)), counts, result.history,
                            tau)


def select_pool(classifier: torch.nn.Module, exp: Experiment, device: str = "auto", part: str = keys.POOL) -> pd.DataFrame:
    """Run the classifier on every pool config; keep those whose argmax is an EIP.

    ``part``: another part of the split to run it on -- only for the audit (Table 6) of datasets
    whose pool has no DFT: their held-out TEST configs (never used to train or choose anything).

    Returns:
        DataFrame indexed by config_id of ALL configs of ``part`` with columns ``eip_class`` (index),
        ``model_id`` (or "none"), ``confidence`` (softmax probability of the chosen class),
        ``label_energy`` (the chosen EIP's aligned energy, eV; NaN for "none") and ``selected``.
        A predicted EIP whose energy is NaN/inf for that config is never selected.
    """
    pool = exp.parts[part]
    logits = predict(classifier, pool, device=device)
    logits = np.atleast_2d(logits)
    prob = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    chosen = prob.argmax(axis=1)
    names = class_names(exp.model_ids)
    aligned = exp.aligned_for(part).to_numpy()
    k = len(exp.model_ids)
    label = np.full(len(pool), np.nan)
    is_eip = chosen < k
    label[is_eip] = aligned[np.flatnonzero(is_eip), chosen[is_eip]]
    selected = is_eip & np.isfinite(label)
    return pd.DataFrame(
        {
            CLASS: chosen,
            "model_id": [names[c] for c in chosen],
            "confidence": prob[np.arange(len(pool)), chosen],
            "label_energy": label,
            keys.N_ATOMS: pool.n_atoms(),
            "selected": selected,
        },
        index=pd.Index(pool.ids, name=keys.CONFIG_ID),
    )
