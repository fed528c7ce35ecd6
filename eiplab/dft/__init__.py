"""Reference DFT labelling with GPAW, and the generators of the built-in Al and AgAu datasets.

GPAW is imported only when a calculation runs. Modules: :mod:`.settings` (DFTSettings),
:mod:`.gpaw_calc` (the calculator), :mod:`.store` and :mod:`.runner` (resumable, parallel
labelling), :mod:`.generators` (configurations), :mod:`.convergence` (the cutoff/k-point
study), :mod:`.datasets` (the recipes), :mod:`.cli_entry` (``eiplab dft-generate``).
"""

from .cli_entry import dft_generate, ship_dataset
from .datasets import RECIPES, DatasetRecipe
from .gpaw_calc import NonPeriodicError, gpaw_version, make_calculator
from .runner import compute_one, label_dft
from .settings import DFTSettings
from .store import DFTRecord, DFTStore

__all__ = [
    "RECIPES",
    "DFTRecord",
    "DFTSettings",
    "DFTStore",
    "DatasetRecipe",
    "NonPeriodicError",
    "compute_one",
    "dft_generate",
    "gpaw_version",
    "label_dft",
    "make_calculator",
    "ship_dataset",
]
