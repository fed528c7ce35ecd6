"""KIM-style particle sets and neighbour lists built with vesin.

The KIM API sees no cell: a periodic configuration becomes its real (contributing) atoms plus
padding atoms -- the periodic images that lie within the model's influence distance of a real
atom (any number of images when the cell is smaller than that distance). Each neighbour list
is stored in CSR form: ``neighbours[ptr[p]:ptr[p + 1]]`` are the neighbours of particle ``p``,
one list per model cutoff.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class KIMParticles:
    """Particles and neighbour lists handed to a KIM model.

    Attributes:
        coords: [n_particles, 3] float64, Angstrom; real atoms first, then padding atoms.
        image_of: [n_particles] int; index of the real atom each particle is an image of.
        n_contributing: number of real atoms (the first ``n_contributing`` particles).
        lists: neighbours of the real atoms, one ``(neighbours, ptr)`` pair per cutoff;
            ``neighbours`` int32 [n_pairs], ``ptr`` int [n_contributing + 1].
        n_listed: particles that may be asked for neighbours (real atoms, plus padding atoms
            when the model asks for their neighbours).
    """

    coords: np.ndarray
    image_of: np.ndarray
    n_contributing: int
    lists: list[tuple[np.ndarray, np.ndarray]]
    n_listed: int
    _build_all: Callable[[], list[tuple[np.ndarray, np.ndarray]]] | None = None
    _all: list[tuple[np.ndarray, np.ndarray]] | None = None

    def all_lists(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Neighbour lists of every listed particle (built on first use), same layout."""
        if self._build_all is None:
            return self.lists
        if self._all is None:
            self._all = self._build_all()
        return self._all


@functools.lru_cache(maxsize=16)
def _vesin(cutoff: float) -> Any:
    """A vesin full, sorted neighbour list (imported lazily: vesin imports torch when present).

    One thread: the labelling pool runs one process per core.
    """
    import vesin

    return vesin.NeighborList(cutoff=cutoff, full_list=True, sorted=True, n_threads=1)


