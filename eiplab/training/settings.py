"""Training settings, the run profiles' settings, learning-rate schedules, device and seeding."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from eiplab.profiles import PROFILES as RUN_PROFILES

from .records import VAL_ACCURACY, VAL_LOSS, VAL_MAE_ATOM, VAL_MAE_CONFIG

SELECT_MODES = {VAL_MAE_CONFIG: "min", VAL_MAE_ATOM: "min", VAL_LOSS: "min", VAL_ACCURACY: "max"}
SCHEDULES = ("linear", "slanted_triangular", "constant")


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
        compile: run the training steps through ``torch.compile`` (dynamic shapes): ~1.4x faster
            SchNet training on CPU after ~20-30 s of compilation per process
            (benchmarks/bench_schnet_cpu.py). Same maths (rounding may differ, as on another
            device), so like ``device`` it is not among a fit's stored inputs; validation runs
            eagerly. Energy losses only: torch.compile has no double backward, so a loss on
            forces refuses it.
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
    compile: bool = False

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


# --- device and seeding -------------------------------------------------------------------------
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
