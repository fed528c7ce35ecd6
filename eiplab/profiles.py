"""Run profiles: how much of a dataset and how many epochs a notebook or command uses.

- ``quick``: tiny, for tests and CI (a few hundred configs, a couple of epochs).
- ``demo``: the README's main job on 2 CPU cores (about 15 minutes for all notebooks): 1,000
  configs, 10 epochs, width 64 and 3 layers, alpha fixed at 1 -- a demonstration, not the paper.
- ``cpu``: a few hours on 2 cores; the paper's networks and data, shortened to 30 epochs and the
  alpha grid {0.1, 1, 10}, SOAPNet and SchNet only.
- ``paper``: the paper's A.4 settings (100 epochs, batch 32, full data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """Settings shared by notebooks and commands.

    Attributes:
        name: profile name.
        limit: number of configs drawn from the dataset (None = all).
        seeds: split seeds (one split per seed).
        epochs: training epochs.
        n_jobs: worker processes for EIP labelling and features, and the default number of
            processes training fits side by side in `eiplab reproduce` (notebooks 03, 04).
        models: neural networks trained by the strategies notebook.
        alphas: label-augmentation alpha grid (chosen on validation MAE).
        width: network width (paper: 128); the quick profile shrinks it for CI.
        n_layers: representation layers (paper: 5).
    """

    name: str
    limit: int | None
    seeds: tuple[int, ...]
    epochs: int
    n_jobs: int
    models: tuple[str, ...]
    alphas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
    width: int = 128
    n_layers: int = 5


PROFILES = {
    "quick": Profile("quick", limit=240, seeds=(0, 1, 2), epochs=2, n_jobs=1, models=("schnet", "soapnet"), alphas=(1.0,),
                     width=32, n_layers=2),
    "demo": Profile("demo", limit=1000, seeds=(0, 1, 2), epochs=10, n_jobs=2, models=("soapnet", "schnet"), alphas=(1.0,),
                    width=64, n_layers=3),
    "cpu": Profile("cpu", limit=None, seeds=(0, 1, 2), epochs=30, n_jobs=2, models=("soapnet", "schnet"), alphas=(0.1, 1.0, 10.0)),
    "paper": Profile("paper", limit=None, seeds=(0, 1, 2), epochs=100, n_jobs=2, models=("soapnet", "schnet", "cgcnn", "gemnet")),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a clear error lists the valid names."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def profile_dict(name: str) -> dict:
    """The profile as a plain dict (for run records)."""
    return asdict(get_profile(name))
