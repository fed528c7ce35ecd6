"""One training loop for every model and strategy.

``train(model, train_loader, val_loader, loss_fn, settings)`` runs Adam with a per-step
learning-rate schedule (``LambdaLR``), gradient-norm clipping, model selection on a
validation metric, a checkpoint after every epoch (resumed automatically after an
interrupt, giving the same result as an uninterrupted run on CPU) and a JSON run record.

A loss is a pure function ``loss_fn(prediction [n_configs, n_out], batch) -> scalar``, so the
strategies (Tukey-weighted EIP labels, multi-task masked MSE, classifier cross-entropy) plug
in without another loop. Validation metrics come from ``metrics_fn(model, loader, device)``.

``fit_energy_model`` is the baseline recipe (paper A.4): per-species linear energy baseline
fit on the training configs (eV/atom, least squares on species counts), DFT targets, the
model predicting total energies including the baseline.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from eiplab import keys
from eiplab.graphs.build import N_ATOMS, Y, Z, make_loader, n_configs
from eiplab.graphs.inputs import build_graphs
from eiplab.metrics import energy_metrics
from eiplab.models.base import EnergyModel
from eiplab.models.registry import ModelConfig, build_model, representation_class, save_model
from eiplab.profiles import PROFILES as RUN_PROFILES

# --- history / run-record fields ---------------------------------------------------------------
EPOCH = "epoch"
LR = "lr"  # learning rate at the start of the epoch
TRAIN_LOSS = "train_loss"  # mean training loss over the epoch's batches (config-weighted)
VAL_LOSS = "val_loss"
VAL_MAE_CONFIG = "val_" + keys.MAE_CONFIG  # eV
VAL_MAE_ATOM = "val_" + keys.MAE_ATOM  # eV/atom
VAL_ACCURACY = "val_accuracy"  # fraction, for classifiers (metrics_fn supplied by the caller)
TEST_PREFIX = "test_"
# run-record fields (run.json); ``run_info`` passed by callers should use these names
RUN_DATASET = "dataset"  # dataset name
RUN_SPLIT = "split"  # split id / seed / file
RUN_STRATEGY = "strategy"  # "baseline", "la", "mp", "mp+la", ...
RUN_MODEL = "model"  # ModelConfig as a dict
RUN_SETTINGS = "settings"  # TrainSettings as a dict
RUN_SEED = "seed"
RUN_DEVICE = "device"
RUN_BEST_EPOCH = "best_epoch"
RUN_METRICS = "metrics"  # best-epoch history entry, plus test_* metrics
RUN_HISTORY = "history"  # list of per-epoch entries
RUN_GIT = "git_revision"
RUN_TORCH = "torch_version"
RUN_WALL_TIME = "wall_time_s"  # seconds, summed over resumed sessions
RUN_BASELINE = "baseline_ev_per_atom"  # {Z: eV/atom}
RUN_N_TRAIN, RUN_N_VAL, RUN_N_TEST = "n_train", "n_val", "n_test"

SELECT_MODES = {VAL_MAE_CONFIG: "min", VAL_MAE_ATOM: "min", VAL_LOSS: "min", VAL_ACCURACY: "max"}

CHECKPOINT_FILE = "checkpoint_last.pt"
BEST_MODEL_FILE = "model_best.pt"
RECORD_FILE = "run.json"

SCHEDULES = ("linear", "slanted_triangular", "constant")

LossFn = Callable[[torch.Tensor, Batch], torch.Tensor]
MetricsFn = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]
Callback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainSettings:
    """Settings of one training run (defaults: the paper's A.4 DFT training).

    Args:
        epochs: passes over the training set.
        batch_size: configurations per batch.
        lr: peak learning rate (Adam).
        lr_end: final learning rate of the "linear" schedule.
        schedule: "linear" (lr -> lr_end over all steps), "slanted_triangular" (warm-up over
            the first ``warmup_fraction`` of training from lr/``warmup_divisor`` to lr, then
            linear decay back to lr/``warmup_divisor``) or "constant".
        warmup_fraction: warm-up share of the slanted triangular schedule.
        warmup_divisor: lr / this is the slanted triangular start and end value.
        grad_clip: max gradient norm (None = no clipping).
        patience: stop after this many epochs without improvement (None = never).
        seed: seed of initialisation, shuffling and everything random.
        device: "auto" (cuda when available), "cpu", "cuda", ...
        select_on: validation metric choosing the checkpoint (``val_mae_config``,
            ``val_accuracy``, ``val_loss`` or any key the metrics function returns).
        select_mode: "min" or "max"; None = known default of ``select_on`` (else "min").
        max_configs: use at most this many configs of each split (quick runs); None = all.
        progress: show a progress bar.
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    lr_end: float = 1e-5
    schedule: str = "linear"
    warmup_fraction: float = 0.2
    warmup_divisor: float = 32.0
    grad_clip: float | None = 5.0
    patience: int | None = None
    seed: int = 0
    device: str = "auto"
    select_on: str = VAL_MAE_CONFIG
    select_mode: str | None = None
    max_configs: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from {SCHEDULES}")
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")

    @property
    def mode(self) -> str:
        mode = self.select_mode or SELECT_MODES.get(self.select_on, "min")
        if mode not in ("min", "max"):
            raise ValueError(f"select_mode must be 'min' or 'max', got {mode!r}")
        return mode


# One TrainSettings per run profile of eiplab.profiles, with the same names and epochs:
# "paper" is A.4 (100 epochs); "cpu" and "demo" keep the recipe with fewer epochs; "quick" is
# for tests and CI (a couple of epochs, at most QUICK_MAX_CONFIGS configs per split).
QUICK_MAX_CONFIGS = 64
PROFILES: dict[str, TrainSettings] = {
    name: TrainSettings(
        epochs=profile.epochs, max_configs=QUICK_MAX_CONFIGS if name == "quick" else None
    )
    for name, profile in RUN_PROFILES.items()
}


def train_settings(profile: str = "paper", **overrides: Any) -> TrainSettings:
    """The settings of a profile ("paper", "cpu", "quick"), with ``overrides`` applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    return replace(PROFILES[profile], **overrides)


# --- schedules ---------------------------------------------------------------------------------
def lr_factor(settings: TrainSettings, progress: float) -> float:
    """Learning-rate multiplier after a fraction ``progress`` in [0, 1] of all steps."""
    t = min(max(progress, 0.0), 1.0)
    if settings.schedule == "constant":
        return 1.0
    if settings.schedule == "linear":
        return 1.0 + (settings.lr_end / settings.lr - 1.0) * t
    low = 1.0 / settings.warmup_divisor
    cut = settings.warmup_fraction
    if cut > 0 and t < cut:
        return low + (1.0 - low) * t / cut
    return 1.0 - (1.0 - low) * (t - cut) / max(1.0 - cut, 1e-12)


def learning_rate_at(settings: TrainSettings, epoch: float) -> float:
    """Learning rate after ``epoch`` (fractional) epochs, e.g. 0 -> start, epochs -> end."""
    return settings.lr * lr_factor(settings, epoch / settings.epochs)


# --- small helpers ------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve "auto" to cuda when available, else cpu; other names pass through."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_revision() -> str | None:
    """The git commit of the eiplab source tree, or None (read-only ``git rev-parse``)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def energy_mse(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """MSE (eV^2) between predicted [n_configs, n_out] and target energies ``y``."""
    target = batch[Y].to(prediction.dtype).reshape(prediction.shape)
    return torch.mean((prediction - target) ** 2)


@torch.no_grad()
def predict_loader(model: nn.Module, loader: Iterable, device: torch.device) -> np.ndarray:
    """Outputs of ``model`` for every config of ``loader``, float64 [n_configs, n_out]."""
    model.eval()
    outputs = [model(batch.to(device)).double().cpu() for batch in loader]
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 1))


