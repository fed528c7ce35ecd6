"""Train/val/test/pool splits (the paper's two protocols) and split CSV files.

Two schemes (METHOD.md), chosen per dataset by :func:`dataset_splits`:

- ``"random-pool"`` (ANI-Al protocol, :func:`paper_splits`): a pool of 80% of the configurations
  whose DFT is hidden from training -- the same pool in every split -- and the remaining 20%
  divided 12/4/4 (of the total) into train/val/test, for 3 seeds.
- ``"cv"`` (KIM-Si protocol, :func:`cv_splits`): the pool is the unlabelled configurations
  (fixed); the DFT-labelled ones are cut into 3 folds, split k tests on fold k and divides the
  rest 80/20 into train/val.

Unlabelled configurations always belong to the pool, and so do configurations whose DFT is
hidden for the classifier audit (``keys.DFT_HIDDEN``, :meth:`ConfigSet.labelled`). Identical structures (the same content
hash) are kept together so that a duplicate can never sit in train and test at once.
Split files are ``config_id,split`` CSVs; :func:`read_split` also reads the paper authors'
``configs,mark`` files (marks pretrain/train/val/test, pretrain = the pool).
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
SCHEMES = ("random-pool", "cv")
#: the paper authors' split files: ``configs,mark`` with these marks ("pretrain" is the pool)
AUTHORS_COLUMNS = ("configs", "mark")
AUTHORS_MARKS = {"pretrain": keys.POOL, "train": keys.TRAIN, "val": keys.VAL, "test": keys.TEST}


def _structure_groups(configs: ConfigSet, group_duplicates: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(config ids, group ids, each config's group index, whether each group is DFT-labelled):
    configs of identical structure form one group (when ``group_duplicates``), which is labelled
    only if all its members are."""
    ids = np.array(configs.ids)
    groups = np.array([config_hash(a) for a in configs]) if group_duplicates else ids
    group_ids, inverse = np.unique(groups, return_inverse=True)
    group_labelled = np.ones(len(group_ids), dtype=bool)
    np.logical_and.at(group_labelled, inverse, configs.labelled())
    return ids, group_ids, inverse, group_labelled


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
    ids, group_ids, inverse, group_labelled = _structure_groups(configs, group_duplicates)
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


def cv_splits(
    configs: ConfigSet,
    seeds: Sequence[int] = (0, 1, 2),
    n_folds: int = 3,
    val_fraction: float = 0.2,
    fold_seed: int = 2022,
    group_duplicates: bool = True,
) -> list[pd.Series]:
    """Splits following the paper's KIM-Si protocol, one per seed.

    The pool is every unlabelled config (the same in each split). The DFT-labelled configs
    (structure duplicates kept together) are shuffled once (``fold_seed``) and cut into
    ``n_folds`` folds of about equal size (in structure groups); the split of ``seed`` tests on fold
    ``seed % n_folds`` and divides the other folds into train / val (``val_fraction`` of them
    to val, drawn with ``seed``). So the 3 splits of seeds (0, 1, 2) have disjoint test sets
    covering every labelled config once.

    Raises:
        DataError: fewer labelled structure groups than folds, or no unlabelled pool config.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    ids, group_ids, inverse, group_labelled = _structure_groups(configs, group_duplicates)
    if not (~group_labelled).any():
        raise DataError(f"dataset {configs.name!r}: no unlabelled config to form the pool of a KIM-Si style "
                        "split; use paper_splits (a random pool) instead")
    rest = np.random.default_rng(fold_seed).permutation(np.flatnonzero(group_labelled))
    if len(rest) < 3 * n_folds:
        raise DataError(f"dataset {configs.name!r}: only {len(rest)} labelled structure group(s) for {n_folds} folds")
    folds = np.array_split(rest, n_folds)
    splits = []
    for seed in seeds:
        k = int(seed) % n_folds
        others = np.random.default_rng(seed).permutation(np.concatenate([f for j, f in enumerate(folds) if j != k]))
        n_val = max(1, int(round(val_fraction * len(others))))
        group_split = np.full(len(group_ids), keys.POOL, dtype=object)
        group_split[folds[k]] = keys.TEST
        group_split[others[:n_val]] = keys.VAL
        group_split[others[n_val:]] = keys.TRAIN
        s = pd.Series(group_split[inverse], index=pd.Index(ids, name=keys.CONFIG_ID), name=SPLIT_COLUMN)
        check_split(s, configs, where=f"cv fold {k} (seed {seed})")
        splits.append(s)
    return splits


def dataset_splits(configs: ConfigSet, seeds: Sequence[int] = (0, 1, 2), scheme: str | None = None) -> list[pd.Series]:
    """The splits a dataset is evaluated on: ``scheme`` ("random-pool" or "cv"), by default the
    built-in dataset's own (KIM-Si style "cv" for the mlearn sets, "random-pool" otherwise)."""
    if scheme is None:
        from .builtin import BUILTIN

        spec = BUILTIN.get(str(configs.name).split("/", 1)[0])
        scheme = spec.splits if spec is not None else "random-pool"
    if scheme == "random-pool":
        return paper_splits(configs, seeds=seeds)
    if scheme == "cv":
        return cv_splits(configs, seeds=seeds)
    raise ValueError(f"unknown split scheme {scheme!r}; choose from {SCHEMES}")


