"""eiplab: inject the knowledge of empirical interatomic potentials (OpenKIM) into NN potentials.

Data flows one way: ``data`` (Atoms, DFT labels, splits) -> ``eips`` (EIP energies, alignment,
Table 2) -> ``graphs`` -> ``models`` -> ``training``/``strategies`` -> ``workflows`` ->
``analysis``; :class:`eiplab.Study` is the front door that resolves a dataset, its splits, EIPs,
grid settings and run store once, and :class:`eiplab.NNCalculator` runs a trained network in ASE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["NNCalculator", "Study", "__version__", "md"]

if TYPE_CHECKING:
    from .calculator import NNCalculator
    from .study import Study


def __getattr__(name: str) -> Any:
    # Study and NNCalculator import torch and the whole method; importing them lazily keeps
    # ``import eiplab`` (and the light modules Dask workers import, such as eiplab.engine) fast.
    if name == "Study":
        from .study import Study

        return Study
    if name == "NNCalculator":
        from .calculator import NNCalculator

        return NNCalculator
    raise AttributeError(f"module 'eiplab' has no attribute {name!r}")
