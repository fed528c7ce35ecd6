"""Time estimates for fits a grid folder has never timed: a few training steps, measured now.

``eiplab grid --plan`` times a fit by the seconds per epoch that finished fits of the same kind
recorded in its grid folder (:mod:`eiplab.workflows.plan`). A new folder has none, and a user
planning a grid on a new dataset still wants to know whether it is minutes or days. For those
fits :func:`probe_seconds_per_config` trains a fresh network of the grid's settings for a few
batches of the dataset's own configs -- on this machine, this device and this process's torch
threads -- and :func:`configs_per_epoch` scales it to what each fit trains on per epoch. LA and
MP+LA fits are counted with the whole pool (the classifier's selection is not known before it
runs): an upper bound.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import ase
import numpy as np
import torch

from .. import keys
from ..graphs import make_loader
from ..models import ModelConfig, build_model
from ..training import (
    LossFn,
    TrainSettings,
    compiled_for_training,
    model_inputs,
    prepare_for_fit,
    resolve_device,
    training_step,
)
from ..training.evaluate import predicted_forces
from .graph import CLASSIFIER, PRETRAIN
from .spec import LA_STRATEGIES

#: Validation passes a config forward only: counted as this share of a training step.
VALIDATION_COST = 1.0 / 3.0
PROBE_NOTE = "probe-timed: a few training steps measured now"


def probe_seconds_per_config(model_config: ModelConfig, configs: Sequence[ase.Atoms], settings: TrainSettings, *,
                             force_weight: float = 0.0, steps: int = 3, seed: int = 0) -> float:
    """Wall seconds per config of one training step (forward, loss, backward, Adam step).

    Args:
        model_config: the network, as the grid trains it.
        configs: the dataset; ``(steps + 1) x batch size`` of them are drawn at random (``seed``).
        settings: the grid's training settings (batch size, device, ``compile``: the timed steps
            are compiled too, after a warm-up step that compiles).
        force_weight: > 0 adds a force term (autograd forces with ``create_graph``), as force
            training does; ignored for SOAPNet (no autograd forces).
        steps: timed steps, after one untimed warm-up step.

    Returns:
        Seconds per config, float (the first batch, warm-up, is not counted).
    """
    rng = np.random.default_rng(seed)
    n = min(len(configs), (steps + 1) * settings.batch_size)
    sample = [configs[int(k)] for k in rng.choice(len(configs), n, replace=False)]
    graphs = model_inputs(sample, model_config, target=None)
    model = build_model(model_config)
    prepare_for_fit(model, graphs, energy_baseline=False)
    device = resolve_device(settings.device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    forces = force_weight > 0 and getattr(model.representation_module, "input_features", None) != "soap"
    loss_fn = _probe_loss(force_weight if forces else 0.0)
    batches = list(make_loader(graphs, batch_size=settings.batch_size, shuffle=False))
    # as the fits will run: the training loop's own step, compiled (settings.compile; the
    # warm-up step compiles) or eager
    step_model = compiled_for_training(model, loss_fn) if settings.compile and not forces else model
    training_step(step_model, batches[0], loss_fn, optimizer, device, settings.grad_clip)
    timed = batches[1:] or batches
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for batch in timed:
        training_step(step_model, batch, loss_fn, optimizer, device, settings.grad_clip)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / sum(int(b[keys.N_ATOMS].shape[0]) for b in timed)


def _probe_loss(force_weight: float) -> LossFn:
    """A loss of the training loss's cost without targets (the probe's configs may be
    unlabelled): the predictions' mean square, plus ``force_weight`` x the mean square of the
    autograd forces (with ``create_graph``, as force training does) when > 0."""

    def loss(prediction: torch.Tensor, batch) -> torch.Tensor:
        value = prediction.pow(2).mean()
        if force_weight > 0:
            value = value + force_weight * predicted_forces(prediction, batch, create_graph=True).pow(2).mean()
        return value

    loss.needs_position_grad = force_weight > 0  # type: ignore[attr-defined]
    return loss


def configs_per_epoch(strategy: str, kind: str, sizes: Mapping[str, int]) -> float:
    """Configs one epoch of a fit costs, in training steps: its training configs plus
    :data:`VALIDATION_COST` per validation config.

    Args:
        strategy: the run's strategy (``la`` and ``mp+la`` train on the DFT configs plus the
            selected pool: counted with the whole pool).
        kind: "classifier" (the DFT training configs), "pretrain" (the pool) or a fit of a run.
        sizes: configs per split part of the split (``keys.TRAIN``, ``keys.VAL``, ``keys.POOL``).
    """
    train, val, pool = (int(sizes.get(part, 0)) for part in (keys.TRAIN, keys.VAL, keys.POOL))
    if kind == PRETRAIN:
        return float(pool)
    if kind == CLASSIFIER:
        return train + VALIDATION_COST * val
    return train + (pool if strategy in LA_STRATEGIES else 0) + VALIDATION_COST * val
