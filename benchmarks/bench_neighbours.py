"""Benchmark: vesin vs ase.neighborlist.neighbor_list on periodic cells.

1,000 fcc Al supercells (2x2x2 .. 3x3x3 conventional cells, 32-108 atoms, rattled,
deterministic), 5 A cutoff, full lists with cell shifts. Checks that both give the same pair
count for every cell and prints the ratio (best of a few repeats; no assertions).

Usage: python benchmarks/bench_neighbours.py [--n 1000] [--cutoff 5.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from eiplab.eips.neighbours import pairs


def al_cells(n: int, seed: int = 0) -> list[Atoms]:
    """Rattled fcc Al supercells, 2x2x2 to 3x3x3 conventional cells, a = 3.9-4.2 A."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        reps = tuple(int(r) for r in rng.integers(2, 4, 3))
        atoms = bulk("Al", "fcc", a=float(rng.uniform(3.9, 4.2)), cubic=True) * reps
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        out.append(atoms)
    return out


def run_ase(cells: list[Atoms], cutoff: float) -> list[int]:
    return [len(neighbor_list("i", a, cutoff)) for a in cells]


def run_vesin(cells: list[Atoms], cutoff: float) -> list[int]:
    return [len(pairs(a.positions, a.cell.array, a.pbc, cutoff)[0]) for a in cells]


def best_of(repeat: int, f, *args) -> tuple[float, list[int]]:
    times, result = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        result = f(*args)
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cells = al_cells(args.n)
    n_atoms = sum(len(a) for a in cells)
    print(
        f"{len(cells)} periodic fcc Al cells ({n_atoms} atoms, 32-108 per cell), cutoff {args.cutoff} A"
    )
    run_vesin(cells[:5], args.cutoff)  # warm up (library load)
    t_ase, n_ase = best_of(args.repeat, run_ase, cells, args.cutoff)
    t_vesin, n_vesin = best_of(args.repeat, run_vesin, cells, args.cutoff)
    same = n_ase == n_vesin
    print(f"ase.neighborlist : {t_ase:7.3f} s  ({1e3 * t_ase / len(cells):6.3f} ms/cell)")
    print(f"vesin (eiplab)   : {t_vesin:7.3f} s  ({1e3 * t_vesin / len(cells):6.3f} ms/cell)")
    print(f"same pair counts in all cells: {same} ({sum(n_ase)} pairs in total)")
    print(f"ratio ASE / vesin: {t_ase / t_vesin:5.1f}x")


if __name__ == "__main__":
    main()
