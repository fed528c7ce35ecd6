"""Energy tables read from ``atoms.info`` (DFT and EIP totals) and species counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import atomic_numbers

from .. import keys
from .evaluate import config_label


def config_ids(configs: Sequence[Atoms]) -> pd.Index:
    """``config_id`` of each config (``#k`` where missing), as an index named ``config_id``."""
    return pd.Index([config_label(a, k) for k, a in enumerate(configs)], name=keys.CONFIG_ID)


def dft_energies(configs: Sequence[Atoms]) -> pd.Series:
    """``info[keys.ENERGY_DFT]`` per config, eV total (NaN where missing)."""
    values = [float(a.info.get(keys.ENERGY_DFT, np.nan)) for a in configs]
    return pd.Series(values, index=config_ids(configs), name=keys.ENERGY_DFT, dtype=float)


def eip_energies(configs: Sequence[Atoms], model_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """``info[keys.ENERGY_EIP]`` as a table: one column per model, eV total (NaN = missing/failed).

    ``model_ids`` defaults to every model found on any config, in first-seen order.
    """
    if model_ids is None:
        seen: dict[str, None] = {}
        for a in configs:
            seen.update(dict.fromkeys(a.info.get(keys.ENERGY_EIP, {})))
        model_ids = list(seen)
    data = {
        m: [float(a.info.get(keys.ENERGY_EIP, {}).get(m, np.nan)) for a in configs]
        for m in model_ids
    }
    return pd.DataFrame(data, index=config_ids(configs), columns=list(model_ids), dtype=float)


def n_atoms(configs: Sequence[Atoms]) -> pd.Series:
    """Atom count per config."""
    return pd.Series([len(a) for a in configs], index=config_ids(configs), name=keys.N_ATOMS)


def dataset_species(configs: Sequence[Atoms]) -> list[str]:
    """Element symbols present in ``configs``, sorted by atomic number."""
    present = {s for a in configs for s in a.get_chemical_symbols()}
    return sorted(present, key=atomic_numbers.__getitem__)


def species_counts(configs: Sequence[Atoms], species: Sequence[str]) -> pd.DataFrame:
    """Number of atoms of each species per config: [n_configs, n_species] int.

    Raises:
        ValueError: a config holds a species outside ``species``.
    """
    z = np.array([atomic_numbers[s] for s in species], dtype=int)
    out = np.zeros((len(configs), len(species)), dtype=int)
    for k, a in enumerate(configs):
        numbers, counts = np.unique(a.numbers, return_counts=True)
        col = np.searchsorted(z, numbers, sorter=np.argsort(z))
        order = np.argsort(z)
        if np.any(col >= len(z)) or np.any(z[order[np.minimum(col, len(z) - 1)]] != numbers):
            extra = sorted(set(a.get_chemical_symbols()) - set(species))
            raise ValueError(
                f"config {config_label(a, k)} holds species {extra} outside the fitted {list(species)}"
            )
        out[k, order[col]] = counts
    return pd.DataFrame(out, index=config_ids(configs), columns=list(species))