def energy_loader_metrics(
    model: nn.Module, loader: Iterable, device: torch.device
) -> dict[str, float]:
    """Config-level (eV) and atom-level (eV/atom) MAE of output 0 against ``y``."""
    predicted, reference, n_atoms = [], [], []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            if getattr(batch, Y, None) is None:
                return {}
            batch = batch.to(device)
            predicted.append(model(batch)[:, 0].double().cpu())
            reference.append(batch[Y].reshape(n_configs(batch), -1)[:, 0].double().cpu())
            n_atoms.append(batch[N_ATOMS].cpu())
    if not predicted:
        return {}
    values = energy_metrics(torch.cat(predicted), torch.cat(reference), torch.cat(n_atoms))
    return {"val_" + name: value for name, value in values.items()}


@torch.no_grad()
def _mean_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn, device: torch.device) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        size = n_configs(batch)
        total += float(loss_fn(model(batch), batch)) * size
        count += size
    return total / count if count else math.nan


def _improved(value: float, best: float | None, mode: str) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _seed_epoch(settings: TrainSettings, epoch: int, loader: DataLoader) -> None:
    """Shuffling and any randomness of an epoch depend only on (seed, epoch)."""
    epoch_seed = settings.seed * 1_000_003 + epoch
    torch.manual_seed(epoch_seed)
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(epoch_seed)


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_run_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a run record as JSON (NaN/inf become null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_ready(record), indent=2, sort_keys=True))
    return path


