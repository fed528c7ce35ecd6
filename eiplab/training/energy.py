"""The baseline recipe (paper A.4): per-species energy baseline, graphs, fit and predict.

``fit_energy_model`` fits a per-species linear energy baseline on the training configs
(eV/atom, least squares on species counts), trains on DFT targets, and the model predicts
total energies including the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ase
import numpy as np
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from eiplab import keys
from eiplab.graphs.build import FORCES, Z, make_loader
from eiplab.graphs.inputs import build_graphs
from eiplab.models.base import EnergyModel
from eiplab.models.registry import ModelConfig, build_model, representation_class

from .evaluate import (
    LossFn,
    energy_force_loss,
    energy_force_metrics,
    energy_loader_metrics,
    energy_mse,
    needs_position_grad,
    predict_loader,
)
from .loop import Callback, train
from .prepare import prepare_for_fit
from .records import (
    RECORD_FILE,
    RUN_BASELINE,
    RUN_FORCE_WEIGHT,
    RUN_METRICS,
    RUN_N_TEST,
    RUN_N_TRAIN,
    RUN_N_VAL,
    RUN_STRATEGY,
    TEST_PREFIX,
    VAL_LOSS,
    VAL_MAE_CONFIG,
    write_run_record,
)
from .settings import TrainSettings, resolve_device, seed_everything, train_settings


def complete_config(config: ModelConfig, configs: Sequence[ase.Atoms] | Sequence[Data]) -> ModelConfig:
    """Fill what a config needs from the data: SOAPNet's SOAP settings (species, length).

    ``configs`` must be ``ase.Atoms`` when SOAP settings are missing (pass the whole dataset so
    that every split and strategy shares one feature layout); other configs pass through.
    """
    needs_soap = getattr(representation_class(config.name), "input_features", None) == "soap"
    if not needs_soap or config.soap is not None:
        return config
    from eiplab.graphs.soap import SoapSettings, n_soap_features

    atoms = [a for a in configs if isinstance(a, ase.Atoms)]
    if len(atoms) != len(configs):
        raise ValueError(
            f"{config.name}: SOAP settings must be completed from ase.Atoms; call "
            "complete_config(config, configs) before building graphs"
        )
    soap = SoapSettings(r_cut=config.cutoff).with_species(atoms)
    return config.replace(soap=soap.to_dict(), n_features=n_soap_features(soap))


# --- prediction ---------------------------------------------------------------------------------
def model_inputs(
    configs: Sequence[ase.Atoms],
    config: ModelConfig,
    *,
    target: str | None = keys.ENERGY_DFT,
    progress: bool = False,
    forces: bool = False,
) -> list[Data]:
    """Graphs for ``configs`` as ``config``'s model needs them (SOAP for SOAPNet; the DFT forces
    as ``forces`` [n_atoms, 3] when ``forces``)."""
    return build_graphs(configs, config.cutoff, soap=config.soap, target=target, progress=progress, forces=forces)


def predict(
    model: EnergyModel,
    data: DataLoader | Sequence[Data] | Sequence[ase.Atoms],
    *,
    batch_size: int = 64,
    device: str = "auto",
) -> np.ndarray:
    """Model outputs in input order: [n_configs] for 1 output (eV), else [n_configs, n_out].

    ``data`` is a non-shuffling loader, a list of graphs, or a list of ``ase.Atoms`` (graphs
    are then built with the model's cutoff and SOAP settings).
    """
    if isinstance(data, DataLoader):
        loader = data
    else:
        items = list(data)
        if items and isinstance(items[0], ase.Atoms):
            items = model_inputs(items, model.config, target=None)
        loader = make_loader(items, batch_size)
    values = predict_loader(model.to(resolve_device(device)), loader, resolve_device(device))
    return values[:, 0] if values.shape[1] == 1 else values


# --- the baseline recipe ------------------------------------------------------------------------
@dataclass
class FitResult:
    """What :func:`fit_energy_model` returns.

    Attributes:
        model: trained model (best validation checkpoint).
        history: per-epoch ``train_loss``, ``val_mae_config``, ``val_mae_atom``, ``lr``, ...
        test_metrics: ``{"test_mae_config": eV, "test_mae_atom": eV/atom}`` (empty without test).
        baseline: fitted per-species energies {Z: eV/atom}.
        record: the run record.
    """

    model: EnergyModel
    history: list[dict[str, float]]
    test_metrics: dict[str, float]
    baseline: dict[int, float]
    record: dict[str, Any]


def _limit(items: Sequence, settings: TrainSettings) -> list:
    items = list(items)
    if settings.max_configs is None or len(items) <= settings.max_configs:
        return items
    order = np.random.default_rng(settings.seed).permutation(len(items))[: settings.max_configs]
    return [items[k] for k in sorted(order)]


def _as_graphs(items: Sequence, config: ModelConfig, progress: bool, forces: bool = False) -> list[Data]:
    items = list(items)
    if items and isinstance(items[0], ase.Atoms):
        return model_inputs(items, config, progress=progress, forces=forces)
    if forces and items and getattr(items[0], FORCES, None) is None:
        raise ValueError("force training needs graphs with forces: pass configurations, or graphs built with "
                         "build_graphs(..., forces=True)")
    return items


def _species(items: Sequence) -> set[int]:
    found: set[int] = set()
    for item in items:
        numbers = item.numbers if isinstance(item, ase.Atoms) else item[Z].tolist()
        found.update(int(z) for z in numbers)
    return found


def fit_energy_model(
    train_set: Sequence[ase.Atoms] | Sequence[Data],
    val_set: Sequence[ase.Atoms] | Sequence[Data],
    test_set: Sequence[ase.Atoms] | Sequence[Data] | None = None,
    *,
    model: ModelConfig | EnergyModel,
    settings: TrainSettings | None = None,
    out_dir: str | Path | None = None,
    loss_fn: LossFn = energy_mse,
    run_info: dict[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
    baseline_graphs: Sequence[Data] | None = None,
    force_weight: float = 0.0,
) -> FitResult:
    """Train an energy model on DFT energies (the paper's baseline recipe).

    Args:
        train_set, val_set, test_set: configurations with ``info[keys.ENERGY_DFT]`` (eV), or
            graphs with ``y``.
        model: a :class:`ModelConfig` (built here after seeding) or a model to fine-tune
            (its head must have 1 output; its baseline is refit).
        settings: training settings (default: the paper profile).
        out_dir: checkpoints and run record.
        loss_fn: training loss (default MSE on total energies).
        run_info: extra run-record fields (dataset, split, strategy, ...).
        callbacks: passed to :func:`train`.
        baseline_graphs: graphs the energy baseline (and a fresh network's input scaling) are
            fitted on (default: all training graphs; label augmentation passes the DFT-labelled
            ones only). A pretrained network keeps its input scaling (see
            :func:`eiplab.training.prepare_for_fit`).
        force_weight: > 0 trains on energies and forces: loss = energy MSE + ``force_weight`` x
            per-component force MSE against ``arrays[keys.FORCES_DFT]`` (configs without forces
            are masked); validation and test report the force MAE (eV/Angstrom) too, and the
            checkpoint is chosen on the validation loss (energy + forces) unless
            ``settings.select_on`` names another metric than the default. 0 (the
            paper's setting) trains on energies exactly as before. Needs a graph network (SOAPNet
            has no position gradient) and the default energy loss or a loss with force terms
            (``needs_position_grad``, e.g. label augmentation's with ``force_weight``).

    Returns:
        A :class:`FitResult`.
    """
    settings = settings or train_settings("paper")
    seed_everything(settings.seed)
    train_set, val_set = _limit(train_set, settings), _limit(val_set, settings)
    test_set = _limit(test_set, settings) if test_set is not None else None
    unseen = (_species(val_set) | _species(test_set or [])) - _species(train_set)
    if unseen:
        raise ValueError(f"species {sorted(unseen)} appear in val/test but not in training")
    if isinstance(model, ModelConfig):
        config = complete_config(model, list(train_set) + list(val_set) + list(test_set or []))
        seed_everything(settings.seed)
        net = build_model(config)
    else:
        net, config = model, model.config
    if net.n_out != 1:
        raise ValueError(f"an energy model needs 1 output, this one has {net.n_out}")
    forces = force_weight > 0
    if needs_position_grad(loss_fn) and not forces:
        raise ValueError(f"the loss {loss_fn!r} has force terms but force_weight={force_weight}: pass the same "
                         "force_weight > 0 to fit_energy_model (graphs need the forces)")
    metrics_fn = energy_loader_metrics
    if forces:
        if config.soap:
            raise ValueError(f"force_weight={force_weight}: {config.name} reads precomputed SOAP features and has no "
                             "position gradient; train forces with SchNet, CGCNN or GemNet")
        if loss_fn is energy_mse:
            loss_fn = energy_force_loss(force_weight)
        elif not needs_position_grad(loss_fn):
            raise ValueError(f"force_weight={force_weight} with a loss that has no force term ({loss_fn!r}): pass a "
                             "loss whose needs_position_grad is True (e.g. AugmentedLoss(..., force_weight=...))")
        metrics_fn = energy_force_metrics
        if settings.select_on == VAL_MAE_CONFIG:  # the checkpoint follows what is trained: energies and forces
            settings = replace(settings, select_on=VAL_LOSS)
    train_graphs = _as_graphs(train_set, config, settings.progress, forces)
    val_graphs = _as_graphs(val_set, config, settings.progress, forces)
    prepare_for_fit(net, train_graphs if baseline_graphs is None else list(baseline_graphs), energy_baseline=True)
    baseline = {z: float(net.baseline[z]) for z in sorted(_species(train_graphs))}
    train_loader = make_loader(train_graphs, settings.batch_size, shuffle=True, seed=settings.seed)
    val_loader = make_loader(val_graphs, settings.batch_size)
    info = {RUN_STRATEGY: "baseline", RUN_N_TRAIN: len(train_graphs), RUN_N_VAL: len(val_graphs)}
    info.update(run_info or {})
    info[RUN_BASELINE] = baseline
    if forces:
        info[RUN_FORCE_WEIGHT] = force_weight
    result = train(
        net,
        train_loader,
        val_loader,
        loss_fn,
        settings,
        out_dir=out_dir,
        callbacks=callbacks,
        run_info=info,
        metrics_fn=metrics_fn,
    )
    test_metrics: dict[str, float] = {}
    if test_set:
        test_graphs = _as_graphs(test_set, config, settings.progress, forces)
        device = resolve_device(settings.device)
        values = metrics_fn(result.model, make_loader(test_graphs, settings.batch_size), device)
        test_metrics = {TEST_PREFIX + k.removeprefix("val_"): v for k, v in values.items()}
        result.record[RUN_METRICS].update(test_metrics)
        result.record[RUN_N_TEST] = len(test_graphs)
        if out_dir is not None:
            write_run_record(Path(out_dir) / RECORD_FILE, result.record)
    return FitResult(result.model, result.history, test_metrics, baseline, result.record)
