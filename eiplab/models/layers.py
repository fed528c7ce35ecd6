"""Distance features shared by the message-passing models: Gaussian expansion and cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianExpansion(nn.Module):
    """Gaussians on evenly spaced centres: distances [E] -> features [E, n_gaussians].

    ``exp(-(d - mu_k)^2 / (2 w^2))`` with centres ``mu_k`` from ``start`` to ``stop``
    (Angstrom) and width ``w`` = centre spacing. Values below the dtype's smallest normal
    number (float32: 1.2e-38) are returned as exact zeros: see :meth:`forward`.
    """

    def __init__(self, n_gaussians: int = 128, start: float = 0.0, stop: float = 5.0):
        super().__init__()
        centres = torch.linspace(start, stop, n_gaussians)
        spacing = (stop - start) / max(n_gaussians - 1, 1)
        self.register_buffer("centres", centres)
        self.coefficient = -0.5 / spacing**2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)  # [E, n_gaussians]
        values = torch.exp(self.coefficient * diff * diff)
        # A Gaussian ~0.52-0.57 A from its centre (128 on 5 A) underflows into float32's
        # subnormal range. x86 CPUs compute on subnormals in slow microcode: a few such entries per
        # row made SchNet's filter matmuls ~15x and a whole training step ~2.5x slower on CPU
        # (benchmarks/bench_schnet_cpu.py). Next to the row's normal values they change no sum,
        # so they become exact zeros (their gradient, < 1e-36, becomes zero too). Done here,
        # not with torch.set_flush_denormal: that flag is per thread and misses the intra-op
        # thread pool once it exists.
        return values.masked_fill(values < torch.finfo(values.dtype).tiny, 0.0)


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) for d < rc, else 0: [E] -> [E] (goes smoothly to 0 at rc)."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(distances.dtype)