# --- the loop -----------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the model with the best validation weights loaded.
        history: one dict per epoch (``epoch``, ``lr``, ``train_loss``, ``val_loss`` and
            the metrics function's keys).
        best_epoch: epoch of the selected checkpoint.
        best_metrics: that epoch's history entry.
        record: the run record (also written to ``out_dir/run.json`` when out_dir is set).
        out_dir: output folder or None.
    """

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    best_metrics: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None


def train(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    loss_fn: LossFn,
    settings: TrainSettings,
    *,
    out_dir: str | Path | None = None,
    metrics_fn: MetricsFn | None = energy_loader_metrics,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
    run_info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` and keep the best validation checkpoint.

    Args:
        model: any module mapping a batch to [n_configs, n_out] (initialised by the caller,
            seeded for reproducibility).
        train_loader: shuffling loader of training graphs (its generator, if any, and the
            global torch RNG are reseeded each epoch from ``settings.seed``).
        val_loader: validation graphs (no shuffling); None selects the last epoch.
        loss_fn: ``loss_fn(prediction, batch) -> scalar``.
        settings: see :class:`TrainSettings`.
        out_dir: folder for ``checkpoint_last.pt`` (every epoch), ``model_best.pt`` and
            ``run.json``; None keeps everything in memory.
        metrics_fn: validation metrics ``(model, loader, device) -> {name: value}``; keys
            should start with ``val_``.
        callbacks: called as ``callback(epoch, history_entry)`` after each epoch's checkpoint.
        resume: continue from ``out_dir/checkpoint_last.pt`` when it exists.
        run_info: extra fields for the run record (dataset, split, strategy, ...).

    Returns:
        A :class:`TrainResult`.
    """
    started = time.perf_counter()
    device = resolve_device(settings.device)
    model.to(device)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = max(len(train_loader), 1)
    total_steps = settings.epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(settings, step / total_steps)
    )
    history: list[dict[str, float]] = []
    best_value: float | None = None
    best_epoch = -1
    best_state = _state_copy(model)
    bad_epochs = 0
    start_epoch = 0
    stopped = False
    wall_before = 0.0

    checkpoint_path = out / CHECKPOINT_FILE if out is not None else None
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        saved = {k: v for k, v in state["settings"].items() if k not in ("progress", "device")}
        wanted = {k: v for k, v in asdict(settings).items() if k not in ("progress", "device")}
        if saved != wanted:
            raise ValueError(
                f"{checkpoint_path} was written with other settings; remove it or use "
                f"resume=False.\n saved: {saved}\n given: {wanted}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        best_value, best_epoch = state["best_value"], state["best_epoch"]
        best_state = state["best_state"]
        bad_epochs, stopped = state["bad_epochs"], state["stopped"]
        start_epoch = state["epoch"] + 1
        wall_before = state["wall_time_s"]

    bar = tqdm(
        total=(settings.epochs - start_epoch) * steps_per_epoch,
        disable=not settings.progress,
        desc="train",
        leave=False,
    )
    for epoch in range(start_epoch, settings.epochs):
        if stopped:
            break
        _seed_epoch(settings, epoch, train_loader)
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        total, count = 0.0, 0
        for batch in train_loader:
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch), batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {float(loss)} at epoch {epoch}")
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            size = n_configs(batch)
            total += float(loss.detach()) * size
            count += size
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.4g}")
        entry: dict[str, float] = {EPOCH: epoch, LR: lr, TRAIN_LOSS: total / max(count, 1)}
        if val_loader is not None:
            entry[VAL_LOSS] = _mean_loss(model, val_loader, loss_fn, device)
            if metrics_fn is not None:
                entry.update(metrics_fn(model, val_loader, device))
            if settings.select_on not in entry:
                raise KeyError(
                    f"select_on={settings.select_on!r} is not among the validation metrics "
                    f"{sorted(entry)}"
                )
            value = entry[settings.select_on]
        else:
            value = -float(epoch)  # no validation: the last epoch wins
        history.append(entry)
        mode = settings.mode if val_loader is not None else "min"
        if _improved(value, best_value, mode):
            best_value, best_epoch, bad_epochs = value, epoch, 0
            best_state = _state_copy(model)
        else:
            bad_epochs += 1
        stopped = settings.patience is not None and bad_epochs >= settings.patience
        bar.set_postfix(epoch=epoch, loss=f"{entry[TRAIN_LOSS]:.4g}", best=best_value)
        if checkpoint_path is not None:
            _atomic_save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": history,
                    "best_value": best_value,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "bad_epochs": bad_epochs,
                    "stopped": stopped,
                    "settings": asdict(settings),
                    "wall_time_s": wall_before + time.perf_counter() - started,
                },
                checkpoint_path,
            )
        for callback in callbacks:
            callback(epoch, entry)
    bar.close()

    model.load_state_dict(best_state)
    best_metrics = history[best_epoch] if 0 <= best_epoch < len(history) else {}
    record: dict[str, Any] = dict(run_info or {})
    record.update(
        {
            RUN_SETTINGS: asdict(settings),
            RUN_SEED: settings.seed,
            RUN_DEVICE: str(device),
            RUN_BEST_EPOCH: best_epoch,
            RUN_METRICS: dict(best_metrics),
            RUN_HISTORY: history,
            RUN_GIT: git_revision(),
            RUN_TORCH: torch.__version__,
            RUN_WALL_TIME: wall_before + time.perf_counter() - started,
        }
    )
    model_config = getattr(model, "config", None)
    if model_config is not None:
        record.setdefault(RUN_MODEL, asdict(model_config))
    if out is not None:
        if isinstance(model, EnergyModel) and model_config is not None:
            save_model(out / BEST_MODEL_FILE, model)
        write_run_record(out / RECORD_FILE, record)
    return TrainResult(model, history, best_epoch, best_metrics, record, out)


