"""Losses and metrics on loaders: energy MSE, predictions, config / atom MAE, mean loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from eiplab.graphs.build import N_ATOMS, Y, n_configs
from eiplab.metrics import energy_metrics

LossFn = Callable[[torch.Tensor, Batch], torch.Tensor]
MetricsFn = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


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
def mean_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn, device: torch.device) -> float:
    """Mean of ``loss_fn`` over the configs of ``loader`` (each batch weighted by its size)."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        size = n_configs(batch)
        total += float(loss_fn(model(batch), batch)) * size
        count += size
    return total / count if count else math.nan
