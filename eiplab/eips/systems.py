"""The EIPs of a dataset: the paper's Table 2 list where one covers its elements ("Si", "Al",
"AgAu"), else every installed physics-based KIM model for them (:mod:`eiplab.eips.discovery`),
never a model fitted on the dataset itself."""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

from .registry import EIPSpec, check_not_trained_on, models_for, trained_on

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
    """The EIPs of ``configs``: the paper's Table 2 EIPs when a Table 2 system covers its
    elements, else the installed physics-based KIM models supporting all of them
    (:func:`eiplab.eips.discovery.installed_eips`); models marked as fitted on the dataset (its
    ``name``) are left out.

    Raises:
        KeyError: no EIP is installed for these elements.
    """
    from .discovery import installed_eips

    species = sorted({s for a in configs for s in a.get_chemical_symbols()})
    dataset = getattr(configs, "name", None)
    try:
        specs = models_for(system_for_species(species))
    except KeyError:
        specs = installed_eips(species)
        if not specs:
            raise KeyError(f"no installed physics-based KIM model supports all of {species}; "
                           "see eiplab.eips.discovery.eip_candidates for what is installed") from None
    base = (dataset or "").split("/", 1)[0]
    specs = [s for s in specs if not any(base in mark.datasets for mark in trained_on(s.model_id))]
    check_not_trained_on([s.model_id for s in specs], dataset)
    return specs
