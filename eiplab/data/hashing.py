"""Content hashes of configurations (cache keys, duplicate detection)."""

from __future__ import annotations

import hashlib

import numpy as np
from ase import Atoms


def config_hash(atoms: Atoms, decimals: int = 6) -> str:
    """A hash of species, positions, cell and pbc (rounded to ``decimals`` Angstrom).

    Two configurations with the same hash are the same structure to 1e-6 Angstrom. The id and
    labels are not part of the hash.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(np.round(atoms.positions, decimals) + 0.0, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(np.round(atoms.cell.array, decimals) + 0.0, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.pbc, dtype=np.bool_).tobytes())
    return h.hexdigest()
