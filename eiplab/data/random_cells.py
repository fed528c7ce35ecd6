"""Random periodic cells with a minimum interatomic distance (test and benchmark structures).

Random sequential addition in fractional coordinates: a trial atom closer than ``d_min`` to an
existing one is rejected; when the cell gets too full it grows by 20 %. (ASE has no generator of
random periodic cells with a distance constraint; pyxtal makes symmetric crystals, not these.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms


def random_cell(rng: np.random.Generator, symbols: Sequence[str], n: int, vol: float, d_min: float,
                *, skew: float = 0.12, unwrap: float = 0.0) -> Atoms:
    """A random periodic cell of ``n`` atoms drawn from ``symbols``.

    Args:
        rng: random generator (deterministic structures for a fixed seed).
        symbols: element symbols to draw from (uniformly).
        n: number of atoms.
        vol: target volume per atom, Angstrom^3 (grows when the atoms do not fit).
        d_min: smallest allowed distance, Angstrom.
        skew: random off-diagonal cell components, as a fraction of the cell length.
        unwrap: standard deviation (Angstrom) of a random shift per atom that moves atoms out of
            the cell (unwrapped positions), 0 for wrapped ones.
    """
    while True:
        length = (n * vol) ** (1 / 3)
        cell = np.diag(rng.uniform(0.8, 1.2, 3) * length) + rng.normal(0, skew * length, (3, 3))
        if abs(np.linalg.det(cell)) < 0.5 * length**3:
            continue
        if n == 1 and min(np.linalg.norm(cell, axis=1)) < d_min:
            vol *= 1.2
            continue
        frac: list[np.ndarray] = []
        for _ in range(200 * n):
            trial = rng.random(3)
            if frac:
                delta = np.array(frac) - trial
                delta -= np.round(delta)
                # Minimum image by rounding (approximate for skewed cells; a filter only).
                if np.linalg.norm(delta @ cell, axis=1).min() < d_min:
                    continue
            frac.append(trial)
            if len(frac) == n:
                break
        if len(frac) < n:
            vol *= 1.2
            continue
        atoms = Atoms([symbols[k] for k in rng.integers(0, len(symbols), n)], scaled_positions=np.array(frac),
                      cell=cell, pbc=True)
        if unwrap:
            atoms.positions += rng.normal(0, unwrap, (n, 3))
        return atoms
