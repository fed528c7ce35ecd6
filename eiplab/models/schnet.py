"""SchNet (Schuett et al. 2018) on periodic graphs with cell-shift edges.

Atom embedding -> ``n_layers`` interaction blocks of continuous-filter convolutions:

    v_i = f2out( sum_j in2f(h_j) * W(r_ij) ),   h_i <- h_i + v_i
    W(r) = filter(gaussians(r)) * cosine_cutoff(r)

Distances are recomputed from positions (``edge_vectors``), so forces come from autograd.
Radial filters are symmetric in the pair (W(r_ij) = W(r_ji)), so when the graph records its
pairs (``n_pairs``, see :func:`eiplab.graphs.build.edge_pairs`) the Gaussians, the cutoff and
the filter networks are evaluated once per pair and spread to both directed edges: half the
work of the dominant [n_edges, width] matrix products, same maths.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from eiplab.graphs.build import EDGE_INDEX, Z, edge_pairs, edge_vectors
from eiplab.models.base import Representation, ShiftedSoftplus
from eiplab.models.layers import GaussianExpansion, cosine_cutoff


class SchNetInteraction(nn.Module):
    """One interaction block: filter network, continuous-filter convolution, atom update."""

    def __init__(self, width: int, n_gaussians: int):
        super().__init__()
        self.filter = nn.Sequential(
            nn.Linear(n_gaussians, width), ShiftedSoftplus(), nn.Linear(width, width)
        )
        self.in2f = nn.Linear(width, width, bias=False)
        self.f2out = nn.Sequential(
            nn.Linear(width, width), ShiftedSoftplus(), nn.Linear(width, width)
        )

    def forward(
        self,
        h: torch.Tensor,  # [n_atoms, width]
        basis: torch.Tensor,  # [P, n_gaussians], per pair (or per edge)
        fcut: torch.Tensor,  # [P, 1]
        pair_of_edge: torch.Tensor | None,  # [E] -> row of basis; None = one row per edge
        source: torch.Tensor,  # [E] (j)
        target: torch.Tensor,  # [E] (i)
    ) -> torch.Tensor:
        w = self.filter(basis) * fcut  # [P, width]
        if pair_of_edge is not None:
            w = w[pair_of_edge]  # [E, width]
        messages = self.in2f(h)[source] * w  # [E, width]
        aggregated = torch.zeros_like(h).index_add_(0, target, messages)  # [n_atoms, width]
        return h + self.f2out(aggregated)


class SchNet(Representation):
    """SchNet representation: batch -> atom features [n_atoms, width].

    Args:
        width: embedding / feature width (paper: 128).
        n_layers: number of interaction blocks (paper: 5).
        cutoff: radial cutoff (Angstrom); must not exceed the graphs' cutoff.
        n_gaussians: Gaussians on [0, cutoff] (paper: 128).
        n_species_max: embedding table size (atomic numbers below it).
    """

    def __init__(
        self,
        width: int = 128,
        n_layers: int = 5,
        cutoff: float = 5.0,
        n_gaussians: int = 128,
        n_species_max: int = 100,
    ):
        super().__init__()
        self.width = width
        self.cutoff = float(cutoff)
        self.embedding = nn.Embedding(n_species_max, width)
        self.expansion = GaussianExpansion(n_gaussians, 0.0, cutoff)
        self.interactions = nn.ModuleList(
            SchNetInteraction(width, n_gaussians) for _ in range(n_layers)
        )

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        source, target = batch[EDGE_INDEX]
        distances = edge_vectors(batch).norm(dim=-1)  # [E]
        pairs = edge_pairs(batch)
        pair_of_edge = None
        if pairs is not None:
            unique, pair_of_edge = pairs
            distances = distances[unique]  # [P]: one distance per pair
        fcut = cosine_cutoff(distances, self.cutoff).unsqueeze(1)  # [P, 1]
        basis = self.expansion(distances)  # [P, n_gaussians]
        h = self.embedding(batch[Z])  # [n_atoms, width]
        for block in self.interactions:
            h = block(h, basis, fcut, pair_of_edge, source, target)
        return h
