"""Recipes of the built-in DFT datasets ``al-gpaw`` and ``agau-gpaw`` (what to generate,
how many configs get DFT, which settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..data.configset import ConfigSet
from .generators import generate_agau, generate_al
from .settings import DFTSettings


@dataclass(frozen=True)
class DatasetRecipe:
    """How a built-in DFT dataset is made.

    Attributes:
        name: dataset name (``"al-gpaw"``).
        system: EIP registry system (``"Al"``, ``"AgAu"``): all its Table 2 EIPs label it.
        generate: ``generate(n, seed) -> ConfigSet`` of ``n`` configs.
        settings: DFT settings (chosen by the convergence study, reports/dft-convergence).
        n_labelled: configs with DFT for train/val/test.
        n_pool: configs with EIP energies only (DFT hidden from training) ...
        n_audit: ... of which this many get DFT for the classifier audit.
        seed: generator and subset seed.
    """

    name: str
    system: str
    generate: Callable[[int, int], ConfigSet]
    settings: DFTSettings
    n_labelled: int = 620
    n_pool: int = 5000
    n_audit: int = 320
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def _al(n: int, seed: int) -> ConfigSet:
    return generate_al(n, seed, name="al-gpaw")


def _agau(n: int, seed: int) -> ConfigSet:
    return generate_agau(n, seed, name="agau-gpaw")


#: The built-in DFT datasets; settings from reports/dft-convergence (5 meV/atom criterion:
#: PW 300 eV, k-point density 4.5 /A, Fermi-Dirac 0.2 eV, PBE).
RECIPES: dict[str, DatasetRecipe] = {
    "al-gpaw": DatasetRecipe(
        name="al-gpaw",
        system="Al",
        generate=_al,
        settings=DFTSettings(cutoff=300.0, kpt_density=4.5, smearing=0.2),
    ),
    "agau-gpaw": DatasetRecipe(
        name="agau-gpaw",
        system="AgAu",
        generate=_agau,
        settings=DFTSettings(cutoff=300.0, kpt_density=4.5, smearing=0.2),
    ),
}
