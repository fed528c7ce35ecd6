"""Datasets: readers, built-in datasets, splits. Data model in :mod:`eiplab.keys`."""

from .builtin import BUILTIN, builtin_table, load_builtin, provenance
from .configset import ConfigSet, as_configset
from .errors import DataError
from .hashing import config_hash
from .load import load_dataset
from .packed import load_packed, save_packed
from .readers import (
    read_ani_h5,
    read_ase_db,
    read_extxyz,
    read_kim_si_tree,
    read_mlearn_json,
    read_pyxtal_json,
)
from .splits import (
    check_split,
    cv_splits,
    dataset_splits,
    paper_splits,
    read_split,
    split_configs,
    write_split,
)

__all__ = [
    "BUILTIN",
    "builtin_table",
    "ConfigSet",
    "DataError",
    "as_configset",
    "check_split",
    "config_hash",
    "load_builtin",
    "load_dataset",
    "load_packed",
    "cv_splits",
    "dataset_splits",
    "paper_splits",
    "provenance",
    "read_ani_h5",
    "read_ase_db",
    "read_extxyz",
    "read_kim_si_tree",
    "read_mlearn_json",
    "read_pyxtal_json",
    "read_split",
    "save_packed",
    "split_configs",
    "write_split",
]
