"""SOAPNet: per-atom SOAP vectors (``x``, from :mod:`eiplab.graphs.soap`) -> MLP.

``x`` [n_atoms, n_features] is standardised with per-feature mean/std buffers, then passed
through ``n_layers`` linear layers of width ``width`` with ssp after each. The output of the
last hidden layer is the atom feature. Positions are not differentiated (SOAP is precomputed).

The scaling is a fitted quantity of the network, like its weights: it is fitted once, on the
graphs of the first fit the network goes through (:func:`eiplab.training.prepare_for_fit`),
saved with it (``input_scaling_fitted`` says whether it was), and kept by every later fit --
a fine-tuned MP backbone sees its inputs scaled exactly as during pretraining.
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
        self.register_buffer("input_scaling_fitted", torch.tensor(False))
        self.net = mlp(n_features, width, hidden=width, n_layers=n_layers, activate_last=True)

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        if getattr(batch, X, None) is None:
            raise ValueError("SOAPNet needs SOAP features: build graphs with eiplab.graphs.soap")
        x = (batch[X].to(self.feature_mean.dtype) - self.feature_mean) / self.feature_std
        return self.net(x)

    @torch.no_grad()
    def fit_input_scaling(self, graphs: Iterable[Data]) -> None:
        """Set the feature mean/std from training graphs (std floored at 1e-3 of the largest std).

        Called through :func:`eiplab.training.prepare_for_fit`, which does so only while
        ``input_scaling_fitted`` is False.
        """
        x = torch.cat([g[X] for g in graphs]).to(self.feature_mean.dtype)
        self.feature_mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.feature_std.copy_(std.clamp_min(1e-6 + 1e-3 * float(std.max())))
        self.input_scaling_fitted.fill_(True)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        # model files written before the flag existed: fitted iff the mean was ever set
        flag = prefix + "input_scaling_fitted"
        if flag not in state_dict and prefix + "feature_mean" in state_dict:
            state_dict[flag] = torch.tensor(bool(state_dict[prefix + "feature_mean"].abs().sum() > 0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
