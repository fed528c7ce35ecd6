"""KIM particle sets (real + padding atoms) and their neighbour lists, built with vesin."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from scipy.spatial.distance import cdist

from eiplab.eips.neighbours import kim_particles, pairs

pytest.importorskip("vesin")


def random_atoms(rng: np.random.Generator, n: int, vol: float, pbc) -> Atoms:
    length = (n * vol) ** (1 / 3)
    cell = np.eye(3) * length + rng.normal(0, 0.15 * length, (3, 3))
    atoms = Atoms("Si" * n, scaled_positions=rng.random((n, 3)), cell=cell, pbc=pbc)
    atoms.positions += rng.normal(0, 2.0, (n, 3))  # unwrapped on purpose
    return atoms


PBCS = [True, [True, False, True], [False, False, True], False]


@pytest.mark.parametrize("pbc", PBCS, ids=str)
def test_pairs_match_ase(pbc):
    rng = np.random.default_rng(0)
    for _ in range(20):
        atoms = random_atoms(rng, int(rng.integers(1, 9)), float(rng.uniform(6, 25)), pbc)
        i, j, shifts = pairs(atoms.positions, atoms.cell.array, atoms.pbc, 4.5)
        i_ref, j_ref, s_ref = neighbor_list("ijS", atoms, 4.5)
        got = sorted(zip(i, j, map(tuple, shifts), strict=True))
        expected = sorted(zip(i_ref, j_ref, map(tuple, s_ref), strict=True))
        assert got == expected


@pytest.mark.parametrize("pbc", PBCS, ids=str)
def test_padding_and_lists_are_complete(pbc):
    """Padding = every image within the influence distance of a real atom; each particle's
    list = all particles within each cutoff (padding atoms included, as an open cluster)."""
    rng = np.random.default_rng(1)
    influence, cutoffs = 4.0, np.array([3.0, 4.0])
    for _ in range(25):
        atoms = random_atoms(rng, int(rng.integers(1, 7)), float(rng.uniform(6, 25)), pbc)
        p = kim_particles(atoms.positions, atoms.cell.array, atoms.pbc, influence, cutoffs, True)
        n = len(atoms)
        assert p.n_contributing == n
        np.testing.assert_allclose(p.coords[:n], atoms.positions)
        # Every padding atom is an image of its real atom within the influence distance.
        d_real = cdist(p.coords[n:], p.coords[:n])
        assert (
            (d_real.min(axis=1, initial=np.inf) <= influence + 1e-9).all() if len(d_real) else True
        )
        n_images = len(
            {
                (int(j), tuple(s))
                for j, s in zip(
                    *pairs(atoms.positions, atoms.cell.array, atoms.pbc, influence)[1:], strict=True
                )
                if any(s)
            }
        )
        assert len(p.coords) - n == n_images
        dist = cdist(p.coords, p.coords)
        full = p.all_lists()
        for cut, (nb, ptr), (nb_real, ptr_real) in zip(cutoffs, full, p.lists, strict=True):
            for q in range(len(p.coords)):
                expected = np.flatnonzero((dist[q] <= cut) & (np.arange(len(dist)) != q))
                assert np.array_equal(np.sort(nb[ptr[q] : ptr[q + 1]]), expected)
                if q < n:
                    assert np.array_equal(np.sort(nb_real[ptr_real[q] : ptr_real[q + 1]]), expected)


def test_tiny_cell_has_many_images():
    atoms = Atoms("Si", cell=np.eye(3) * 2.0, pbc=True)
    p = kim_particles(atoms.positions, atoms.cell.array, atoms.pbc, 5.0, np.array([5.0]), False)
    # Images of one atom within 5 A on a 2 A cubic lattice (excluding itself).
    grid = (
        np.array([[x, y, z] for x in range(-3, 4) for y in range(-3, 4) for z in range(-3, 4)])
        * 2.0
    )
    r = np.linalg.norm(grid, axis=1)
    assert len(p.coords) - 1 == int(((r > 0) & (r <= 5.0)).sum())
    nb, ptr = p.lists[0]
    assert ptr[1] - ptr[0] == len(p.coords) - 1
    assert p.n_listed == 1