def check_split(split: pd.Series, configs: ConfigSet, where: str = "split") -> None:
    """Validate a split against a dataset; raise DataError naming the problem.

    Checks: known split names, every config assigned exactly once, no unknown ids, train/val/test
    non-empty, and every train/val/test config has a DFT energy that is not hidden for the audit.
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
        if by_id[cid].info.get(keys.DFT_HIDDEN, False):
            raise DataError(f"{where}: config {cid!r} is in {split[cid]!r} but its DFT is reserved for the classifier "
                            "audit (dft_hidden); move it to 'pool'")


def write_split(split: pd.Series, path: str | Path) -> Path:
    """Write a split as a ``config_id,split`` CSV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    split.rename(SPLIT_COLUMN).rename_axis(keys.CONFIG_ID).to_csv(path)
    return path


def read_split(path: str | Path, configs: ConfigSet | None = None) -> pd.Series:
    """Read a split file and validate it against ``configs``.

    Two layouts: eiplab's ``config_id,split`` (split in pool/train/val/test), or the paper
    authors' ``configs,mark`` (mark in pretrain/train/val/test, pretrain meaning the pool). In the
    authors' files a config may be named by its id, its file name (``bulk/x.xyz`` for the id
    ``bulk/x``) or a path ending in it; with ``configs`` every name is matched to an id.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read split file ({e})") from e
    columns = [str(c).strip() for c in df.columns[:2]]
    if columns == list(AUTHORS_COLUMNS):
        split = _authors_split(df, path, configs)
    elif columns == [keys.CONFIG_ID, SPLIT_COLUMN]:
        split = df.set_index(keys.CONFIG_ID)[SPLIT_COLUMN].str.strip()
    else:
        raise DataError(f"{path}: the header must be '{keys.CONFIG_ID},{SPLIT_COLUMN}' (eiplab) or "
                        f"'{','.join(AUTHORS_COLUMNS)}' (the paper authors' files), got {list(df.columns)}")
    if configs is not None:
        check_split(split, configs, where=str(path))
    return split


def _authors_split(df: pd.DataFrame, path: Path, configs: ConfigSet | None) -> pd.Series:
    """An authors' ``configs,mark`` table as a config_id -> split Series."""
    df = df.rename(columns=lambda c: str(c).strip())
    marks = df["mark"].str.strip().str.lower()
    unknown = sorted(set(marks) - set(AUTHORS_MARKS))
    if unknown:
        raise DataError(f"{path}: unknown mark(s) {unknown}; the authors' marks are {sorted(AUTHORS_MARKS)}")
    names = [_strip_extension(str(n).strip()) for n in df["configs"]]
    if configs is not None:
        names = _match_ids(names, configs, path)
    return pd.Series(marks.map(AUTHORS_MARKS).to_numpy(), index=pd.Index(names, name=keys.CONFIG_ID), name=SPLIT_COLUMN)


def _strip_extension(name: str) -> str:
    for ext in (".extxyz", ".xyz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _match_ids(names: list[str], configs: ConfigSet, path: Path) -> list[str]:
    """Each name as a config id: itself, or the id that the name's path ends with."""
    ids = set(configs.ids)
    matched = []
    for name in names:
        if name in ids:
            matched.append(name)
            continue
        parts = name.replace("\\", "/").split("/")
        found = next(("/".join(parts[k:]) for k in range(1, len(parts)) if "/".join(parts[k:]) in ids), None)
        if found is None:
            raise DataError(f"{path}: config {name!r} matches no config id of dataset {configs.name!r} "
                            f"(ids look like {next(iter(ids))!r}); is this split for another dataset?")
        matched.append(found)
    return matched


def split_configs(configs: ConfigSet, split: pd.Series) -> dict[str, ConfigSet]:
    """The dataset cut into {pool, train, val, test} ConfigSets (in dataset order)."""
    out = {}
    for name in keys.SPLITS:
        wanted = set(split.index[split == name])
        out[name] = ConfigSet([a for a in configs if a.info[keys.CONFIG_ID] in wanted], name=f"{configs.name}/{name}")
    return out
