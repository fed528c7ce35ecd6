"""``ConfigSet``: a list of ``ase.Atoms`` with stable config ids and convenience views."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from ase import Atoms

from .. import keys
from .errors import DataError


class ConfigSet(list):
    """A dataset: a list of ``ase.Atoms`` whose ``info`` follows :mod:`eiplab.keys`.

    Args:
        configs: the configurations; each needs a unique ``info[keys.CONFIG_ID]``.
        name: a short name (shown in tables and used in cache paths).
    """

    def __init__(self, configs: Iterable[Atoms] = (), name: str = "dataset"):
        super().__init__(configs)
        self.name = name
        counts = Counter(self.ids)
        dup = [cid for cid, n in counts.items() if n > 1]
        if dup:
            raise DataError(
                f"dataset {name!r}: config ids must be unique, but {len(dup)} repeat "
                f"(e.g. {dup[0]!r}); give each configuration its own id"
            )

    @property
    def ids(self) -> list[str]:
        """Config ids in list order."""
        return [a.info[keys.CONFIG_ID] for a in self]

    def by_id(self) -> dict[str, Atoms]:
        """Mapping config id -> Atoms."""
        return {a.info[keys.CONFIG_ID]: a for a in self}

    def subset(self, ids: Iterable[str], name: str | None = None) -> ConfigSet:
        """The configurations with the given ids, in the given order.

        Raises DataError naming the first unknown id.
        """
        lookup = self.by_id()
        out = []
        for cid in ids:
            if cid not in lookup:
                raise DataError(f"config id {cid!r} is not in dataset {self.name!r}")
            out.append(lookup[cid])
        return ConfigSet(out, name=name or self.name)

    @property
    def species(self) -> list[str]:
        """Sorted chemical symbols present in the dataset."""
        return sorted({s for a in self for s in a.get_chemical_symbols()})

    def energies_dft(self) -> np.ndarray:
        """DFT total energies, eV [n_configs] (NaN where missing)."""
        return np.array([a.info.get(keys.ENERGY_DFT, np.nan) for a in self], dtype=float)

    def dft_hidden(self) -> np.ndarray:
        """Which configs' DFT is reserved for the classifier audit (``info[keys.DFT_HIDDEN]``, a
        generated dataset's audit subset), bool [n_configs]."""
        return np.array([bool(a.info.get(keys.DFT_HIDDEN, False)) for a in self], dtype=bool)

    def labelled(self) -> np.ndarray:
        """Which configs may be trained or tested on DFT, bool [n_configs]: a DFT energy that is
        not hidden for the audit (:meth:`dft_hidden`)."""
        return np.isfinite(self.energies_dft()) & ~self.dft_hidden()

    def n_atoms(self) -> np.ndarray:
        """Atom counts [n_configs]."""
        return np.array([len(a) for a in self], dtype=int)

    def summary(self) -> pd.DataFrame:
        """One row per config: id, n_atoms, formula, phase, source, E_dft (eV), E_dft/N (eV/atom)."""
        e = self.energies_dft()
        n = self.n_atoms()
        return pd.DataFrame(
            {
                keys.CONFIG_ID: self.ids,
                keys.N_ATOMS: n,
                "formula": [a.get_chemical_formula() for a in self],
                keys.PHASE: [a.info.get(keys.PHASE, "unknown") for a in self],
                keys.SOURCE: [a.info.get(keys.SOURCE, "") for a in self],
                "periodic": [bool(a.pbc.any()) for a in self],
                keys.ENERGY_DFT: e,
                "energy_dft_per_atom": e / n,
            }
        )

    def require_dft(self, what: str = "this step") -> None:
        """Raise DataError naming the first config without a DFT energy."""
        for a in self:
            e = a.info.get(keys.ENERGY_DFT)
            if e is None or not np.isfinite(e):
                raise DataError(
                    f"config {a.info[keys.CONFIG_ID]!r} in {self.name!r} has no finite DFT energy, "
                    f"but {what} needs one; put it in the pool split or give it info['{keys.ENERGY_DFT}']"
                )

    def __getitem__(self, item):  # slices stay ConfigSets
        out = super().__getitem__(item)
        if isinstance(item, slice):
            return ConfigSet(out, name=self.name)
        return out


def as_configset(configs: Sequence[Atoms] | ConfigSet, name: str = "dataset") -> ConfigSet:
    """Wrap a plain list of Atoms (ids must already be set)."""
    if isinstance(configs, ConfigSet):
        return configs
    for i, a in enumerate(configs):
        if keys.CONFIG_ID not in a.info:
            raise DataError(f"configuration #{i} of {name!r} has no info['{keys.CONFIG_ID}']")
    return ConfigSet(configs, name=name)
