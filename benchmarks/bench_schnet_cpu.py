"""SchNet training on CPU: eiplab's SchNet against its own form before 2026-12-05.

Two changes of 2026-12-05, each measured against the code it replaced, on the same weights and
batches (the models take turns epoch by epoch, so a changing load on shared cores hits all alike;
median over ``--rounds``):

- **subnormal-free Gaussians**: :class:`~eiplab.models.layers.GaussianExpansion` returns exact
  zeros where a Gaussian underflows below float32's smallest normal number (1.2e-38); the old
  plain formula ``exp(-(d - mu)^2 / 2w^2)`` left a few subnormal entries in every row, which send
  x86 CPUs into slow microcode in every filter matmul;
- **pair messages**: each pair's filter carries its message both ways (two scatter-adds over the
  pairs); before, the filters were gathered onto the full directed-edge list (a [n_edges, width]
  copy whose backward is a slow accumulate-scatter).

Variants: ``before`` (plain Gaussians + edge-list filters: the named baseline), ``+ no
subnormals``, ``eiplab`` (both changes) and ``eiplab compiled`` (``TrainSettings.compile``:
``torch.compile(model, dynamic=True)``, timed after a warm-up epoch that compiles; the compile
time is printed apart). Data: the DFT-labelled configs of the built-in
``mo-mlearn`` dataset (Mo cells of up to 54 atoms: bulk, AIMD, vacancies, surfaces), a random
sample of ``--configs``. Settings: width 128, 5 interactions, 128 Gaussians on [0, 5 A], batch 32,
Adam, MSE on the total energy; measured: forward + loss + backward + step over the sample.
Prints configs/s of each, ratios against ``before`` and the largest energy difference from it
(eV, before training: the changes are the same maths).

Run: ``python benchmarks/bench_schnet_cpu.py [--configs 160] [--rounds 3] [--threads 1]``.
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
from eiplab.models.schnet import SchNetInteraction

CUTOFF, BATCH = 5.0, 32


class PlainGaussianExpansion(GaussianExpansion):
    """Before: the Gaussian formula with its subnormal values kept."""

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        diff = distances.unsqueeze(-1) - self.centres.to(distances.dtype)
        return torch.exp(self.coefficient * diff * diff)


class EdgeListInteraction(SchNetInteraction):
    """Before: each pair's filter copied onto both directed edges, one scatter-add over edges."""

    def forward(self, h, basis, fcut, source, target, both_ways):
        w = self.filter(basis) * fcut  # [P, width]
        if both_ways:
            n_pairs = w.shape[0]
            w = w[torch.arange(n_pairs).repeat(2)]  # [E, width]: the gather this form paid for
            source, target = torch.cat([source, target]), torch.cat([target, source])
        messages = self.in2f(h)[source] * w  # [E, width]
        aggregated = torch.zeros_like(h).index_add_(0, target, messages)
        return h + self.f2out(aggregated)


def _variant(model: torch.nn.Module, plain_gaussians: bool, edge_list: bool) -> torch.nn.Module:
    """A copy of ``model`` (same weights) with the old Gaussians and/or the old messages."""
    model = copy.deepcopy(model)
    representation = model.representation_module
    if plain_gaussians:
        old = representation.expansion
        representation.expansion = PlainGaussianExpansion(
            old.centres.numel(), float(old.centres[0]), float(old.centres[-1])
        )
    if edge_list:
        for block in representation.interactions:
            block.__class__ = EdgeListInteraction  # same parameters, the old forward
    return model


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
    models = {
        "before": _variant(ours, plain_gaussians=True, edge_list=True),
        "+ no subnormals": _variant(ours, plain_gaussians=False, edge_list=True),
        "eiplab": ours,
        "eiplab compiled": torch.compile(copy.deepcopy(ours), dynamic=True),
    }
    with torch.no_grad():
        gap = {name: max(float((m(b) - models["before"](b)).abs().max()) for b in batches)
               for name, m in models.items()}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in models.items()}
    for name in models:  # warm-up (and compilation: every batch shape family once)
        warm_up = _epoch(models[name], optimizers[name], batches)
        if name == "eiplab compiled":
            print(f"compilation (first epoch of the compiled model): {warm_up:.1f} s")
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(_epoch(models[name], optimizers[name], batches))
    rate = {name: len(sample) / statistics.median(t) for name, t in times.items()}
    print(f"SchNet 128 x 5, {len(sample)} mo-mlearn configs ({edges:.0f} edges each on average), "
          f"batch {BATCH}, {args.threads} thread(s), median of {args.rounds} rounds")
    for name in models:
        print(f"{name:16s}: {rate[name]:6.1f} configs/s, ratio to before {rate[name] / rate['before']:.2f}x, "
              f"largest energy difference from before {gap[name]:.1e} eV")

if __name__ == "__main__":
    main()
