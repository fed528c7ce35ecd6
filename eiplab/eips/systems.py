"""Which Table 2 system covers a dataset: its elements decide ("Si", "Al", "AgAu")."""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

from .registry import EIPSpec, models_for

SYSTEM_ELEMENTS = {"Si": {"Si"}, "Al": {"Al"}, "AgAu": {"Ag", "Au"}}


def system_for_species(species: Sequence[str]) -> str:
    """The Table 2 system whose elements include all of ``species``.

    Raises:
        KeyError: no Table 2 system covers them (name the KIM models yourself then).
    """
    wanted = set(species)
    for system, elements in SYSTEM_ELEMENTS.items():
        if wanted <= elements:
            return system
    raise KeyError(
        f"no Table 2 EIP set covers the elements {sorted(wanted)}; pass KIM model ids explicitly "
        "(eiplab.eips.list_installed() lists the installed ones)"
    )


def models_for_dataset(configs: Sequence[Atoms]) -> list[EIPSpec]:
    """The paper's Table 2 EIPs for the elements present in ``configs``."""
    species = {s for a in configs for s in a.get_chemical_symbols()}
    return models_for(system_for_species(sorted(species)))