# --- energy baseline ----------------------------------------------------------------------------
def species_counts(graphs: Sequence[Data], species: Sequence[int]) -> np.ndarray:
    """Atom counts per species, int [n_configs, n_species]."""
    column = {int(z): k for k, z in enumerate(species)}
    counts = np.zeros((len(graphs), len(species)), dtype=np.int64)
    for row, graph in enumerate(graphs):
        for z in graph[Z].tolist():
            counts[row, column[z]] += 1
    return counts


def fit_species_baseline(graphs: Sequence[Data]) -> dict[int, float]:
    """Per-species energies mu_s (eV/atom) minimising sum_C (E_C - sum_s n_Cs mu_s)^2.

    Uses the graphs' ``y`` (total energy, eV). Raises when the compositions cannot identify
    the per-species values (e.g. every config at the same A:B ratio).
    """
    labelled = [g for g in graphs if getattr(g, Y, None) is not None]
    if not labelled:
        raise ValueError("no labelled configurations to fit the energy baseline on")
    species = sorted({int(z) for g in labelled for z in g[Z].tolist()})
    counts = species_counts(labelled, species).astype(np.float64)
    energies = np.array([float(g[Y].reshape(-1)[0]) for g in labelled])
    if np.linalg.matrix_rank(counts) < len(species):
        raise ValueError(
            f"the training compositions cannot identify per-species energies of {species} "
            "(species counts are linearly dependent, e.g. one fixed composition)"
        )
    mu, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {z: float(m) for z, m in zip(species, mu, strict=True)}