def pairs(
    points: np.ndarray, box: np.ndarray, periodic: np.ndarray | bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list with vesin: pairs (i, j) within ``cutoff`` (Angstrom), sorted by i.

    Returns ``i`` [n_pairs] int, ``j`` [n_pairs] int and the cell shift ``S`` [n_pairs, 3]
    int32, with ``r_ij = r_j - r_i + S @ box``.
    """
    i_j, shifts = _vesin(float(cutoff)).compute(points, box, periodic, "PS")
    i_j = i_j.astype(np.intp)
    return i_j[:, 0], i_j[:, 1], shifts


def _csr(
    i: np.ndarray,
    nbr: np.ndarray,
    coords: np.ndarray,
    cutoffs: np.ndarray,
    n_listed: int,
    r_max: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split pairs sorted by ``i`` (all within r_max) into one CSR list per cutoff."""
    bounds = np.arange(n_listed + 1)
    full = None
    d = None
    lists = []
    for cut in cutoffs:
        if cut >= r_max:
            if full is None:
                full = (nbr.astype(np.intc), np.searchsorted(i, bounds))
            lists.append(full)
        else:
            if d is None:
                d = np.linalg.norm(coords[nbr] - coords[i], axis=1)
            keep = d <= cut
            lists.append((nbr[keep].astype(np.intc), np.searchsorted(i[keep], bounds)))
    return lists


def _image_keys(atom: np.ndarray, shifts: np.ndarray, width: int) -> np.ndarray:
    """One integer per (atom, cell shift) with shift entries in [-width, width]."""
    base = 2 * width + 1
    s = shifts + width
    return ((atom * base + s[:, 0]) * base + s[:, 1]) * base + s[:, 2]


def kim_particles(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    influence_distance: float,
    cutoffs: np.ndarray,
    padding_needs_neighbours: bool,
) -> KIMParticles:
    """Real atoms plus padding images, and the neighbour lists a KIM model asks for.

    Args:
        positions: [n, 3] Angstrom (need not be wrapped into the cell).
        cell: [3, 3] Angstrom, rows are cell vectors (ignored along non-periodic directions).
        pbc: [3] bool.
        influence_distance: model influence distance, Angstrom; padding atoms are all images
            within it of a real atom.
        cutoffs: [n_lists] Angstrom, the model's neighbour-list cutoffs.
        padding_needs_neighbours: the model may ask for neighbours of padding atoms; their
            lists hold the particles present within the cutoff (as an open cluster).
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    n = len(positions)
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    max_cut = float(cutoffs.max()) if cutoffs.size else 0.0
    pbc = np.asarray(pbc, dtype=bool)
    box = np.ascontiguousarray(cell, dtype=np.float64)

    if not pbc.any() or n == 0:
        i, j, _ = pairs(positions, box, False, max_cut)
        return KIMParticles(
            positions, np.arange(n), n, _csr(i, j, positions, cutoffs, n, max_cut), n
        )

    r_max = max(influence_distance, max_cut)
    i, j, shifts = pairs(positions, box, pbc, r_max)
    width = int(np.abs(shifts).max()) if len(shifts) else 0
    base = 2 * width + 1
    # One key per (atom, cell shift): shift code * n + atom, with code 0 for no shift, so that
    # keys 0..n-1 are the real atoms (prepended: every real atom is a particle) and each other
    # distinct key is one padding atom, numbered in key order.
    s = shifts.astype(np.int64) + width
    code = ((s[:, 0] * base + s[:, 1]) * base + s[:, 2] - (width * base + width) * base - width) % (
        base**3
    )
    keys = np.concatenate([np.arange(n), code * n + j])
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    nbr = inverse[n:]
    rows = first[n:] - n  # a pair row that defines each padding atom
    pad_of = j[rows]
    coords = np.concatenate([positions, positions[pad_of] + shifts[rows] @ box])
    image_of = np.concatenate([np.arange(n), pad_of])

    if not padding_needs_neighbours:
        return KIMParticles(coords, image_of, n, _csr(i, nbr, coords, cutoffs, n, r_max), n)

    def build_all() -> list[tuple[np.ndarray, np.ndarray]]:
        return _padding_lists(
            i, j, nbr, shifts.astype(np.intp), width, rows, coords, cutoffs, n, r_max
        )

    lists = _csr(i, nbr, coords, cutoffs, n, r_max)
    return KIMParticles(coords, image_of, n, lists, len(coords), build_all)


def _padding_lists(
    i: np.ndarray,
    j: np.ndarray,
    nbr: np.ndarray,
    shifts: np.ndarray,
    width: int,
    rows: np.ndarray,
    coords: np.ndarray,
    cutoffs: np.ndarray,
    n: int,
    r_max: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CSR lists of all particles, padding atoms included (as an open cluster).

    The neighbours of padding atom p = image (a, S_p) of real atom a are the images
    (b, S_p + S_ab) of a's neighbours b that are themselves particles (real atoms when
    S_p + S_ab = 0). ``rows`` are the pair rows that defined the padding atoms.
    """
    pad_of = j[rows]
    pad_shift = shifts[rows]
    n_all = len(coords)
    ptr = np.searchsorted(i, np.arange(n + 1))
    counts = ptr[pad_of + 1] - ptr[pad_of]
    owner = np.repeat(np.arange(n_all - n), counts)
    src = np.repeat(ptr[pad_of] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    total = shifts[src] + pad_shift[owner]
    b = j[src]
    wide = 2 * width
    pad_keys = _image_keys(pad_of, pad_shift, wide)
    order = np.argsort(pad_keys)
    sorted_keys = pad_keys[order]
    want = _image_keys(b, total, wide)
    at = np.minimum(np.searchsorted(sorted_keys, want), len(order) - 1)
    real = ~total.any(axis=1)
    found = real | (sorted_keys[at] == want)
    target = np.where(real, b, n + order[at])
    all_i = np.concatenate([i, n + owner[found]])
    all_nbr = np.concatenate([nbr, target[found]])
    srt = np.argsort(all_i, kind="stable")
    return _csr(all_i[srt], all_nbr[srt], coords, cutoffs, n_all, r_max)
