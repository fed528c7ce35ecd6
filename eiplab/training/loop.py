"""The one training loop for every model and strategy.

``train(model, train_loader, val_loader, loss_fn, settings)`` runs Adam with a per-step
learning-rate schedule (``LambdaLR``), gradient-norm clipping, model selection on a
validation metric, a checkpoint after every epoch (resumed automatically after an
interrupt, giving the same result as an uninterrupted run on CPU) and a JSON run record.

A loss is a pure function ``loss_fn(prediction [n_configs, n_out], batch) -> scalar``, so the
strategies (Tukey-weighted EIP labels, multi-task masked MSE, classifier cross-entropy) plug
in without another loop. Validation metrics come from ``metrics_fn(model, loader, device)``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from eiplab.graphs.build import POS, n_configs
from eiplab.models.base import EnergyModel
from eiplab.models.registry import save_model

from .evaluate import LossFn, MetricsFn, energy_loader_metrics, mean_loss, needs_position_grad
from .prepare import check_prepared
from .records import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILE,
    EPOCH,
    LR,
    RECORD_FILE,
    RUN_BEST_EPOCH,
    RUN_DEVICE,
    RUN_GIT,
    RUN_HISTORY,
    RUN_METRICS,
    RUN_MODEL,
    RUN_SEED,
    RUN_SETTINGS,
    RUN_TORCH,
    RUN_WALL_TIME,
    TRAIN_LOSS,
    VAL_LOSS,
    git_revision,
    write_run_record,
)
from .settings import TrainSettings, lr_factor, resolve_device

Callback = Callable[[int, dict[str, float]], None]
_NOT_COMPARED = ("progress", "device", "compile")  # settings a resumed run may change


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


@dataclass
class _Progress:
    """The loop's state besides the model, optimizer and scheduler (kept in the checkpoint)."""

    history: list[dict[str, float]]
    best_state: dict[str, torch.Tensor]
    best_value: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False
    next_epoch: int = 0
    wall_before: float = 0.0  # s, spent by earlier sessions of this run

    def record_epoch(self, model: nn.Module, epoch: int, value: float, settings: TrainSettings, mode: str) -> None:
        """Keep the weights if ``value`` improved on the best; count epochs without improvement."""
        if _improved(value, self.best_value, mode):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = _state_copy(model)
        else:
            self.bad_epochs += 1
        self.stopped = settings.patience is not None and self.bad_epochs >= settings.patience


def _resume(path: Path, settings: TrainSettings, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler) -> _Progress:
    """Load ``path`` (a checkpoint of this run) into the model, optimizer and scheduler."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = {k: v for k, v in state["settings"].items() if k not in _NOT_COMPARED}
    wanted = {k: v for k, v in asdict(settings).items() if k not in _NOT_COMPARED}
    if saved != wanted:
        raise ValueError(
            f"{path} was written with other settings; remove it or use "
            f"resume=False.\n saved: {saved}\n given: {wanted}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return _Progress(history=state["history"], best_state=state["best_state"], best_value=state["best_value"],
                     best_epoch=state["best_epoch"], bad_epochs=state["bad_epochs"], stopped=state["stopped"],
                     next_epoch=state["epoch"] + 1, wall_before=state["wall_time_s"])


def _save_checkpoint(path: Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler, progress: _Progress,
                     settings: TrainSettings, wall_time_s: float) -> None:
    _atomic_save(
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": progress.history,
            "best_value": progress.best_value,
            "best_epoch": progress.best_epoch,
            "best_state": progress.best_state,
            "bad_epochs": progress.bad_epochs,
            "stopped": progress.stopped,
            "settings": asdict(settings),
            "wall_time_s": wall_time_s,
        },
        path,
    )


def compiled_for_training(model: nn.Module, loss_fn: LossFn) -> nn.Module:
    """``model`` through ``torch.compile`` (dynamic shapes) for the training steps; it shares the
    model's parameters, so checkpoints, validation and the returned model stay the plain module.

    Raises:
        ValueError: for a loss on forces (torch.compile has no double backward).
    """
    if needs_position_grad(loss_fn):
        raise ValueError(
            "settings.compile cannot train on forces: torch.compile has no double backward (the force "
            "loss differentiates -dE/dpos again); train without compile (drop --compile) or without forces"
        )
    return torch.compile(model, dynamic=True)


def training_step(model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                  device: torch.device, grad_clip: float | None = None) -> torch.Tensor:
    """One optimisation step on ``batch``: forward, ``loss_fn``, backward, gradient-norm clipping
    (``grad_clip``; None: none) and ``optimizer.step()``. A loss on forces gets ``pos`` made to
    require grad first. The learning-rate schedule is the caller's.

    Returns:
        The loss, a detached scalar tensor.

    Raises:
        FloatingPointError: the loss is not finite (nothing is stepped).
    """
    batch = batch.to(device)
    if needs_position_grad(loss_fn):  # a loss on forces differentiates the energy by positions
        batch[POS].requires_grad_(True)
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(batch), batch)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {float(loss)}")
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


def _train_epoch(model: nn.Module, loader: DataLoader, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, settings: TrainSettings, device: torch.device,
                 epoch: int, bar: tqdm) -> float:
    """One pass over ``loader``; returns the mean training loss (config-weighted)."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        try:
            loss = training_step(model, batch, loss_fn, optimizer, device, settings.grad_clip)
        except FloatingPointError as error:
            raise FloatingPointError(f"{error} at epoch {epoch}") from None
        scheduler.step()
        size = n_configs(batch)
        total += float(loss) * size
        count += size
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{float(loss):.4g}")
    return total / max(count, 1)


