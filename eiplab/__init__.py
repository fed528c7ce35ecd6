"""eiplab: inject the knowledge of empirical interatomic potentials (OpenKIM) into NN potentials.

Data flows one way: ``data`` (Atoms, DFT labels, splits) -> ``eips`` (EIP energies, alignment,
Table 2) -> ``graphs`` -> ``models`` -> ``training``/``strategies`` -> ``analysis``.
"""

__version__ = "0.1.0"
