"""Structural phase labels for datasets that carry none (e.g. pyxtal-ff's random crystals).

The label is derived from structure only (never from DFT energies): the mean coordination
number within a bond cutoff, rounded, binned into a few named classes.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

CN_CLASSES = (
    (0, 3, "open (CN<=3)"),
    (4, 4, "tetrahedral (CN=4)"),
    (5, 7, "intermediate (CN 5-7)"),
    (8, 12, "dense (CN 8-12)"),
    (13, 10**6, "compressed (CN>12)"),
)


def mean_coordination(atoms: Atoms, bond_cutoff: float) -> float:
    """Mean number of neighbours within ``bond_cutoff`` (Angstrom), periodic images included."""
    i = neighbor_list("i", atoms, bond_cutoff)
    return len(i) / len(atoms)


def coordination_class(atoms: Atoms, bond_cutoff: float) -> str:
    """Name of the coordination class of a configuration (see ``CN_CLASSES``)."""
    cn = int(np.rint(mean_coordination(atoms, bond_cutoff)))
    for lo, hi, name in CN_CLASSES:
        if lo <= cn <= hi:
            return name
    raise AssertionError(f"coordination {cn} outside CN_CLASSES")  # classes cover 0..inf
