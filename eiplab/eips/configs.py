"""What EIP models evaluate: an ``ase.Atoms`` or the same data as plain arrays."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from ase import Atoms


class ConfigArrays(NamedTuple):
    """A configuration as plain arrays; models accept it wherever they accept ``ase.Atoms``
    (labelling workers use it: building ``Atoms`` costs about as much as a KIM call)."""

    numbers: np.ndarray  # [n_atoms] int
    positions: np.ndarray  # [n_atoms, 3] Angstrom
    cell: np.ndarray  # [3, 3] Angstrom, rows are cell vectors
    pbc: np.ndarray  # [3] bool


Config = Atoms | ConfigArrays
