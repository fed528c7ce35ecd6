"""One experiment's data: a dataset with EIP energies, one split, and aligned EIP energies.

``prepare_experiment`` labels the dataset with the EIPs (cached, resumable), cuts it by a
split and fits the species alignment on that split's TRAIN configs only (METHOD.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import keys
from ..data import ConfigSet, check_split, split_configs
from ..eips import SpeciesAligner, eip_energies, label_dataset
from ..paths import cache_dir


@dataclass
class Experiment:
    """Everything a strategy needs for one split.

    Attributes:
        configs: the whole dataset (EIP energies in ``info[keys.ENERGY_EIP]``).
        split: config_id -> pool/train/val/test.
        parts: {pool, train, val, test} ConfigSets.
        model_ids: the EIPs used (columns of ``aligned``).
        aligned: aligned EIP energies of every config, eV total [n_configs x K] (index config_id);
            offsets fitted on TRAIN only.
        aligner: the fitted aligner (``offsets_`` in eV/atom).
        align: "species" or "none".
    """

    configs: ConfigSet
    split: pd.Series
    parts: dict[str, ConfigSet]
    model_ids: list[str]
    aligned: pd.DataFrame
    aligner: SpeciesAligner
    align: str

    def aligned_for(self, name: str) -> pd.DataFrame:
        """Aligned EIP energies of one part (rows in the part's order), eV."""
        return self.aligned.loc[self.parts[name].ids]

    def n_atoms(self, name: str) -> np.ndarray:
        return self.parts[name].n_atoms()


def label_with_eips(
    configs: ConfigSet, model_ids: Sequence[str], n_jobs: int = 1, cache: str | Path | None = None, progress: bool = True,
    forces: bool = False,
) -> pd.DataFrame:
    """EIP energies of every config (cached under ``cache`` or eiplab's cache folder), eV; with
    ``forces`` each EIP's forces too (in ``atoms.info[keys.FORCES_EIP]``, see :func:`label_dataset`)."""
    folder = Path(cache) if cache is not None else cache_dir() / "eip"
    return label_dataset(configs, list(model_ids), cache_dir=folder, n_jobs=n_jobs, progress=progress, forces=forces)


def prepare_experiment(
    configs: ConfigSet,
    split: pd.Series,
    model_ids: Sequence[str],
    *,
    align: str = "species",
    n_jobs: int = 1,
    cache: str | Path | None = None,
    progress: bool = True,
    energies: pd.DataFrame | None = None,
) -> Experiment:
    """Label (cached), cut by ``split`` and align on TRAIN configs.

    ``energies``: the EIP energies of every config (eV, index config_id, one column per EIP) when
    already computed (e.g. sent to a cluster's workers, which may not share the label cache);
    otherwise they are labelled (cached) here.

    Raises:
        DataError: the split does not fit the dataset (:func:`eiplab.data.check_split`: e.g. a
            config without DFT, or one whose DFT is hidden for the audit, in train/val/test).
    """
    check_split(split, configs, where=f"split of {configs.name!r}")
    if energies is None:
        table = label_with_eips(configs, model_ids, n_jobs=n_jobs, cache=cache, progress=progress)
        ids = list(table.columns)
        raw = eip_energies(configs, ids)
    else:
        ids = list(energies.columns)
        raw = energies.loc[configs.ids, ids]
    parts = split_configs(configs, split)
    aligner = SpeciesAligner(method=align).fit(parts[keys.TRAIN], energies_eip=raw.loc[parts[keys.TRAIN].ids])
    aligned = aligner.transform(configs, raw)
    return Experiment(configs, split, parts, ids, aligned, aligner, align)
