"""Train/val/test/pool splits (paper protocol) and ``config_id,split`` CSV files.

Paper protocol (METHOD.md): a pool of 80% of the configurations whose DFT is hidden from
training -- the same pool in every split -- and the remaining 20% divided 12/4/4 (of the total)
into train/val/test, for 3 seeds. Unlabelled configurations always belong to the pool.
Identical structures (the same content hash) are kept together so that a duplicate can never sit
in train and test at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import keys
from .configset import ConfigSet
from .errors import DataError
from .hashing import config_hash

SPLIT_COLUMN = "split"


def paper_splits(
    configs: ConfigSet,
    seeds: Sequence[int] = (0, 1, 2),
    pool_fraction: float = 0.8,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    pool_seed: int = 2022,
    group_duplicates: bool = True,
) -> list[pd.Series]:
    """Splits following the paper's protocol, one per seed.

    Args:
        configs: the dataset.
        seeds: one split per seed (train/val/test drawn anew, pool fixed).
        pool_fraction: share of all configs in the pool (DFT hidden); unlabelled configs count
            towards it first.
        fractions: train/val/test shares of the non-pool configs (0.6/0.2/0.2 = 12/4/4 % of all).
        pool_seed: seed of the pool draw (same pool for every split).
        group_duplicates: keep configs with identical structure in the same split.

    Returns:
        A list of Series (index config_id, values in keys.SPLITS), one per seed.
    """
    if not 0 <= pool_fraction < 1:
        raise ValueError(f"pool_fraction must be in [0, 1), got {pool_fraction}")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions (train, val, test) must be 3 positive numbers summing to 1, got {fractions}")
    ids = np.array(configs.ids)
    groups = np.array([config_hash(a) for a in configs]) if group_duplicates else ids
    labelled = np.isfinite(configs.energies_dft())
    # a group is labelled only if all its members are
    group_ids, inverse = np.unique(groups, return_inverse=True)
    group_labelled = np.ones(len(group_ids), dtype=bool)
    np.logical_and.at(group_labelled, inverse, labelled)
    group_size = np.bincount(inverse)

    n_pool_target = int(round(pool_fraction * len(ids)))
    in_pool = ~group_labelled
    n_pool = group_size[in_pool].sum()
    rng = np.random.default_rng(pool_seed)
    for g in rng.permutation(np.flatnonzero(group_labelled)):
        if n_pool >= n_pool_target:
            break
        in_pool[g] = True
        n_pool += group_size[g]
    rest = np.flatnonzero(~in_pool)
    if len(rest) < 3:
        raise DataError(
            f"dataset {configs.name!r}: only {len(rest)} labelled structure group(s) left after the pool; "
            "lower pool_fraction or add DFT-labelled configs"
        )

    splits = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(rest)
        cum = np.cumsum(group_size[order])
        total = cum[-1]
        n_train_end = np.searchsorted(cum, fractions[0] * total, side="left") + 1
        n_val_end = np.searchsorted(cum, (fractions[0] + fractions[1]) * total, side="left") + 1
        n_val_end = min(max(n_val_end, n_train_end + 1), len(order) - 1)
        group_split = np.full(len(group_ids), keys.POOL, dtype=object)
        group_split[order[:n_train_end]] = keys.TRAIN
        group_split[order[n_train_end:n_val_end]] = keys.VAL
        group_split[order[n_val_end:]] = keys.TEST
        s = pd.Series(group_split[inverse], index=pd.Index(ids, name=keys.CONFIG_ID), name=SPLIT_COLUMN)
        check_split(s, configs, where=f"seed {seed}")
        splits.append(s)
    return splits


def check_split(split: pd.Series, configs: ConfigSet, where: str = "split") -> None:
    """Validate a split against a dataset; raise DataError naming the problem.

    Checks: known split names, every config assigned exactly once, no unknown ids, train/val/test
    non-empty, and every train/val/test config has a DFT energy.
    """
    bad = sorted(set(split.unique()) - set(keys.SPLITS))
    if bad:
        raise DataError(f"{where}: unknown split name(s) {bad}; use {list(keys.SPLITS)}")
    if split.index.has_duplicates:
        dup = split.index[split.index.duplicated()][0]
        raise DataError(f"{where}: config {dup!r} is listed more than once")
    ids = set(configs.ids)
    unknown = [c for c in split.index if c not in ids]
    if unknown:
        raise DataError(f"{where}: config {unknown[0]!r} (and {len(unknown) - 1} more) not in dataset {configs.name!r}")
    missing = [c for c in configs.ids if c not in split.index]
    if missing:
        raise DataError(
            f"{where}: {len(missing)} config(s) of {configs.name!r} have no split (e.g. {missing[0]!r}); "
            "assign every config (use 'pool' for unlabelled ones)"
        )
    for name in (keys.TRAIN, keys.VAL, keys.TEST):
        if not (split == name).any():
            raise DataError(f"{where}: the {name!r} split is empty")
    by_id = configs.by_id()
    for cid in split.index[split != keys.POOL]:
        e = by_id[cid].info.get(keys.ENERGY_DFT)
        if e is None or not np.isfinite(e):
            raise DataError(f"{where}: config {cid!r} is in {split[cid]!r} but has no DFT energy; move it to 'pool'")


def write_split(split: pd.Series, path: str | Path) -> Path:
    """Write a split as a ``config_id,split`` CSV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    split.rename(SPLIT_COLUMN).rename_axis(keys.CONFIG_ID).to_csv(path)
    return path


def read_split(path: str | Path, configs: ConfigSet | None = None) -> pd.Series:
    """Read a ``config_id,split`` CSV file (e.g. a user's own split); validate against ``configs``."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read split file ({e})") from e
    if list(df.columns[:2]) != [keys.CONFIG_ID, SPLIT_COLUMN]:
        raise DataError(f"{path}: the header must be '{keys.CONFIG_ID},{SPLIT_COLUMN}', got {list(df.columns)}")
    split = df.set_index(keys.CONFIG_ID)[SPLIT_COLUMN].str.strip()
    if configs is not None:
        check_split(split, configs, where=str(path))
    return split


def split_configs(configs: ConfigSet, split: pd.Series) -> dict[str, ConfigSet]:
    """The dataset cut into {pool, train, val, test} ConfigSets (in dataset order)."""
    out = {}
    for name in keys.SPLITS:
        wanted = set(split.index[split == name])
        out[name] = ConfigSet([a for a in configs if a.info[keys.CONFIG_ID] in wanted], name=f"{configs.name}/{name}")
    return out
