"""Non-KIM EIPs: an ASE calculator behind the same interface as :class:`KIMModel`."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .configs import Config
from .errors import SpeciesNotSupportedError
from .registry import EIPSpec


class CalculatorModel:
    """An EIP given as an ASE calculator factory (see :func:`register_calculator`).

    Attributes:
        model_id: the registered id.
        species: element symbols the EIP supports, sorted.
    """

    def __init__(self, spec: EIPSpec) -> None:
        if spec.calculator is None:
            raise ValueError(f"{spec.model_id} is a KIM model; use KIMModel")
        self.model_id = spec.model_id
        self.species = sorted(spec.species or ())
        self._numbers = np.zeros(len(chemical_symbols), dtype=bool)
        for s in self.species:
            self._numbers[chemical_symbols.index(s)] = True
        self._calc = spec.calculator()

    def supports(self, numbers: np.ndarray) -> bool:
        """Whether every atomic number in ``numbers`` is a species of this EIP."""
        numbers = np.asarray(numbers)
        return bool(np.all(self._numbers[numbers])) if numbers.size else True

    def check_species(self, atoms: Config) -> None:
        """Raise :class:`SpeciesNotSupportedError` when ``atoms`` holds an unsupported element."""
        if not self.supports(atoms.numbers):
            missing = sorted({chemical_symbols[z] for z in atoms.numbers if not self._numbers[z]})
            raise SpeciesNotSupportedError(
                f"EIP {self.model_id} does not support species {missing} (it supports {self.species})"
            )

    def _prepared(self, atoms: Config) -> Atoms:
        """A calculator-ready copy: non-periodic configs get a box that encloses them.

        Some calculators (matscipy's) need an invertible cell even without periodicity; the
        energy of an open cluster does not depend on the box.
        """
        a = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        if not a.pbc.any():
            extent = np.ptp(a.positions, axis=0) if len(a) else np.zeros(3)
            a.set_cell(np.diag(extent + 20.0))
            a.positions -= a.positions.min(axis=0) - 10.0 if len(a) else 0.0
        elif abs(a.cell.volume) < 1e-9:
            a.set_cell(a.cell.complete())
        return a

    def energy(self, atoms: Config) -> float:
        """Total potential energy of ``atoms`` in eV."""
        self.check_species(atoms)
        a = self._prepared(atoms)
        a.calc = self._calc
        return float(a.get_potential_energy())

    def energy_and_forces(self, atoms: Config) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces ([n_atoms, 3], eV/Angstrom)."""
        self.check_species(atoms)
        a = self._prepared(atoms)
        a.calc = self._calc
        return float(a.get_potential_energy()), np.array(a.get_forces())

    def __repr__(self) -> str:
        return f"CalculatorModel({self.model_id!r})"
