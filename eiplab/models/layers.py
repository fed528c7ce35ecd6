"""Distance features shared by the message-passing models: Gaussian expansion and cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianExpansion(nn.Module):
    """Gaussians on evenly spaced centres: distances [E] -> features [E, n_gaussians].

    ``exp(-(d - mu_k)^2 / (2 w^2))`` with centres ``mu_k`` from ``start`` to ``stop``
    (Angstrom) and width ``w`` = centre spacing.
    """

    def __init__(self, n_gaussians: int = 128, start: float = 0.0, stop: float = 5.0):
        super().__init__()
        centres = torch.linspace(start, stop, n_gaussians)
        spacing = (stop - start) / max(n_gaussians - 1, 1)
        self.register_buffer("centres", centres)
        self.coefficient = -0.5 / spacing**2

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)  # [E, n_gaussians]
        return torch.exp(self.coefficient * diff * diff)


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / rc) + 1) for d < rc, else 0: [E] -> [E] (goes smoothly to 0 at rc)."""
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return value * (distances < cutoff).to(distances.dtype)
