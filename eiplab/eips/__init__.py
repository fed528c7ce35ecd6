"""Empirical interatomic potentials (EIPs): registry, KIM evaluation, cached labelling,
energy alignment and the EIP-vs-DFT benchmark (the paper's Table 2).

Data flow: configs (``ase.Atoms``) -> :func:`label_dataset` (energies in
``info[keys.ENERGY_EIP]``) -> :class:`SpeciesAligner` (offsets fitted on training configs) ->
:func:`eip_benchmark` / :func:`table2`.
"""

from .alignment import SpeciesAligner, SpeciesReference, fit_offsets
from .benchmark import eip_benchmark, force_errors, parity_figure, summarize, table2
from .cache import LabelCache, config_hash
from .calculator import CalculatorModel
from .configs import ConfigArrays
from .discovery import eip_candidates, installed_eips
from .energies import dft_energies, eip_energies, species_counts
from .errors import (
    AlignmentError,
    AlignmentWarning,
    EIPError,
    KIMError,
    LeakageError,
    ModelNotFoundError,
    SimulatorModelError,
    SpeciesNotSupportedError,
)
from .evaluate import Evaluation, evaluate, evaluate_detailed, load_model
from .kim import KIMModel
from .labelling import eip_forces, failures_table, label_dataset
from .registry import (
    TMOD_ID,
    EIPSpec,
    check_not_trained_on,
    list_installed,
    mark_trained_on,
    models_for,
    register_calculator,
    resolve,
    spec_for,
    system_names,
    trained_on,
)
from .systems import models_for_dataset, system_for_species

__all__ = [
    "TMOD_ID",
    "AlignmentError",
    "AlignmentWarning",
    "CalculatorModel",
    "ConfigArrays",
    "EIPError",
    "EIPSpec",
    "Evaluation",
    "KIMError",
    "LeakageError",
    "KIMModel",
    "LabelCache",
    "ModelNotFoundError",
    "SimulatorModelError",
    "SpeciesAligner",
    "SpeciesNotSupportedError",
    "SpeciesReference",
    "check_not_trained_on",
    "config_hash",
    "eip_candidates",
    "installed_eips",
    "mark_trained_on",
    "trained_on",
    "dft_energies",
    "eip_benchmark",
    "force_errors",
    "eip_energies",
    "evaluate",
    "evaluate_detailed",
    "eip_forces",
    "failures_table",
    "fit_offsets",
    "label_dataset",
    "list_installed",
    "load_model",
    "models_for",
    "models_for_dataset",
    "parity_figure",
    "register_calculator",
    "resolve",
    "spec_for",
    "species_counts",
    "summarize",
    "system_for_species",
    "system_names",
    "table2",
]
