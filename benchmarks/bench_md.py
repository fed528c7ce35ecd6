"""MD steps per second of ``eiplab.NNCalculator`` (ASE velocity Verlet) vs a plain loop.

A 64-atom Si cell (diamond 2x2x2, rattled 0.05 A), SchNet at the paper's size (width 128, 5
interactions, cutoff 5 A; random weights -- the cost does not depend on them), 1 fs steps:

1. **eiplab**: ``atoms.calc = NNCalculator(model)`` driven by ``ase.md.VelocityVerlet`` (what
   notebook 06 and a user do);
2. **plain loop** (the baseline): velocity Verlet written by hand around the same model: per step
   one neighbour graph (``atoms_to_data``, vesin), one forward pass and one ``autograd.grad``,
   with no ASE calculator or integrator in between.

Both integrate the same trajectory (checked: final positions agree). The two take turns round by
round (a changing load on shared cores hits both alike); the median over rounds is reported, and
the ratio eiplab / plain loop (target ~1: the calculator adds no cost worth naming). No assertions.

Run: ``python benchmarks/bench_md.py [--steps 50] [--rounds 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from eiplab import NNCalculator
from eiplab.graphs import atoms_to_data, make_loader
from eiplab.graphs.build import POS
from eiplab.models import ModelConfig, build_model

CUTOFF, TIMESTEP_FS = 5.0, 1.0


def si64():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=0)
    return atoms


def network():
    torch.manual_seed(0)
    model = build_model(ModelConfig("schnet", width=128, n_layers=5, cutoff=CUTOFF))
    with torch.no_grad():
        model.baseline[14] = -5.4  # a trained species (eV/atom), as after fitting the baseline
    return model.eval()


def run_ase(model, n_steps: int) -> tuple[float, np.ndarray]:
    atoms = si64()
    atoms.calc = NNCalculator(model, device="cpu")
    dyn = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
    start = time.perf_counter()
    dyn.run(n_steps)
    return time.perf_counter() - start, atoms.positions.copy()


def run_plain(model, n_steps: int) -> tuple[float, np.ndarray]:
    """Velocity Verlet by hand (the same update as ASE's), forces by autograd."""
    atoms = si64()
    masses = atoms.get_masses()[:, None]
    dt = TIMESTEP_FS * units.fs

    def forces(positions: np.ndarray) -> np.ndarray:
        atoms.positions = positions
        batch = next(iter(make_loader([atoms_to_data(atoms, CUTOFF)], 1)))
        batch[POS].requires_grad_(True)
        (grad,) = torch.autograd.grad(model(batch)[0, 0], batch[POS])
        return -grad.numpy().astype(np.float64)

    start = time.perf_counter()
    positions, momenta = atoms.positions.copy(), np.zeros_like(atoms.positions)
    f = forces(positions)
    for _ in range(n_steps):
        momenta = momenta + 0.5 * dt * f
        positions = positions + dt * momenta / masses
        f = forces(positions)
        momenta = momenta + 0.5 * dt * f
    return time.perf_counter() - start, positions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = network()
    run_ase(model, 2), run_plain(model, 2)  # warm-up
    ours, plain = [], []
    for _ in range(args.rounds):
        t_ours, x_ours = run_ase(model, args.steps)
        t_plain, x_plain = run_plain(model, args.steps)
        ours.append(args.steps / t_ours)
        plain.append(args.steps / t_plain)
    print(f"64-atom Si, SchNet 128 x 5, cutoff {CUTOFF} A, {args.steps} steps of {TIMESTEP_FS} fs, "
          f"torch threads {args.threads}, torch {torch.__version__}")
    print(f"same trajectory: max |x_eiplab - x_plain| after {args.steps} steps = "
          f"{np.abs(x_ours - x_plain).max():.2e} A")
    print(f"eiplab NNCalculator + ASE VelocityVerlet: {statistics.median(ours):6.2f} steps/s "
          f"(rounds: {', '.join(f'{v:.2f}' for v in ours)})")
    print(f"plain loop (same model, autograd)      : {statistics.median(plain):6.2f} steps/s "
          f"(rounds: {', '.join(f'{v:.2f}' for v in plain)})")
    print(f"ratio eiplab / plain loop = {statistics.median(ours) / statistics.median(plain):.2f}")


if __name__ == "__main__":
    main()
