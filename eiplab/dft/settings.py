"""DFT settings: one frozen, hashable record of everything that changes a GPAW energy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ase import Atoms
from ase.calculators.calculator import kptdensity2monkhorstpack


@dataclass(frozen=True)
class DFTSettings:
    """Settings of a GPAW plane-wave calculation.

    The defaults are the built-in datasets' settings, chosen by the convergence study in
    ``reports/dft-convergence`` (energy differences within ~5 meV/atom): PBE, 300 eV,
    4.5 k-points per 1/Angstrom, Fermi-Dirac 0.2 eV.

    Attributes:
        xc: exchange-correlation functional (GPAW name), default ``"PBE"``.
        cutoff: plane-wave cutoff, eV.
        kpt_density: k-point density, points per reciprocal Angstrom (ASE convention, see
            :func:`ase.calculators.calculator.kptdensity2monkhorstpack`: the number of points
            along reciprocal vector b_i is ``ceil(2 pi |b_i| kpt_density)``, 1 along
            non-periodic directions).
        kpt_even: round each k-point count up to an even number (ASE's ``even`` flag).
        gamma: Gamma-centred grids (recommended for hexagonal cells).
        smearing: Fermi-Dirac width, eV. The stored energy is GPAW's ``get_potential_energy()``
            (extrapolated to zero width); the free energy is stored beside it.
        energy_tol: SCF convergence on the energy, eV per valence electron (GPAW ``energy``).
        density_tol: SCF convergence on the density, electrons per valence electron.
        maxiter: SCF iteration limit (a config that does not converge is recorded as failed).
        setups: per-element PAW setup names as ``(("Ag", "11"),)``; elements not listed use
            GPAW's default setup from gpaw-data.
        spinpol: spin-polarised calculation (Al, Ag, Au: not needed).
    """

    xc: str = "PBE"
    cutoff: float = 300.0
    kpt_density: float = 4.5
    kpt_even: bool = False
    gamma: bool = True
    smearing: float = 0.2
    energy_tol: float = 1e-5
    density_tol: float = 1e-4
    maxiter: int = 200
    setups: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    spinpol: bool = False

    def __post_init__(self) -> None:
        if self.cutoff <= 0 or self.kpt_density <= 0 or self.smearing < 0:
            raise ValueError(f"DFTSettings: cutoff, kpt_density must be > 0, smearing >= 0: {self}")
        # accept lists/dicts (e.g. from JSON) and store a sorted tuple of pairs (hashable)
        setups = self.setups.items() if isinstance(self.setups, Mapping) else self.setups
        object.__setattr__(self, "setups", tuple(sorted((str(k), str(v)) for k, v in setups)))

    def kpts(self, atoms: Atoms) -> tuple[int, int, int]:
        """Monkhorst-Pack grid size for ``atoms`` at this k-point density."""
        mp = kptdensity2monkhorstpack(atoms, kptdensity=self.kpt_density, even=self.kpt_even)
        return tuple(int(k) for k in mp)

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON record of the settings (for provenance and the DFT store)."""
        d = asdict(self)
        d["setups"] = dict(self.setups)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DFTSettings:
        """Inverse of :meth:`as_dict` (unknown keys raise ``TypeError``)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TypeError(f"DFTSettings: unknown keys {sorted(unknown)}")
        return cls(**dict(d))

    def digest(self) -> str:
        """Short hash of the settings (part of every DFT store key)."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def replace(self, **changes: Any) -> DFTSettings:
        """A copy with some fields changed."""
        return DFTSettings.from_dict({**self.as_dict(), **changes})
