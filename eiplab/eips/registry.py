"""The EIPs of the paper's Table 2 per chemical system, and KIM model-id resolution.

KIM portable models are named by their KIM ID (``Name__MO_<12 digits>_<3-digit version>``).
EIPs that are not KIM models (e.g. TMOD, Kumagai et al. 2007) are registered here as ASE
calculator factories under an id of their own; :func:`resolve` accepts both kinds.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from ase.calculators.calculator import Calculator

from .errors import LeakageError, ModelNotFoundError, SimulatorModelError

log = logging.getLogger(__name__)

_KIM_ID = re.compile(r"^(?P<stem>.+__(?P<kind>MO|SM)_\d{12})_(?P<version>\d{3})$")

#: Id under which TMOD (Kumagai, Izumi, Hara, Sakai 2007 modified Tersoff Si) is registered.
TMOD_ID = "TMOD_KumagaiIzumiHaraSakai_2007_Si"


@dataclass(frozen=True)
class EIPSpec:
    """One EIP of Table 2.

    Attributes:
        model_id: KIM ID of a portable model, or the id of a registered non-KIM EIP.
        name: short display name, e.g. ``"Tersoff (T2)"``.
        doi: DOI of the model (KIM item DOI or the paper), without ``https://doi.org/``.
        system: chemical system of Table 2 (``"Si"``, ``"Al"``, ``"AgAu"``).
        calculator: for non-KIM EIPs, a picklable zero-argument factory of an ASE calculator
            returning energies in eV for positions in Angstrom; ``None`` for KIM models.
        species: element symbols a non-KIM EIP supports (KIM models report their own).
    """

    model_id: str
    name: str
    doi: str
    system: str
    calculator: Callable[[], Calculator] | None = None
    species: tuple[str, ...] | None = None

    @property
    def is_kim(self) -> bool:
        """True for a KIM portable model, False for an ASE-calculator EIP."""
        return self.calculator is None


def _kumagai_calculator() -> Calculator:
    """matscipy's Kumagai-Izumi-Hara-Sakai (2007) modified Tersoff potential for Si (TMOD)."""
    try:
        from matscipy.calculators.manybody import Manybody
        from matscipy.calculators.manybody.explicit_forms import Kumagai
        from matscipy.calculators.manybody.explicit_forms.kumagai import (
            Kumagai_Comp_Mat_Sci_39_Si,
        )
    except ImportError as e:
        raise ModelNotFoundError(
            f"{TMOD_ID} (TMOD) needs matscipy, which is not importable: pip install matscipy"
        ) from e
    return Manybody(**Kumagai(Kumagai_Comp_Mat_Sci_39_Si))


def _kim(model_id: str, name: str, doi_suffix: str, system: str) -> EIPSpec:
    return EIPSpec(model_id, name, f"10.25950/{doi_suffix}", system)


_TABLE2: dict[str, tuple[EIPSpec, ...]] = {
    "Si": (
        _kim("EDIP_JustoBazantKaxiras_1998_Si__MO_958932894036_002", "EDIP", "545ca247", "Si"),
        _kim(
            "MEAM_LAMMPS_LenoskySadighAlonso_2000_Si__MO_533426548156_000", "MEAM", "b8dc8b23", "Si"
        ),
        _kim(
            "SW_BalamaneHaliciogluTiller_1992_Si__MO_113686039439_004",
            "SW (BalamaneHaliciogluTiller)",
            "3dc2cb7f",
            "Si",
        ),
        _kim(
            "SW_ZhangXieHu_2014OptimizedSW1_Si__MO_800412945727_004",
            "SW (ZhangXieHu)",
            "32a4bf2c",
            "Si",
        ),
        _kim(
            "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003",
            "Tersoff (T2)",
            "cadc4e78",
            "Si",
        ),
        _kim(
            "Tersoff_LAMMPS_Tersoff_1988T3_Si__MO_186459956893_003",
            "Tersoff (T3)",
            "d6e8a23e",
            "Si",
        ),
        _kim(
            "Tersoff_LAMMPS_ErhartAlbe_2005_SiC__MO_903987585848_004",
            "Tersoff (ErhartAlbe)",
            "6aa22835",
            "Si",
        ),
        EIPSpec(
            TMOD_ID,
            "Tersoff (TMOD)",
            "10.1016/j.commatsci.2006.07.013",
            "Si",
            calculator=_kumagai_calculator,
            species=("Si",),
        ),
    ),
    "Al": (
        _kim(
            "EMT_Asap_Standard_JacobsenStoltzeNorskov_1996_Al__MO_623376124862_001",
            "EMT",
            "bdbaee6a",
            "Al",
        ),
        _kim(
            "Morse_Shifted_GirifalcoWeizer_1959LowCutoff_Al__MO_411898953661_004",
            "Morse (LowCutoff)",
            "977dc2ac",
            "Al",
        ),
        _kim(
            "Morse_Shifted_GirifalcoWeizer_1959MedCutoff_Al__MO_279544746097_004",
            "Morse (MedCutoff)",
            "474ccb33",
            "Al",
        ),
        _kim(
            "Morse_Shifted_GirifalcoWeizer_1959HighCutoff_Al__MO_140175748626_004",
            "Morse (HighCutoff)",
            "45d9848f",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_ErcolessiAdams_1994_Al__MO_123629422045_005",
            "EAM (ErcolessiAdams)",
            "bc2d2486",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_SturgeonLaird_2000_Al__MO_120808805541_005",
            "EAM (SturgeonLaird)",
            "d62edb43",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_WineyKubotaGupta_2010_Al__MO_149316865608_005",
            "EAM (WineyKubotaGupta)",
            "23542694",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_ZopeMishin_2003_Al__MO_664470114311_005",
            "EAM (ZopeMishin)",
            "26dbac6e",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_Zhakhovsky_2009_Al__MO_519613893196_000",
            "EAM (Zhakhovsky)",
            "c3a79c52",
            "Al",
        ),
        _kim(
            "EAM_Dynamo_ZhouJohnsonWadley_2004NISTretabulation_Al__MO_060567868558_000",
            "EAM (ZhouJohnsonWadley)",
            "c775fc98",
            "Al",
        ),
    ),
    "AgAu": (
        _kim(
            "EAM_Dynamo_ZhouJohnsonWadley_2004NISTretabulation_CuAgAu__MO_318213562153_000",
            "EAM (ZhouJohnsonWadley)",
            "d77528cf",
            "AgAu",
        ),
        _kim(
            "EMT_Asap_Standard_JacobsenStoltzeNorskov_1996_AlAgAuCuNiPdPt__MO_115316750986_001",
            "EMT (JacobsenStoltzeNorskov)",
            "485ab326",
            "AgAu",
        ),
    ),
}