def prepare_model(
    model: EnergyModel, train_graphs: Sequence[Data], *, baseline: bool = True
) -> None:
    """Fit what is fitted before training: the energy baseline and any input scaling."""
    if baseline:
        model.set_baseline(fit_species_baseline(train_graphs))
    fit_scaling = getattr(model.representation_module, "fit_input_scaling", None)
    if fit_scaling is not None:
        fit_scaling(train_graphs)


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
) -> list[Data]:
    """Graphs for ``configs`` as ``config``'s model needs them (SOAP for SOAPNet)."""
    return build_graphs(configs, config.cutoff, soap=config.soap, target=target, progress=progress)


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


def _as_graphs(items: Sequence, config: ModelConfig, progress: bool) -> list[Data]:
    items = list(items)
    if items and isinstance(items[0], ase.Atoms):
        return model_inputs(items, config, progress=progress)
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
        baseline_graphs: graphs the energy baseline and input scaling are fitted on (default:
            all training graphs; label augmentation passes the DFT-labelled ones only).

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
    train_graphs = _as_graphs(train_set, config, settings.progress)
    val_graphs = _as_graphs(val_set, config, settings.progress)
    prepare_model(net, train_graphs if baseline_graphs is None else list(baseline_graphs))
    baseline = {z: float(net.baseline[z]) for z in sorted(_species(train_graphs))}
    train_loader = make_loader(train_graphs, settings.batch_size, shuffle=True, seed=settings.seed)
    val_loader = make_loader(val_graphs, settings.batch_size)
    info = {RUN_STRATEGY: "baseline", RUN_N_TRAIN: len(train_graphs), RUN_N_VAL: len(val_graphs)}
    info.update(run_info or {})
    info[RUN_BASELINE] = baseline
    result = train(
        net,
        train_loader,
        val_loader,
        loss_fn,
        settings,
        out_dir=out_dir,
        callbacks=callbacks,
        run_info=info,
    )
    test_metrics: dict[str, float] = {}
    if test_set:
        test_graphs = _as_graphs(test_set, config, settings.progress)
        device = resolve_device(settings.device)
        values = energy_loader_metrics(
            result.model, make_loader(test_graphs, settings.batch_size), device
        )
        test_metrics = {TEST_PREFIX + k.removeprefix("val_"): v for k, v in values.items()}
        result.record[RUN_METRICS].update(test_metrics)
        result.record[RUN_N_TEST] = len(test_graphs)
        if out_dir is not None:
            write_run_record(Path(out_dir) / RECORD_FILE, result.record)
    return FitResult(result.model, result.history, test_metrics, baseline, result.record)
