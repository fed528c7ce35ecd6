"""SchNet training on CPU with and without subnormal numbers in its Gaussian radial basis.

eiplab's :class:`~eiplab.models.layers.GaussianExpansion` returns exact zeros where a Gaussian
underflows below float32's smallest normal number (1.2e-38); the baseline is the same SchNet
(same weights, same batches) with the plain formula ``exp(-(d - mu)^2 / 2w^2)``, whose few
subnormal entries per row send x86 CPUs into slow microcode in every filter matmul. Data: the
DFT-labelled configs of the built-in ``mo-mlearn`` dataset (Mo cells of up to 54 atoms: bulk,
AIMD, vacancies, surfaces), a random sample of ``--configs`` of them. Settings: width 128, 5 interactions, 128
Gaussians on [0, 5 A], batch 32, Adam, MSE on the total energy; measured: forward + loss +
backward + step over the sample, the two models taking turns epoch by epoch (a changing load on
shared cores hits both alike), median over ``--rounds``. Prints configs/s of both, the ratio
eiplab / plain (target > 1) and the largest energy difference between the two (eV).

Run: ``python benchmarks/bench_subnormals.py [--configs 160] [--rounds 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from eiplab import keys
from eiplab.data import load_dataset
from eiplab.graphs import make_loader
from eiplab.graphs.build import GraphDataset
from eiplab.models import ModelConfig, build_model
from eiplab.models.layers import GaussianExpansion

CUTOFF, BATCH = 5.0, 32


class PlainGaussianExpansion(GaussianExpansion):
    """The baseline: the Gaussian formula with its subnormal values kept."""

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)
        return torch.exp(self.coefficient * diff * diff)


def _epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list) -> float:
    """Seconds for one pass of training steps over ``batches``."""
    started = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        loss = ((model(batch).reshape(-1) - batch.y.reshape(-1)) ** 2).mean()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mo-mlearn")
    configs = [atoms for atoms, labelled in zip(dataset, dataset.labelled(), strict=True) if labelled]
    rng = np.random.default_rng(0)
    sample = [configs[int(k)] for k in rng.choice(len(configs), args.configs, replace=False)]
    graphs = GraphDataset(sample, CUTOFF, target=keys.ENERGY_DFT, progress=False)
    batches = list(make_loader(list(graphs), batch_size=BATCH, shuffle=False))
    edges = np.mean([g.edge_index.shape[1] for g in graphs])

    torch.manual_seed(0)
    ours = build_model(ModelConfig("schnet", width=128, n_layers=5, cutoff=CUTOFF, n_gaussians=128))
    plain = copy.deepcopy(ours)
    old = plain.representation_module.expansion
    new = PlainGaussianExpansion(old.centres.numel(), float(old.centres[0]), float(old.centres[-1]))
    plain.representation_module.expansion = new
    with torch.no_grad():
        gap = max(float((ours(b) - plain(b)).abs().max()) for b in batches)
    models = {"eiplab": ours, "plain": plain}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in models.items()}
    for name in models:  # warm-up
        _epoch(models[name], optimizers[name], batches[:1])
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(_epoch(models[name], optimizers[name], batches))
    rate = {name: len(sample) / statistics.median(t) for name, t in times.items()}
    print(f"SchNet 128 x 5, {len(sample)} mo-mlearn configs ({edges:.0f} edges each on average), "
          f"batch {BATCH}, {args.threads} thread(s), median of {args.rounds} rounds")
    print(f"plain Gaussians (baseline, subnormals kept): {rate['plain']:.1f} configs/s")
    print(f"eiplab (subnormals set to zero):            {rate['eiplab']:.1f} configs/s")
    print(f"ratio eiplab / plain: {rate['eiplab'] / rate['plain']:.2f}x; "
          f"largest energy difference before training {gap:.2e} eV")


if __name__ == "__main__":
    main()