#: Non-KIM EIPs by id (TMOD, plus whatever :func:`register_calculator` adds).
_NON_KIM: dict[str, EIPSpec] = {
    s.model_id: s for specs in _TABLE2.values() for s in specs if not s.is_kim
}


def system_names() -> list[str]:
    """Chemical systems with a Table 2 model list (``["Si", "Al", "AgAu"]``)."""
    return list(_TABLE2)


def models_for(system: str) -> list[EIPSpec]:
    """The Table 2 EIPs of a chemical system (``"Si"``, ``"Al"`` or ``"AgAu"``), in paper order."""
    try:
        return list(_TABLE2[system])
    except KeyError:
        raise KeyError(
            f"no Table 2 models for system {system!r}; known: {system_names()}"
        ) from None


def register_calculator(
    model_id: str,
    factory: Callable[[], Calculator],
    species: tuple[str, ...] | list[str],
    *,
    name: str | None = None,
    doi: str = "",
    system: str = "",
) -> EIPSpec:
    """Register a non-KIM EIP given as an ASE calculator factory (energies in eV).

    ``factory`` must be picklable (a module-level function or ``functools.partial``) for
    labelling with ``n_jobs > 1``. Returns the new spec; re-registering an id replaces it.
    """
    if _KIM_ID.match(model_id):
        raise ValueError(f"{model_id!r} looks like a KIM ID; pick another id for a non-KIM EIP")
    spec = EIPSpec(
        model_id, name or model_id, doi, system, calculator=factory, species=tuple(species)
    )
    _NON_KIM[model_id] = spec
    return spec


def spec_for(model_id: str) -> EIPSpec:
    """The spec of a model id (Table 2 entry, registered calculator, or a KIM spec named by
    :func:`display_name`)."""
    if model_id in _NON_KIM:
        return _NON_KIM[model_id]
    for specs in _TABLE2.values():
        for s in specs:
            if s.model_id == model_id:
                return s
    return EIPSpec(model_id, display_name(model_id), "", "")


_YEAR = re.compile(r"^(?P<year>\d{4})(?P<variant>.*)$")


def _short_name(model_id: str) -> str:
    words = model_id.split("__", 1)[0].split("_")
    for k, word in enumerate(words):
        if _YEAR.match(word) and k > 0:
            return f"{words[0]} ({words[k - 1]} {word})"
    return model_id


def display_name(model_id: str) -> str:
    """A short name from a KIM ID: ``MEAM_LAMMPS_ParkFellingerLenosky_2012_Mo__MO_..`` ->
    ``MEAM (ParkFellingerLenosky 2012)``; a variant after the year is kept (``1959HighCutoff``);
    where two installed models differ only in their KIM number, its first digits follow (``#4864``)."""
    name = _short_name(model_id)
    if name == model_id or "__MO_" not in model_id:
        return name
    stem = model_id.split("__", 1)[0]
    twins = [m for m in _installed(False) if m != model_id and m.split("__", 1)[0] == stem]
    return f"{name} #{model_id.split('__MO_')[1][:4]}" if twins else name


# --- models fitted on a dataset: never EIPs for it ----------------------------------------------
@dataclass(frozen=True)
class TrainedOn:
    """Models (KIM IDs matching ``pattern``, a regular expression) fitted on ``datasets``."""

    pattern: str
    datasets: tuple[str, ...]
    reference: str


