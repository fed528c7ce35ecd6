"""Built-in datasets shipped inside the package (real DFT, offline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .configset import ConfigSet
from .errors import DataError
from .packed import load_packed

if TYPE_CHECKING:
    import pandas as pd


#: The licence file of eiplab's own generated datasets (``eiplab dft-generate``, e.g. agau-gpaw).
DATA_LICENCE = "LICENSE-eiplab-data.txt"


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset that ships with eiplab.

    Attributes:
        name: the name given to :func:`eiplab.data.load_dataset`.
        system: chemical system key of the EIP registry ("Si", "Al", "AgAu").
        file: npz file inside ``eiplab/data/builtin``.
        description: one line for tables.
        splits: the split scheme experiments use (:func:`eiplab.data.dataset_splits`):
            ``"random-pool"`` (the paper's ANI-Al protocol) or ``"cv"`` (its KIM-Si protocol:
            a fixed unlabelled pool, one cross-validation fold of the DFT configs as test set).
        tau: the LA "none" threshold the dataset's experiments default to: eV/atom, or
            ``"auto"`` (chosen per split from its TRAINING configs,
            :func:`eiplab.strategies.labels.auto_tau`).
        licence: licence file shipped next to the data.
    """

    name: str
    system: str
    file: str
    description: str
    splits: str = "random-pool"
    tau: float | str = 0.1
    licence: str = ""


BUILTIN = {
    "si-pyxtal": BuiltinDataset(
        name="si-pyxtal",
        system="Si",
        file="si-pyxtal.npz",
        description="6,887 Si random crystals (1-16 atoms), VASP PBE energies and forces, from pyxtal-ff 0.2.3 (MIT)",
        licence="LICENSE-pyxtal-ff.txt",
    ),
    **{
        f"{el.lower()}-mlearn": BuiltinDataset(
            name=f"{el.lower()}-mlearn",
            system=el,
            file=f"{el.lower()}-mlearn.npz",
            description=(f"{n_dft} {el} configs of the mlearn benchmark ({cells} atoms: AIMD snapshots, vacancies, "
                         f"strained bulk, surfaces; VASP PBE, BSD-3) + a pool of {n_pool:,} unlabelled configs from "
                         "EIP-driven MD"),
            splits="cv",
            tau="auto",
            licence="LICENSE-mlearn.txt",
        )
        for el, n_dft, cells, n_pool in (("Ge", 253, "12-64", 3000), ("Li", 270, "2-84", 3030), ("Mo", 217, "2-54", 3030))
    },
    "agau-gpaw": BuiltinDataset(
        name="agau-gpaw",
        system="AgAu",
        file="agau-gpaw.npz",
        description=("500 Ag, Au and AgAu configs (2-6 atoms: fcc/bcc/hcp, ordered and random alloys, strained and "
                     "rattled), eiplab's own GPAW PBE DFT + a pool of 5,000 with EIP energies (200 of them with DFT "
                     "hidden for the classifier audit)"),
        splits="cv",
        tau="auto",
        licence=DATA_LICENCE,
    ),
    "al-gpaw": BuiltinDataset(
        name="al-gpaw",
        system="Al",
        file="al-gpaw.npz",
        description=("500 Al configs (4-8 atoms: fcc from EAM MD at 100-900 K, liquid, vacancies, strained, sheared), "
                     "eiplab's own GPAW PBE DFT + a pool of 5,000 with EIP energies (200 of them with DFT hidden for "
                     "the classifier audit)"),
        splits="cv",
        tau="auto",
        licence=DATA_LICENCE,
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


def builtin_table() -> pd.DataFrame:
    """One row per built-in dataset: system, DFT-labelled and pool configs, atoms per config,
    split scheme, default tau, licence and description (loads each dataset, a few seconds)."""
    import pandas as pd

    rows = []
    for name, spec in BUILTIN.items():
        configs = load_builtin(name)
        labelled = configs.labelled()
        n = configs.n_atoms()
        rows.append({"dataset": name, "system": spec.system, "DFT configs": int(labelled.sum()),
                     "pool (no DFT to train on)": int((~labelled).sum()), "atoms/config": f"{n.min()}-{n.max()}",
                     "splits": spec.splits, "tau": spec.tau, "licence": spec.licence, "description": spec.description})
    return pd.DataFrame(rows).set_index("dataset")
