"""SchNet (Schuett et al. 2018) on periodic graphs with cell-shift edges.

Atom embedding -> ``n_layers`` interaction blocks of continuous-filter convolutions:

    v_i = f2out( sum_j in2f(h_j) * W(r_ij) ),   h_i <- h_i + v_i
    W(r) = filter(gaussians(r)) * cosine_cutoff(r)

Distances are recomputed from positions (``edge_vectors``), so forces come from autograd.
Radial filters are symmetric in the pair (W(r_ij) = W(r_ji)), so when the graph records its
pairs (``n_pairs``, see :func:`eiplab.graphs.build.edge_pairs`) the Gaussians, the cutoff and
the filter networks are evaluated once per pair, and each pair's filter carries a message both
ways (``x_j * W`` to i and ``x_i * W`` to j) without being copied to the [n_edges, width] edge
list: half the work of the dominant matrix products, and no per-edge gather of the filters
(whose backward is a slow scatter-add), same maths.
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
        basis: torch.Tensor,  # [P, n_gaussians], one row per pair (or per directed edge)
        fcut: torch.Tensor,  # [P, 1]
        source: torch.Tensor,  # [P] (j)
        target: torch.Tensor,  # [P] (i)
        both_ways: bool,  # rows are pairs: messages j -> i and i -> j; else directed edges j -> i
    ) -> torch.Tensor:
        w = self.filter(basis) * fcut  # [P, width]
        x = self.in2f(h)  # [n_atoms, width]
        aggregated = torch.zeros_like(h).index_add_(0, target, x[source] * w)  # [n_atoms, width]
        if both_ways:
            aggregated = aggregated.index_add_(0, source, x[target] * w)
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
        if pairs is not None:
            unique, _ = pairs
            distances = distances[unique]  # [P]: one distance per pair
            source, target = source[unique], target[unique]
        fcut = cosine_cutoff(distances, self.cutoff).unsqueeze(1)  # [P, 1]
        basis = self.expansion(distances)  # [P, n_gaussians]
        h = self.embedding(batch[Z])  # [n_atoms, width]
        for block in self.interactions:
            h = block(h, basis, fcut, source, target, both_ways=pairs is not None)
        return h
