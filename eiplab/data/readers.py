"""Readers for the paper's datasets and generic formats -> :class:`ConfigSet`.

Supported: extended XYZ files, ASE databases, the ANI-Al tarball of HDF5 files, the KIM-Si
folder layout (one extxyz per config) and the pyxtal-ff JSON format. Every reader sets
``info[keys.CONFIG_ID]`` (stable: derived from file name and position, never from list order
after filtering), ``info[keys.ENERGY_DFT]`` in eV when known, ``info[keys.SOURCE]`` and
``info[keys.PHASE]``.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.data import chemical_symbols

from .. import keys
from .configset import ConfigSet
from .errors import DataError

_ENERGY_KEYS = ("energy_dft", "energy", "energy_reference", "free_energy", "Energy")


def _finish(atoms: Atoms, config_id: str, source: str, energy: float | None, phase: str) -> Atoms:
    """Set the eiplab keys on one configuration and check its elements and energy."""
    bad = [z for z in set(atoms.numbers.tolist()) if z <= 0 or z >= len(chemical_symbols)]
    if bad:
        raise DataError(f"{source}: config {config_id!r} has unknown element number(s) {bad}")
    for k in (keys.CONFIG_ID, keys.ENERGY_DFT, keys.ENERGY_EIP, keys.SOURCE, keys.PHASE):
        atoms.info.pop(k, None)
    atoms.info[keys.CONFIG_ID] = config_id
    if energy is not None:
        energy = float(energy)
        if not np.isfinite(energy):
            raise DataError(
                f"{source}: config {config_id!r} has a non-finite energy ({energy}); "
                "remove it or leave the energy out to mark it unlabelled"
            )
        atoms.info[keys.ENERGY_DFT] = energy
    atoms.info[keys.SOURCE] = source
    atoms.info[keys.PHASE] = phase
    atoms.info[keys.ENERGY_EIP] = {}
    return atoms


def _energy_of(atoms: Atoms, energy_key: str | None) -> float | None:
    """The DFT energy stored on an Atoms read by ASE (info key or attached calculator)."""
    candidates = (energy_key,) if energy_key else _ENERGY_KEYS
    for k in candidates:
        if k in atoms.info:
            return float(atoms.info[k])
    if energy_key in (None, "energy") and atoms.calc is not None:
        try:
            return float(atoms.get_potential_energy())
        except PropertyNotImplementedError:  # a calculator that holds forces but no energy
            return None
    return None


def _forces_of(atoms: Atoms) -> np.ndarray | None:
    for k in ("forces_dft", "forces", "force", "forces_reference"):
        if k in atoms.arrays:
            return np.asarray(atoms.arrays[k], dtype=float)
    if atoms.calc is not None and "forces" in getattr(atoms.calc, "results", {}):
        return np.asarray(atoms.calc.results["forces"], dtype=float)
    return None


def _from_ase(atoms: Atoms, config_id: str, source: str, energy_key: str | None, phase: str) -> Atoms:
    energy = _energy_of(atoms, energy_key)
    forces = _forces_of(atoms)
    phase = str(atoms.info.get(keys.PHASE, atoms.info.get("config_type", phase)))
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    if forces is not None:
        if forces.shape != (len(atoms), 3):
            raise DataError(f"{source}: config {config_id!r} has forces of shape {forces.shape}")
        clean.arrays[keys.FORCES_DFT] = forces
    if keys.CONFIG_ID in atoms.info:
        config_id = str(atoms.info[keys.CONFIG_ID])
    return _finish(clean, config_id, source, energy, phase)


def read_extxyz(path: str | Path, energy_key: str | None = None, phase: str = "unknown") -> ConfigSet:
    """Read an (extended) XYZ file; ids are ``<stem>-<index>`` unless the file stores config_id."""
    from ase.io import read

    path = Path(path)
    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as e:  # noqa: BLE001 -- ASE raises many types for malformed files
        raise DataError(f"{path}: cannot parse as extended XYZ ({type(e).__name__}: {e})") from e
    if not frames:
        raise DataError(f"{path}: contains no configurations")
    return ConfigSet(
        [_from_ase(a, f"{path.stem}-{i:05d}", path.name, energy_key, phase) for i, a in enumerate(frames)],
        name=path.stem,
    )


def read_ase_db(path: str | Path, energy_key: str | None = None, phase: str = "unknown") -> ConfigSet:
    """Read an ASE database (``.db``); ids are ``<stem>-<row id>`` unless rows store config_id."""
    from ase.db import connect

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such ASE database")
    configs = []
    try:
        rows = list(connect(path).select())
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: cannot open as an ASE database ({e})") from e
    for row in rows:
        a = row.toatoms()
        a.info.update(row.key_value_pairs)
        a.info.update(row.data or {})
        configs.append(_from_ase(a, f"{path.stem}-{row.id:05d}", path.name, energy_key, phase))
    if not configs:
        raise DataError(f"{path}: the database holds no rows")
    return ConfigSet(configs, name=path.stem)


def read_kim_si_tree(folder: str | Path, energy_key: str = "energy_reference") -> ConfigSet:
    """Read the KIM-Si layout: one extxyz per config below ``folder``.

    The config id is the path relative to ``folder`` without extension; the phase is the first
    folder name (e.g. ``bulk``, ``cluster``). Configs without ``energy_key`` are unlabelled
    (pool candidates), not an error.
    """
    from ase.io import read

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".xyz", ".extxyz"))
    if not files:
        raise DataError(f"{folder}: no .xyz/.extxyz files found (expected the KIM-Si folder layout)")
    configs = []
    for f in files:
        rel = f.relative_to(folder)
        try:
            a = read(f, index=0, format="extxyz")
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{f}: cannot parse as extended XYZ ({type(e).__name__}: {e})") from e
        phase = rel.parts[0] if len(rel.parts) > 1 else "unknown"
        cfg = _from_ase(a, str(rel.with_suffix("")), str(rel), energy_key, phase)
        configs.append(cfg)
    return ConfigSet(configs, name=folder.name)


def read_ani_h5(path: str | Path, energy_unit: float = 1.0, phase: str = "unknown") -> ConfigSet:
    """Read ANI-style HDF5 (a file, or a ``.tgz``/``.tar.gz`` of them as in ANI-Al's ``Al-data.tgz``).

    Every HDF5 group holding ``coordinates`` [n_conf, n_atoms, 3] and ``energy``/``energies``
    [n_conf] is a batch of configurations; ``species`` [n_atoms] (symbols, bytes or str),
    optional ``cell`` [n_conf, 3, 3] or [3, 3] (periodic when present) and ``force``/``forces``.
    ``energy_unit`` multiplies energies and forces to get eV (1.0: the file is in eV).
    The id is ``<file stem>/<group path>/<index>``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.name.endswith((".tgz", ".tar.gz", ".tar")):
        configs: list[Atoms] = []
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise DataError(f"{path}: not a readable tar archive ({e})") from e
            h5s = sorted(Path(tmp).rglob("*.h5")) + sorted(Path(tmp).rglob("*.hdf5"))
            if not h5s:
                raise DataError(f"{path}: the archive holds no .h5 files")
            for h5 in h5s:
                configs.extend(read_ani_h5(h5, energy_unit=energy_unit, phase=phase))
        return ConfigSet(configs, name=path.name.split(".")[0])
    return ConfigSet(_read_ani_h5_file(path, energy_unit, phase), name=path.stem)


def _read_ani_h5_file(path: Path, energy_unit: float, phase: str) -> list[Atoms]:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from e
    groups: list = []
    with handle as f:
        f.visititems(lambda name, obj: groups.append(obj) if isinstance(obj, h5py.Group) else None)
        groups = [f] + groups
        configs = []
        for g in groups:
            if "coordinates" not in g:
                continue
            configs.extend(_ani_group(path, g, energy_unit, phase))
    if not configs:
        raise DataError(f"{path}: no group holds 'coordinates' (not ANI-style HDF5)")
    return configs


def _ani_group(path: Path, g, energy_unit: float, phase: str) -> list[Atoms]:
    where = f"{path.name}:{g.name}"
    ekey = next((k for k in ("energy", "energies") if k in g), None)
    if ekey is None or "species" not in g:
        raise DataError(f"{where}: an ANI group needs 'species' and 'energy' next to 'coordinates'")
    coords = np.asarray(g["coordinates"], dtype=float)
    if coords.ndim == 2:
        coords = coords[None]
    energies = np.asarray(g[ekey], dtype=float).reshape(-1) * energy_unit
    species = [s.decode() if isinstance(s, bytes) else str(s) for s in np.asarray(g["species"]).reshape(-1)]
    unknown = sorted({s for s in species if s not in chemical_symbols[1:]})
    if unknown:
        raise DataError(f"{where}: unknown element symbol(s) {unknown}")
    if len(energies) != len(coords) or coords.shape[1] != len(species):
        raise DataError(
            f"{where}: shapes disagree: coordinates {coords.shape}, species {len(species)}, energies {energies.shape}"
        )
    cells = np.asarray(g["cell"], dtype=float) if "cell" in g else None
    if cells is not None and cells.ndim == 2:
        cells = np.broadcast_to(cells, (len(coords), 3, 3))
    fkey = next((k for k in ("force", "forces") if k in g), None)
    forces = np.asarray(g[fkey], dtype=float) * energy_unit if fkey else None
    stem = path.stem
    out = []
    for i in range(len(coords)):
        periodic = cells is not None
        a = Atoms(species, positions=coords[i], cell=cells[i] if periodic else None, pbc=periodic)
        if forces is not None:
            a.arrays[keys.FORCES_DFT] = forces[i]
        out.append(_finish(a, f"{stem}{g.name}/{i}", path.name, energies[i], phase))
    return out


def read_pyxtal_json(path: str | Path, name: str = "pyxtal") -> ConfigSet:
    """Read pyxtal-ff's JSON (list of dicts: elements, fractional coords, lattice, energy, force).

    Ids are ``<name>-<index in the file>``, so they stay stable whatever is filtered later.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable pyxtal-ff JSON ({e})") from e
    configs = []
    for i, r in enumerate(records):
        cid = f"{name}-{i:05d}"
        try:
            a = Atoms(
                r["elements"],
                scaled_positions=np.asarray(r["coords"]["data"], dtype=float),
                cell=np.asarray(r["lattice"]["data"], dtype=float),
                pbc=True,
            )
            forces = np.asarray(r["force"], dtype=float)
            energy = float(r["energy"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: record {i} ({cid}) is malformed ({type(e).__name__}: {e})") from e
        if forces.shape != (len(a), 3):
            raise DataError(f"{path}: record {i} ({cid}) has forces of shape {forces.shape}")
        a.arrays[keys.FORCES_DFT] = forces
        configs.append(_finish(a, cid, path.name, energy, "unknown"))
    return ConfigSet(configs, name=name)


def read_mlearn_json(path: str | Path, name: str = "mlearn", prefix: str | None = None) -> ConfigSet:
    """Read an mlearn-benchmark JSON file (Zuo et al. 2020): a list of dicts with a pymatgen
    ``structure`` (lattice matrix, sites with Cartesian ``xyz``), ``outputs.energy`` (eV, total),
    ``outputs.forces`` (eV/Angstrom), ``group`` and ``description``.

    Ids are ``<prefix>-<index in the file>`` (prefix default: ``<name>-<file stem>``); the phase
    is the mlearn ``group`` (AIMD-NVT, Vacancy, Elastic, Surface) and the source names the file,
    the index and the ``description`` (e.g. ``Snapshot 3 of 40 of AIMD NVT simulation at 300 K``).
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable mlearn JSON ({e})") from e
    prefix = prefix or f"{name}-{path.stem}"
    configs = []
    for i, r in enumerate(records):
        cid = f"{prefix}-{i:04d}"
        try:
            structure = r["structure"]
            symbols = [site["species"][0]["element"] for site in structure["sites"]]
            positions = np.array([site["xyz"] for site in structure["sites"]], dtype=float)
            a = Atoms(symbols, positions=positions, cell=np.asarray(structure["lattice"]["matrix"], dtype=float),
                      pbc=True)
            energy = float(r["outputs"]["energy"])
            forces = np.asarray(r["outputs"]["forces"], dtype=float)
            group, description = str(r["group"]), str(r.get("description", ""))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise DataError(f"{path}: record {i} ({cid}) is malformed ({type(e).__name__}: {e})") from e
        if forces.shape != (len(a), 3):
            raise DataError(f"{path}: record {i} ({cid}) has forces of shape {forces.shape}, expected ({len(a)}, 3)")
        a.arrays[keys.FORCES_DFT] = forces
        configs.append(_finish(a, cid, f"{path.parent.name}/{path.name}#{i}: {description}", energy, group))
    return ConfigSet(configs, name=name)
