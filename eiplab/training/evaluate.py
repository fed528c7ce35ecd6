"""Losses and metrics on loaders: energy MSE, predictions, config / atom MAE, mean loss."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from eiplab.graphs.build import FORCES, N_ATOMS, POS, Y, n_configs
from eiplab.keys import MAE_FORCE
from eiplab.metrics import energy_metrics

LossFn = Callable[[torch.Tensor, Batch], torch.Tensor]
MetricsFn = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


def energy_mse(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """MSE (eV^2) between predicted [n_configs, n_out] and target energies ``y``."""
    target = batch[Y].to(prediction.dtype).reshape(prediction.shape)
    return torch.mean((prediction - target) ** 2)


_FORCE_GRAPH = contextvars.ContextVar("eiplab_force_graph", default=True)


def force_graph_wanted() -> bool:
    """Whether a loss on forces must keep the graph of its force computation (``create_graph``):
    while training (gradients enabled), not while :func:`mean_loss` evaluates a loss, where the
    weights' gradients are never taken (so validation does not build a double-backward graph)."""
    return torch.is_grad_enabled() and _FORCE_GRAPH.get()


def energy_gradients(energy: torch.Tensor, inputs: Sequence[torch.Tensor], create_graph: bool = False,
                     retain_graph: bool | None = None) -> list[torch.Tensor]:
    """``d energy / d input`` for each input (the one place eiplab differentiates an energy:
    forces, stress, force losses). ``energy`` is a scalar (eV); an input the energy does not
    depend on gets zeros of its shape. ``create_graph`` keeps the graph for a loss on them."""
    grads = torch.autograd.grad(energy, list(inputs), create_graph=create_graph, retain_graph=retain_graph,
                                allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs, strict=True)]


def predicted_forces(prediction: torch.Tensor, batch: Batch, create_graph: bool = False, *,
                     head_weights: torch.Tensor | None = None, retain_graph: bool | None = None) -> torch.Tensor:
    """Forces ``-d/dpos sum_c sum_k w[c, k] E[c, k]``, float [n_atoms, 3] (eV/Angstrom), of the
    [n_configs, n_out] ``prediction``: by default ``w`` picks output 0 (each config's energy);
    ``head_weights`` [n_configs, n_out] gives another combination of the heads (multi-task force
    losses). ``batch.pos`` must require grad before the forward pass."""
    if head_weights is None:
        head_weights = torch.zeros_like(prediction)
        head_weights[:, 0] = 1.0
    (grad,) = energy_gradients((head_weights * prediction).sum(), [batch[POS]], create_graph=create_graph,
                               retain_graph=retain_graph)
    return -grad


def energy_force_loss(force_weight: float) -> LossFn:
    """Energy MSE (eV^2) + ``force_weight`` x per-component force MSE ((eV/Angstrom)^2) over the
    atoms whose configs have forces (NaN forces are masked). Its ``needs_position_grad`` tells
    the training loop to make ``pos`` require grad before the forward pass."""

    def loss(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
        value = energy_mse(prediction, batch)
        reference = batch[FORCES].to(prediction.dtype)
        known = torch.isfinite(reference).all(dim=1)
        if not bool(known.any()):
            return value
        forces = predicted_forces(prediction, batch, create_graph=force_graph_wanted())
        return value + force_weight * torch.mean((forces[known] - reference[known]) ** 2)

    loss.needs_position_grad = True  # type: ignore[attr-defined]
    loss.force_weight = force_weight  # type: ignore[attr-defined]
    return loss


def needs_position_grad(loss_fn: LossFn) -> bool:
    """True for a loss on forces (:func:`energy_force_loss`)."""
    return bool(getattr(loss_fn, "needs_position_grad", False))


def force_loader_metrics(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
    """MAE of the predicted force components against ``forces`` (eV/Angstrom), over the atoms
    of configs with forces: ``{"val_mae_force": ...}`` (empty when no config has forces)."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        if getattr(batch, FORCES, None) is None:
            return {}
        batch = batch.to(device)
        batch[POS].requires_grad_(True)
        with torch.enable_grad():
            forces = predicted_forces(model(batch), batch).detach()
        reference = batch[FORCES].to(forces.dtype)
        known = torch.isfinite(reference).all(dim=1)
        total += float(torch.abs(forces[known] - reference[known]).sum())
        count += 3 * int(known.sum())
    return {"val_" + MAE_FORCE: total / count} if count else {}


def energy_force_metrics(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
    """:func:`energy_loader_metrics` plus the force MAE (eV/Angstrom per component)."""
    return {**energy_loader_metrics(model, loader, device), **force_loader_metrics(model, loader, device)}


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


def mean_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn, device: torch.device) -> float:
    """Mean of ``loss_fn`` over the configs of ``loader`` (each batch weighted by its size); a
    loss on forces gets its position gradients (and nothing else is kept)."""
    model.eval()
    grads = needs_position_grad(loss_fn)
    total, count = 0.0, 0
    token = _FORCE_GRAPH.set(False)
    try:
        for batch in loader:
            batch = batch.to(device)
            if grads:
                batch[POS].requires_grad_(True)
            size = n_configs(batch)
            with torch.set_grad_enabled(grads):
                total += float(loss_fn(model(batch), batch).detach()) * size
            count += size
    finally:
        _FORCE_GRAPH.reset(token)
    return total / count if count else math.nan
