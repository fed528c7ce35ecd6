"""Shared model parts: activation, MLPs, pooling heads and the energy model.

A model is ``representation -> head -> sum``, plus a per-species energy baseline:

    E(C) = sum_i head(h_i) + sum_i baseline[z_i]        (eV)

Every representation maps a batch to per-atom features ``[n_atoms, width]`` and exposes
``representation(batch) -> [n_configs, width]`` (sum pooling). Heads are swappable: 1 output
(DFT energy), K outputs (one per EIP, multi-task pretraining) or K+1 graph-level logits (the
label-augmentation classifier).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from eiplab.graphs.build import Z, atom_batch, n_configs

LN2 = math.log(2.0)


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ssp(x) = softplus(x) - ln 2 (so ssp(0) = 0)."""
    return nn.functional.softplus(x) - LN2


class ShiftedSoftplus(nn.Module):
    """Module form of :func:`shifted_softplus`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)


def mlp(
    n_in: int,
    n_out: int,
    *,
    hidden: int | None = None,
    n_layers: int = 2,
    activate_last: bool = False,
) -> nn.Sequential:
    """A stack of ``n_layers`` linear layers with shifted softplus between them.

    Args:
        n_in: input width.
        n_out: output width.
        hidden: width of the hidden layers (default ``n_in``).
        n_layers: number of linear layers (>= 1).
        activate_last: also apply ssp after the last layer.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    hidden = n_in if hidden is None else hidden
    widths = [n_in] + [hidden] * (n_layers - 1) + [n_out]
    layers: list[nn.Module] = []
    for k in range(n_layers):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < n_layers - 1 or activate_last:
            layers.append(ShiftedSoftplus())
    return nn.Sequential(*layers)


def sum_pool(values: torch.Tensor, batch: torch.Tensor, n_configs: int) -> torch.Tensor:
    """Sum per-atom rows per configuration: [n_atoms, k] -> [n_configs, k]."""
    out = values.new_zeros((n_configs, values.shape[1]))
    return out.index_add(0, batch, values)


class Representation(nn.Module):
    """Base of every representation: per-atom features and their sum per configuration.

    Subclasses set ``self.width`` and implement ``forward(batch) -> [n_atoms, width]``.
    """

    width: int

    def needs_input_scaling(self) -> bool:
        """True while the representation has input scaling to fit and it is not fitted yet
        (SOAPNet's feature mean/std); False for representations without any."""
        fitted = getattr(self, "input_scaling_fitted", None)
        return fitted is not None and not bool(fitted)

    def representation(self, batch: Data | Batch) -> torch.Tensor:
        """Per-configuration embedding, float [n_configs, width] (sum of atom features)."""
        return sum_pool(self(batch), atom_batch(batch), n_configs(batch))


class AtomwiseHead(nn.Module):
    """Per-atom MLP then a sum per configuration: [n_atoms, n_in] -> [n_configs, n_out].

    Args:
        n_in: width of the atom features.
        n_out: outputs per configuration (1 energy, or one per EIP).
        hidden: hidden width of the MLP (default ``n_in // 2``).
        n_layers: linear layers in the MLP.
    """

    def __init__(self, n_in: int, n_out: int = 1, *, hidden: int | None = None, n_layers: int = 2):
        super().__init__()
        self.n_out = n_out
        self.net = mlp(n_in, n_out, hidden=hidden or max(n_in // 2, 1), n_layers=n_layers)

    def forward(self, features: torch.Tensor, batch: Data | Batch) -> torch.Tensor:
        return sum_pool(self.net(features), atom_batch(batch), n_configs(batch))


class GraphHead(nn.Module):
    """Sum pooling of atom features, then an MLP: [n_atoms, n_in] -> [n_configs, n_out].

    Used for graph-level outputs such as the K+1 class logits of the LA classifier.
    """

    def __init__(self, n_in: int, n_out: int, *, hidden: int | None = None, n_layers: int = 2):
        super().__init__()
        self.n_out = n_out
        self.net = mlp(n_in, n_out, hidden=hidden or n_in, n_layers=n_layers)

    def forward(self, features: torch.Tensor, batch: Data | Batch) -> torch.Tensor:
        return self.net(sum_pool(features, atom_batch(batch), n_configs(batch)))


HEADS: dict[str, type[nn.Module]] = {"atomwise": AtomwiseHead, "graph": GraphHead}


class EnergyModel(nn.Module):
    """Representation + head + per-species energy baseline.

    Args:
        representation: maps a batch to atom features [n_atoms, width].
        head: maps atom features to [n_configs, n_out].
        n_species_max: size of the baseline table (atomic numbers 0 .. n_species_max - 1).

    Buffers:
        baseline: float [n_species_max], eV/atom; ``sum_i baseline[z_i]`` is added to every
            output column (zero for logits; set by the trainer for energies).
    """

    def __init__(self, representation: Representation, head: nn.Module, n_species_max: int = 100):
        super().__init__()
        self.representation_module = representation
        self.head = head
        self.register_buffer("baseline", torch.zeros(n_species_max))
        self.config = None  # set by eiplab.models.build_model (a ModelConfig)

    @property
    def n_out(self) -> int:
        return int(self.head.n_out)

    def atom_features(self, batch: Data | Batch) -> torch.Tensor:
        """Per-atom features of the representation, float [n_atoms, width]."""
        return self.representation_module(batch)

    def representation(self, batch: Data | Batch) -> torch.Tensor:
        """Per-configuration embedding, float [n_configs, width] (for t-SNE)."""
        return self.representation_module.representation(batch)

    def baseline_energy(self, batch: Data | Batch) -> torch.Tensor:
        """``sum_i baseline[z_i]`` per configuration, float [n_configs] (eV)."""
        per_atom = self.baseline[batch[Z]].unsqueeze(1)  # [n_atoms, 1]
        return sum_pool(per_atom, atom_batch(batch), n_configs(batch)).squeeze(1)

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        """Outputs per configuration, float [n_configs, n_out] (eV for energy heads)."""
        out = self.head(self.atom_features(batch), batch)
        return out + self.baseline_energy(batch).unsqueeze(1).to(out.dtype)

    def set_baseline(self, values: dict[int, float] | torch.Tensor) -> None:
        """Set the per-species baseline (eV/atom) from {Z: value} or a full table."""
        table = torch.zeros_like(self.baseline)
        if isinstance(values, dict):
            for z, value in values.items():
                table[int(z)] = float(value)
        else:
            table[: len(values)] = torch.as_tensor(values, dtype=table.dtype)
        self.baseline.copy_(table)
