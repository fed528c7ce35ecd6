"""Compact ``.npz`` storage of a dataset (used for the built-in datasets).

All configurations are concatenated: per-config arrays have length ``n_configs``, per-atom
arrays have length ``sum(n_atoms)``. Positions in Angstrom, energies in eV, forces in eV/Angstrom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from .configset import ConfigSet
from .errors import DataError

_REQUIRED = ("config_id", "n_atoms", "numbers", "positions", "cell", "pbc")


def save_packed(path: str | Path, configs: ConfigSet) -> None:
    """Write ``configs`` to a compressed npz (DFT energies/forces, EIP energies, phase and
    source kept)."""
    n = np.array([len(a) for a in configs], dtype=np.int32)
    arrays = {
        "config_id": np.array([a.info[keys.CONFIG_ID] for a in configs]),
        "n_atoms": n,
        "numbers": np.concatenate([a.numbers for a in configs]).astype(np.int16),
        "positions": np.concatenate([a.positions for a in configs]),
        "cell": np.stack([a.cell.array for a in configs]),
        "pbc": np.stack([a.pbc for a in configs]),
        "energy_dft": np.array([a.info.get(keys.ENERGY_DFT, np.nan) for a in configs]),
        "phase": np.array([a.info.get(keys.PHASE, "unknown") for a in configs]),
        "source": np.array([a.info.get(keys.SOURCE, "") for a in configs]),
    }
    hidden = ConfigSet(configs).dft_hidden()
    if hidden.any():  # a generated dataset's audit subset: DFT known, never trained on
        arrays[keys.DFT_HIDDEN] = hidden
    has_forces = np.array([keys.FORCES_DFT in a.arrays for a in configs])
    if has_forces.any():  # NaN rows for configs without DFT forces (e.g. a pool), marked per config
        arrays["forces_dft"] = np.concatenate(
            [a.arrays[keys.FORCES_DFT] if keys.FORCES_DFT in a.arrays else np.full((len(a), 3), np.nan) for a in configs])
        arrays["has_forces"] = has_forces
    models = sorted({m for a in configs for m in a.info.get(keys.ENERGY_EIP, {})})
    if models:  # EIP energies: [n_configs, n_models] eV, NaN where missing or failed
        arrays["eip_model_ids"] = np.array(models)
        arrays["energy_eip"] = np.array(
            [[a.info.get(keys.ENERGY_EIP, {}).get(m, np.nan) for m in models] for a in configs],
            dtype=float,
        )
    np.savez_compressed(path, **arrays)


def load_packed(path: str | Path, name: str) -> ConfigSet:
    """Read a file written by :func:`save_packed`."""
    try:
        with np.load(path, allow_pickle=False) as npz:  # NpzFile decompresses on every access
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable eiplab npz dataset ({e})") from e
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; re-create it with save_packed()")
    n = data["n_atoms"]
    ends = np.cumsum(n)
    starts = ends - n
    numbers, positions = data["numbers"], data["positions"]
    forces = data.get("forces_dft")
    has_forces = data.get("has_forces", np.ones(len(n), dtype=bool))  # files before the mask: all have them
    models = [str(m) for m in data.get("eip_model_ids", [])]
    eip = data.get("energy_eip")
    hidden = data.get(keys.DFT_HIDDEN, np.zeros(len(n), dtype=bool))
    configs = []
    for i in range(len(n)):
        sl = slice(starts[i], ends[i])
        a = Atoms(numbers=numbers[sl], positions=positions[sl], cell=data["cell"][i], pbc=data["pbc"][i])
        a.info[keys.CONFIG_ID] = str(data["config_id"][i])
        e = float(data["energy_dft"][i])
        if np.isfinite(e):
            a.info[keys.ENERGY_DFT] = e
        if hidden[i]:
            a.info[keys.DFT_HIDDEN] = True
        a.info[keys.PHASE] = str(data["phase"][i])
        a.info[keys.SOURCE] = str(data["source"][i])
        a.info[keys.ENERGY_EIP] = (
            {m: float(e) for m, e in zip(models, eip[i], strict=True)} if models else {}
        )
        if forces is not None and has_forces[i]:
            a.arrays[keys.FORCES_DFT] = forces[sl].copy()
        configs.append(a)
    return ConfigSet(configs, name=name)
