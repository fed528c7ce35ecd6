"""Which installed OpenKIM models are EIPs for an element: found from the installed collection.

Every installed portable model is asked (through kimpy) which species it supports; a model is an
EIP for a set of elements when it supports all of them and its family (the first word of its KIM
ID) is a physics-based functional form. The rest is left out with a reason, never silently
(:func:`eip_candidates` lists every model that supports the elements and why it is or is not an
EIP):

- machine-learned families (SNAP, DUNN, hNN, ...): not empirical potentials;
- generic parameterisations (``Universal`` in the id, or more than ``MAX_SPECIES`` elements, e.g.
  the universal Lennard-Jones sets): not fitted to the element;
- the KIM API's example models (``ex_...``);
- unknown families: listed so that a person decides (add the family to ``PHYSICS_FAMILIES``).

Models marked as trained on a dataset (:func:`eiplab.eips.registry.trained_on`) are refused as EIPs
for that dataset elsewhere (:func:`eiplab.eips.registry.check_not_trained_on`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pandas as pd

from .registry import EIPSpec, display_name, list_installed

PHYSICS_FAMILIES = frozenset({
    "ADP", "BOP", "Buckingham", "EAM", "EDIP", "EMT", "Exp6", "LJ", "LennardJones", "LennardJones612", "MEAM", "MFF",
    "MJ", "Morse", "SW", "TIDP", "TT", "Tersoff", "ThreeBodyBondOrder", "ThreeBodyCluster",
})
ML_FAMILIES = frozenset({"ACE", "ANN", "DUNN", "DeepMD", "GAP", "MTP", "NequIP", "PANNA", "SNAP", "TorchML", "hNN"})
MAX_SPECIES = 20  # more supported elements than this: a generic parameterisation, not fitted to the element

EIP, MACHINE_LEARNED, GENERIC, EXAMPLE, UNKNOWN = "EIP", "machine-learned", "generic", "KIM example", "unknown family"


@functools.lru_cache(maxsize=1)
def installed_species() -> dict[str, tuple[str, ...]]:
    """Species supported by every installed portable KIM model (asked through kimpy, ~6 s once
    per process). A model that cannot be created maps to an empty tuple."""
    from .errors import EIPError
    from .kim import KIMModel, _quiet_native_output

    found: dict[str, tuple[str, ...]] = {}
    with _quiet_native_output():  # some drivers print their parameter files' headers when created
        for model_id in list_installed():
            try:
                found[model_id] = tuple(KIMModel(model_id).species)
            except EIPError:
                found[model_id] = ()
    return found


def family(model_id: str) -> str:
    """The functional-form family of a KIM ID: its first word (``EAM``, ``MEAM``, ``SNAP`` ...)."""
    return model_id.split("_", 1)[0]


def verdict(model_id: str, species: Sequence[str]) -> str:
    """Why ``model_id`` is (``"EIP"``) or is not an EIP (module docstring)."""
    if model_id.startswith("ex_"):
        return EXAMPLE
    if family(model_id) in ML_FAMILIES:
        return MACHINE_LEARNED
    if "Universal" in model_id or len(species) > MAX_SPECIES:
        return GENERIC
    if family(model_id) not in PHYSICS_FAMILIES:
        return UNKNOWN
    return EIP


def eip_candidates(elements: Sequence[str]) -> pd.DataFrame:
    """Every installed model supporting all ``elements``: id, family, species, verdict (sorted by
    verdict, EIPs first, then id)."""
    wanted = set(elements)
    rows = [{"model_id": m, "family": family(m), "species": " ".join(s), "verdict": verdict(m, s)}
            for m, s in installed_species().items() if s and wanted <= set(s)]
    table = pd.DataFrame(rows, columns=["model_id", "family", "species", "verdict"])
    return table.sort_values(["verdict", "model_id"], key=lambda c: c.ne(EIP) if c.name == "verdict" else c,
                             ignore_index=True)


def installed_eips(elements: Sequence[str], system: str = "") -> list[EIPSpec]:
    """The installed physics-based KIM models for ``elements`` (see the module docstring), as
    EIPSpecs with short display names (:func:`eiplab.eips.registry.display_name`)."""
    table = eip_candidates(elements)
    ids = list(table.loc[table["verdict"] == EIP, "model_id"])
    return [EIPSpec(model_id, display_name(model_id), "", system or "".join(sorted(elements))) for model_id in ids]
