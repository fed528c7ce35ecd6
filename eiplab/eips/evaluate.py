"""Evaluate one EIP on many configurations: energies in eV, NaN (with a reason) on failure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from ase import Atoms

from .. import keys
from .calculator import CalculatorModel
from .configs import Config
from .errors import EIPError, SpeciesNotSupportedError
from .kim import KIMModel
from .registry import resolve, spec_for

log = logging.getLogger(__name__)


class EIPModel(Protocol):
    """What labelling needs from an EIP (KIM or ASE calculator)."""

    model_id: str
    species: list[str]

    def supports(self, numbers: np.ndarray) -> bool: ...

    def check_species(self, atoms: Config) -> None: ...

    def energy(self, atoms: Config) -> float: ...

    def energy_and_forces(self, atoms: Config) -> tuple[float, np.ndarray]: ...


def load_model(model_id: str) -> EIPModel:
    """Create the model behind ``model_id`` once: a :class:`KIMModel` or a :class:`CalculatorModel`."""
    spec = spec_for(resolve(model_id))
    if spec.is_kim:
        return KIMModel(spec.model_id)
    return CalculatorModel(spec)


def config_label(atoms: Atoms, index: int) -> str:
    """``config_id`` of ``atoms`` when set, else ``#index`` (for messages)."""
    return str(atoms.info.get(keys.CONFIG_ID, f"#{index}"))


@dataclass
class Evaluation:
    """Energies of one EIP on a list of configurations.

    Attributes:
        energies: [n_configs] eV, total energies; NaN where the EIP failed.
        failures: config index -> reason, for each NaN energy (and, with forces, for each
            config whose forces are non-finite: its forces are None).
        forces: per config [n_atoms, 3] eV/Angstrom (None where failed), if requested.
    """

    energies: np.ndarray
    failures: dict[int, str] = field(default_factory=dict)
    forces: list[np.ndarray | None] | None = None


def evaluate_one(
    model: EIPModel, atoms: Config, forces: bool = False
) -> tuple[float, np.ndarray | None, str | None]:
    """(energy eV, forces or None, failure reason or None) of one config; never raises EIPError
    except :class:`SpeciesNotSupportedError`."""
    try:
        if forces:
            e, f = model.energy_and_forces(atoms)
        else:
            e, f = model.energy(atoms), None
    except SpeciesNotSupportedError:
        raise
    except (EIPError, RuntimeError, ValueError, FloatingPointError, ArithmeticError) as err:
        return float("nan"), None, f"{type(err).__name__}: {err}"
    if not np.isfinite(e):
        return float("nan"), None, f"non-finite energy ({e})"
    if f is not None and not np.all(np.isfinite(f)):
        return e, None, "non-finite forces"
    return e, f, None


def evaluate_detailed(
    configs: Sequence[Atoms],
    model: str | EIPModel,
    *,
    forces: bool = False,
    on_unsupported: Literal["raise", "nan"] = "raise",
) -> Evaluation:
    """Energies (and optionally forces) of ``model`` on ``configs``, with failure reasons.

    Args:
        configs: configurations (positions Angstrom).
        model: a model id (created once here) or a loaded model.
        forces: also return forces.
        on_unsupported: ``"raise"`` (default) refuses a config with an element the model lacks
            (error naming model, species and config); ``"nan"`` records it as a failure.
    """
    m = load_model(model) if isinstance(model, str) else model
    energies = np.full(len(configs), np.nan)
    failures: dict[int, str] = {}
    all_forces: list[np.ndarray | None] | None = [None] * len(configs) if forces else None
    for k, atoms in enumerate(configs):
        try:
            e, f, reason = evaluate_one(m, atoms, forces)
        except SpeciesNotSupportedError as err:
            if on_unsupported == "raise":
                raise SpeciesNotSupportedError(f"{err} -- config {config_label(atoms, k)}") from err
            e, f, reason = float("nan"), None, str(err)
        energies[k] = e
        if reason is not None:
            failures[k] = reason
        if all_forces is not None:
            all_forces[k] = f
    return Evaluation(energies, failures, all_forces)


def evaluate(
    configs: Sequence[Atoms], model_id: str, *, forces: bool = False
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray | None]]:
    """Total energies (eV) of EIP ``model_id`` on ``configs``; NaN where the model failed.

    Failure reasons are logged (warning); :func:`evaluate_detailed` returns them. With
    ``forces=True`` returns ``(energies, forces)``, forces a list of [n_atoms, 3] eV/Angstrom
    arrays (None where failed).

    Raises:
        ModelNotFoundError, SimulatorModelError, KIMError: the model cannot be loaded.
        SpeciesNotSupportedError: a config holds an element the model lacks.
    """
    result = evaluate_detailed(configs, model_id, forces=forces)
    for k, reason in result.failures.items():
        log.warning("EIP %s failed on config %s: %s", model_id, config_label(configs[k], k), reason)
    if forces:
        assert result.forces is not None
        return result.energies, result.forces
    return result.energies
