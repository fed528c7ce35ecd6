"""``load_dataset``: one entry point for built-in datasets and files/folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .builtin import BUILTIN, load_builtin
from .configset import ConfigSet
from .errors import DataError
from .packed import load_packed
from .readers import (
    read_ani_h5,
    read_ase_db,
    read_extxyz,
    read_kim_si_tree,
    read_mlearn_json,
    read_pyxtal_json,
)

DEFAULT_MAX_ENERGY_PER_ATOM = {"si-pyxtal": -4.0}


def load_dataset(
    name_or_path: str | Path,
    *,
    max_energy_per_atom: float | None | str = "default",
    limit: int | None = None,
    seed: int = 0,
    **reader_options,
) -> ConfigSet:
    """Load a dataset as a :class:`ConfigSet` of ``ase.Atoms``.

    Args:
        name_or_path: a built-in name (``"si-pyxtal"``) or a path: ``.xyz``/``.extxyz``, ASE
            ``.db``, ANI-style ``.h5``/``.tgz``, pyxtal-ff or mlearn ``.json``, or a folder in the
            KIM-Si layout.
        max_energy_per_atom: drop labelled configs with E_dft/N above this (eV/atom).
            ``"default"``: -4.0 for si-pyxtal (pyxtal-ff's own training cut), none otherwise;
            ``None``: keep everything. Unlabelled configs are never dropped by this cut.
        limit: keep a random subset of this many configs (seeded; for quick runs).
        seed: seed of that subset.
        reader_options: passed to the file reader (e.g. ``energy_key``, ``energy_unit``).
    """
    key = str(name_or_path)
    if key in BUILTIN:
        configs = load_builtin(key)
    else:
        configs = _read_path(Path(name_or_path), **reader_options)
    cut = DEFAULT_MAX_ENERGY_PER_ATOM.get(key) if max_energy_per_atom == "default" else max_energy_per_atom
    if cut is not None:
        e = configs.energies_dft() / configs.n_atoms()
        keep = ~(e > cut)  # NaN (unlabelled) stays
        configs = ConfigSet([a for a, k in zip(configs, keep, strict=True) if k], name=configs.name)
    if limit is not None and limit < len(configs):
        idx = np.sort(np.random.default_rng(seed).choice(len(configs), size=limit, replace=False))
        configs = ConfigSet([configs[i] for i in idx], name=configs.name)
    return configs


def _read_path(path: Path, **options) -> ConfigSet:
    if not path.exists():
        from ..dft.datasets import RECIPES

        if str(path) in RECIPES:  # a recipe eiplab can generate, not shipped (yet)
            raise DataError(
                f"{path}: a DFT dataset eiplab generates but does not ship yet; make it with `eiplab dft-generate "
                f"--dataset {path} --out DIR` (GPAW, resumable; docs/dft.md), then load DIR/{path}.npz"
            )
        raise DataError(f"{path}: no such file or folder, and not a built-in dataset (built-in: {sorted(BUILTIN)})")
    if path.is_dir():
        return read_kim_si_tree(path, **options)
    name = path.name.lower()
    if name.endswith((".xyz", ".extxyz")):
        return read_extxyz(path, **options)
    if name.endswith(".db"):
        return read_ase_db(path, **options)
    if name.endswith((".h5", ".hdf5", ".tgz", ".tar.gz")):
        return read_ani_h5(path, **options)
    if name.endswith(".json"):
        if _is_mlearn_json(path):
            return read_mlearn_json(path, name=path.stem, **options)
        return read_pyxtal_json(path, name=path.stem, **options)
    if name.endswith(".npz"):
        return load_packed(path, name=path.stem)
    raise DataError(
        f"{path}: unknown dataset format; use .xyz/.extxyz, .db, .h5/.tgz (ANI), .json (pyxtal-ff), "
        ".npz (eiplab) or a KIM-Si folder"
    )


def _is_mlearn_json(path: Path) -> bool:
    """True when a JSON file starts like the mlearn format (records with a pymatgen "structure";
    pyxtal-ff's records start with "elements" / "coords" instead)."""
    with open(path, encoding="utf-8") as f:
        return '"structure"' in f.read(4096)