_TRAINED_ON: list[TrainedOn] = [
    TrainedOn(r"^SNAP_ZuoChenLi_2019", ("ge-mlearn", "li-mlearn", "mo-mlearn"),
              "Zuo et al., J. Phys. Chem. A 124, 731 (2020): the SNAPs were fitted on the mlearn data"),
]


def mark_trained_on(pattern: str, datasets: tuple[str, ...] | list[str], reference: str = "") -> TrainedOn:
    """Record that the models whose KIM ID matches ``pattern`` were fitted on ``datasets`` (names
    as :func:`eiplab.data.load_dataset` gives them): they are then refused as EIPs for them."""
    re.compile(pattern)  # a bad pattern fails here, not at the first check
    mark = TrainedOn(pattern, tuple(datasets), reference)
    _TRAINED_ON.append(mark)
    return mark


def trained_on(model_id: str) -> list[TrainedOn]:
    """The records of datasets ``model_id`` was fitted on (empty for most models)."""
    return [mark for mark in _TRAINED_ON if re.search(mark.pattern, model_id)]


def check_not_trained_on(model_ids: list[str] | tuple[str, ...], dataset: str | None) -> None:
    """Raise :class:`LeakageError` when one of ``model_ids`` was fitted on ``dataset`` (a dataset
    name, or a subset name ``"<dataset>/..."``); nothing to check without a name."""
    if not dataset:
        return
    base = dataset.split("/", 1)[0]
    for model_id in model_ids:
        for mark in trained_on(model_id):
            if base in mark.datasets:
                raise LeakageError(
                    f"{model_id} was fitted on the dataset {base!r} ({mark.reference or 'marked trained on it'}): "
                    "its energies there are not knowledge from elsewhere, so it cannot serve as an EIP for it. "
                    "Leave it out of the EIP list (eiplab.eips.models_for_dataset never includes it)."
                )


def _list_with_kimpy(simulator: bool) -> list[str]:
    import kimpy

    col = kimpy.collections.create()
    kind = (
        kimpy.collection_item_type.simulatorModel
        if simulator
        else kimpy.collection_item_type.portableModel
    )
    n = col.cache_list_of_item_names_by_type(kind)
    return sorted(col.get_item_name_by_type(i) for i in range(n))


def _list_with_cli(simulator: bool) -> list[str]:
    exe = shutil.which("kim-api-collections-management")
    if exe is None:
        return []
    out = subprocess.run([exe, "list"], capture_output=True, text=True, check=False).stdout
    names: set[str] = set()
    section = None
    for line in out.splitlines():
        if line.startswith(("Portable Models:", "Simulator Models:", "Model Drivers:")):
            section = line.split(":")[0]
        elif line.startswith("\t") and line.strip() != "--empty--":
            if section == ("Simulator Models" if simulator else "Portable Models"):
                names.add(line.strip())
    return sorted(names)


@functools.lru_cache(maxsize=2)
def _installed(simulator: bool) -> tuple[str, ...]:
    try:
        return tuple(_list_with_kimpy(simulator))
    except ImportError:
        log.info("kimpy not importable; listing KIM models with kim-api-collections-management")
        return tuple(_list_with_cli(simulator))


def list_installed(*, simulator: bool = False) -> list[str]:
    """KIM IDs of the installed portable models (or simulator models), sorted.

    Uses kimpy's collections API; falls back to parsing ``kim-api-collections-management
    list`` when kimpy is not importable. Empty when neither the KIM API nor kimpy is present.
    """
    return list(_installed(simulator))


def resolve(model_id: str) -> str:
    """The installed id to use for ``model_id``.

    Non-KIM ids registered here are returned unchanged. A KIM ID that is installed is returned
    unchanged; one whose 3-digit version suffix differs from the installed one (``_003`` vs
    ``_004``) maps to the installed version (highest if several), with a log message.

    Raises:
        SimulatorModelError: ``model_id`` is a KIM simulator model (``..._SM_...``).
        ModelNotFoundError: nothing installed matches; the message lists the closest ids.
    """
    if model_id in _NON_KIM:
        return model_id
    m = _KIM_ID.match(model_id)
    if (
        (m is not None and m["kind"] == "SM")
        or model_id.startswith("Sim_")
        or model_id in _installed(True)
    ):
        raise SimulatorModelError(
            f"{model_id!r} is a KIM simulator model: it runs inside its simulator (LAMMPS, ASAP) "
            "and does not load through kimpy. Use a portable model (an id with __MO_)."
        )
    installed = _installed(False)
    if model_id in installed:
        return model_id
    if m is not None:
        same = sorted(i for i in installed if i.startswith(m["stem"] + "_"))
        if same:
            log.info(
                "KIM model %s is not installed; using installed version %s", model_id, same[-1]
            )
            return same[-1]
    close = difflib.get_close_matches(model_id, installed, n=3, cutoff=0.5)
    hint = f" Closest installed: {', '.join(close)}." if close else ""
    where = (
        f" {len(installed)} portable models are installed"
        if installed
        else " No KIM portable models were found (is the KIM API with openkim-models installed?)"
    )
    raise ModelNotFoundError(f"KIM model {model_id!r} is not installed.{where}.{hint}")