def _validate(model: nn.Module, loader: DataLoader, loss_fn: LossFn, metrics_fn: MetricsFn | None,
              settings: TrainSettings, device: torch.device) -> dict[str, float]:
    """Validation loss and metrics; ``settings.select_on`` must be among them."""
    entry = {VAL_LOSS: mean_loss(model, loader, loss_fn, device)}
    if metrics_fn is not None:
        entry.update(metrics_fn(model, loader, device))
    if settings.select_on not in entry:
        raise KeyError(
            f"select_on={settings.select_on!r} is not among the validation metrics "
            f"{sorted(entry)}"
        )
    return entry


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
            seeded for reproducibility, and prepared with :func:`prepare_for_fit`: a network
            whose input scaling is not fitted is refused).
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
    check_prepared(model)
    started = time.perf_counter()
    revision = git_revision()  # the code this process runs: read before training, not after
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
    checkpoint_path = out / CHECKPOINT_FILE if out is not None else None
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        progress = _resume(checkpoint_path, settings, model, optimizer, scheduler)
    else:
        progress = _Progress(history=[], best_state=_state_copy(model))
    mode = settings.mode if val_loader is not None else "min"
    step_model = compiled_for_training(model, loss_fn) if settings.compile else model

    bar = tqdm(
        total=(settings.epochs - progress.next_epoch) * steps_per_epoch,
        disable=not settings.progress,
        desc="train",
        leave=False,
    )
    for epoch in range(progress.next_epoch, settings.epochs):
        if progress.stopped:
            break
        _seed_epoch(settings, epoch, train_loader)
        entry: dict[str, float] = {EPOCH: epoch, LR: optimizer.param_groups[0]["lr"]}
        entry[TRAIN_LOSS] = _train_epoch(step_model, train_loader, loss_fn, optimizer, scheduler, settings, device,
                                         epoch, bar)
        if val_loader is not None:
            entry.update(_validate(model, val_loader, loss_fn, metrics_fn, settings, device))
            value = entry[settings.select_on]
        else:
            value = -float(epoch)  # no validation: the last epoch wins
        progress.history.append(entry)
        progress.record_epoch(model, epoch, value, settings, mode)
        bar.set_postfix(epoch=epoch, loss=f"{entry[TRAIN_LOSS]:.4g}", best=progress.best_value)
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, epoch, model, optimizer, scheduler, progress, settings,
                             progress.wall_before + time.perf_counter() - started)
        for callback in callbacks:
            callback(epoch, entry)
    bar.close()

    model.load_state_dict(progress.best_state)
    history, best_epoch = progress.history, progress.best_epoch
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
            RUN_GIT: revision,
            RUN_TORCH: torch.__version__,
            RUN_WALL_TIME: progress.wall_before + time.perf_counter() - started,
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
