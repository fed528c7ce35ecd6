"""Built-in datasets shipped inside the package (real DFT, offline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .configset import ConfigSet
from .errors import DataError
from .packed import load_packed


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset that ships with eiplab.

    Attributes:
        name: the name given to :func:`eiplab.data.load_dataset`.
        system: chemical system key of the EIP registry ("Si", "Al", "AgAu").
        file: npz file inside ``eiplab/data/builtin``.
        description: one line for tables.
    """

    name: str
    system: str
    file: str
    description: str


BUILTIN = {
    "si-pyxtal": BuiltinDataset(
        name="si-pyxtal",
        system="Si",
        file="si-pyxtal.npz",
        description="6,887 Si random crystals (1-16 atoms), VASP PBE energies and forces, from pyxtal-ff 0.2.3 (MIT)",
    ),
}


def builtin_dir() -> Path:
    """Folder holding the built-in data files."""
    return Path(str(resources.files("eiplab.data") / "builtin"))


def load_builtin(name: str) -> ConfigSet:
    """Load a built-in dataset by name (all configurations, no filtering)."""
    if name not in BUILTIN:
        raise DataError(f"unknown built-in dataset {name!r}; available: {sorted(BUILTIN)}")
    path = builtin_dir() / BUILTIN[name].file
    if not path.exists():
        raise DataError(f"built-in dataset file {path} is missing: reinstall eiplab")
    return load_packed(path, name=name)


def provenance(name: str) -> dict:
    """The provenance record of a built-in dataset (source, licence, conversion, checksums)."""
    path = builtin_dir() / f"{name}.provenance.json"
    if not path.exists():
        raise DataError(f"no provenance file for built-in dataset {name!r} ({path})")
    return json.loads(path.read_text())
