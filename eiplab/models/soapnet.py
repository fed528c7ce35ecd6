"""SOAPNet: per-atom SOAP vectors (``x``, from :mod:`eiplab.graphs.soap`) -> MLP.

``x`` [n_atoms, n_features] is standardised with per-feature mean/std buffers (fit on the
training graphs by :meth:`SOAPNet.fit_input_scaling`; identity until then), then passed
through ``n_layers`` linear layers of width ``width`` with ssp after each. The output of the
last hidden layer is the atom feature. Positions are not differentiated (SOAP is precomputed).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch_geometric.data import Batch, Data

from eiplab.graphs.build import X
from eiplab.models.base import Representation, mlp


class SOAPNet(Representation):
    """SOAPNet representation: batch with ``x`` -> atom features [n_atoms, width].

    Args:
        n_features: SOAP vector length per atom.
        width: hidden width (paper: 128).
        n_layers: number of linear layers (paper: 5).
    """

    input_features = "soap"  # graphs need ``x`` from eiplab.graphs.soap

    def __init__(self, n_features: int, width: int = 128, n_layers: int = 5):
        super().__init__()
        if not n_features:
            raise ValueError("SOAPNet needs n_features (the SOAP vector length)")
        self.width = width
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.net = mlp(n_features, width, hidden=width, n_layers=n_layers, activate_last=True)

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        if getattr(batch, X, None) is None:
            raise ValueError("SOAPNet needs SOAP features: build graphs with eiplab.graphs.soap")
        x = (batch[X].to(self.feature_mean.dtype) - self.feature_mean) / self.feature_std
        return self.net(x)

    @torch.no_grad()
    def fit_input_scaling(self, graphs: Iterable[Data]) -> None:
        """Set the feature mean/std from training graphs (std floored at 1e-3 of the largest std)."""
        x = torch.cat([g[X] for g in graphs]).to(self.feature_mean.dtype)
        self.feature_mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.feature_std.copy_(std.clamp_min(1e-6 + 1e-3 * float(std.max())))
