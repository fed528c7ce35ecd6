"""Distance features shared by the message-passing models: Gaussian expansion and cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianExpansion(nn.Module):
    """Gaussians on evenly spaced centres: distances [E] -> features [E, n_gaussians].

    ``exp(-(d - mu_k)^2 / (2 w^2))`` with centres ``mu_k`` from ``start`` to ``stop``
    (Angstrom) and width ``w`` = centre spacing. Values below e times the dtype's smallest
    normal number (float32: 3.2e-38) are returned as exact zeros: see :meth:`forward`.
    """

    def __init__(self, n_gaussians: int = 128, start: float = 0.0, stop: float = 5.0):
        super().__init__()
        centres = torch.linspace(start, stop, n_gaussians)
        spacing = (stop - start) / max(n_gaussians - 1, 1)
        self.register_buffer("centres", centres)
        self.coefficient = -0.5 / spacing**2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)  # [E, n_gaussians]
        exponent = self.coefficient * diff * diff
        # Most of a row's Gaussians are far from their centre, where exp underflows: below the
        # dtype's smallest normal number (float32: 1.2e-38) it returns subnormals, then zero. x86
        # CPUs take slow microcode paths for both: exp itself is ~50x slower on such arguments, and
        # a few subnormal entries per row made SchNet's filter matmuls ~15x slower
        # (benchmarks/bench_schnet_cpu.py). Exponents below ``floor`` (1 above the log of the
        # smallest normal number; e^floor = 3.2e-38 in float32) give exact zeros instead, and exp
        # never sees them: next to the row's normal values they change no sum, and their gradient
        # (< 1e-36) becomes zero.
        # Done here, not with torch.set_flush_denormal: that flag is per thread and misses the
        # intra-op thread pool once it exists.
        floor = math.log(torch.finfo(exponent.dtype).tiny) + 1.0
        values = torch.exp(exponent.clamp(min=floor))
        return values.masked_fill(exponent < floor, 0.0)


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) for d < rc, else 0: [E] -> [E] (goes smoothly to 0 at rc)."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(distances.dtype)
