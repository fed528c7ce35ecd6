"""CGCNN (Xie & Grossman 2018) with PyG's ``CGConv`` layers on periodic graphs.

Atom embedding -> ``n_layers`` x [CGConv (gated sum over neighbours, residual) -> LayerNorm
-> ssp]. Edge features are Gaussian-expanded distances recomputed from positions, so forces
come from autograd. The original CGCNN normalises with BatchNorm, which couples the
configurations of a batch (batched != unbatched) and changes at evaluation; a per-atom
LayerNorm plays its part here: without it the un-normalised neighbour sums grow by ~80x per
layer on dense cells (250-atom Al at 7 A) and features reach 1e6 after 5 layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import CGConv

from eiplab.graphs.build import EDGE_INDEX, Z, edge_vectors
from eiplab.models.base import Representation, shifted_softplus
from eiplab.models.layers import GaussianExpansion


class CGCNN(Representation):
    """CGCNN representation: batch -> atom features [n_atoms, width].

    Args:
        width: atom feature width (paper: 128).
        n_layers: number of CGConv layers (paper: 5).
        cutoff: radial cutoff (Angstrom); the Gaussians span [0, cutoff].
        n_gaussians: edge feature width.
        n_species_max: embedding table size.
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
        self.convs = nn.ModuleList(
            CGConv(width, dim=n_gaussians, aggr="add", batch_norm=False) for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(n_layers))

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        edge_index = batch[EDGE_INDEX]
        distances = edge_vectors(batch).norm(dim=-1)  # [E]
        edge_attr = self.expansion(distances)  # [E, n_gaussians]
        h = self.embedding(batch[Z])  # [n_atoms, width]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = shifted_softplus(norm(conv(h, edge_index, edge_attr)))
        return h
