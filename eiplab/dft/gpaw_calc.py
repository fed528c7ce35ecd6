"""Build a GPAW calculator from :class:`DFTSettings` (GPAW is imported lazily)."""

from __future__ import annotations

import functools
from typing import Any

from ase import Atoms

from .settings import DFTSettings


class NonPeriodicError(ValueError):
    """A configuration that a plane-wave calculation cannot take (not periodic in 3D)."""


@functools.cache
def gpaw_version() -> str:
    """Installed GPAW version (``ImportError`` with the install route when missing)."""
    return str(_gpaw().__version__)


@functools.cache
def _gpaw() -> Any:
    try:
        import gpaw
    except ImportError as e:
        raise ImportError(
            "eiplab.dft needs GPAW: apt-get install libxc-dev libopenblas-dev, then "
            "CC=g++ pip install gpaw==26.7.0 gpaw-data==1.2.1 (see scripts/setup.sh)"
        ) from e
    return gpaw


def check_periodic(atoms: Atoms) -> None:
    """Refuse configs that are not periodic in all three directions, or have no volume.

    Raises:
        NonPeriodicError: naming the config id (when set) and the pbc flags. Clusters and
            slabs need vacuum padding and a different k-point rule; eiplab's built-in DFT
            datasets are bulk only, so they are refused rather than guessed.
    """
    cid = atoms.info.get("config_id", "?")
    if not atoms.pbc.all():
        raise NonPeriodicError(
            f"config {cid}: pbc={atoms.pbc.tolist()}; eiplab.dft computes bulk (3D-periodic) "
            "cells only: wrap a cluster in a periodic box with vacuum yourself if you need one"
        )
    if abs(atoms.cell.volume) < 1e-6:
        raise NonPeriodicError(f"config {cid}: the cell has zero volume")


def make_calculator(atoms: Atoms, settings: DFTSettings, txt: str | None = None) -> Any:
    """A GPAW plane-wave calculator for ``atoms`` (not attached).

    Args:
        atoms: a 3D-periodic configuration (its cell fixes the k-point grid).
        settings: the DFT settings.
        txt: GPAW log file; ``None`` = silent.

    Raises:
        NonPeriodicError: see :func:`check_periodic`.
        ImportError: GPAW is not installed.
    """
    check_periodic(atoms)
    gpaw = _gpaw()
    kwargs: dict[str, Any] = {
        "mode": gpaw.PW(settings.cutoff),
        "xc": settings.xc,
        "kpts": {"size": settings.kpts(atoms), "gamma": settings.gamma},
        "occupations": gpaw.FermiDirac(settings.smearing),
        "convergence": {"energy": settings.energy_tol, "density": settings.density_tol},
        "maxiter": settings.maxiter,
        "spinpol": settings.spinpol,
        "txt": txt,
    }
    if settings.setups:
        kwargs["setups"] = dict(settings.setups)
    return gpaw.GPAW(**kwargs)
