"""Per-atom SOAP features (dscribe) for SOAPNet, computed once per dataset and cached.

Settings follow METHOD.md: r_cut 5 A (Si) / 7 A (Al), n_max 8, l_max 6, sigma 1.0, the "gto"
radial basis, every species of the dataset with cross terms (dscribe's compression "off"),
periodic only for periodic configurations (a non-periodic config gets the same feature layout
from a non-periodic descriptor). Features are cached as ``.npz`` under
``eiplab.paths.cache_dir() / "soap"``, keyed by a hash of the settings, the dscribe version
and every configuration's content (species, positions, cell, pbc).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path

import ase
import numpy as np
import torch
from torch_geometric.data import Data
from tqdm.auto import tqdm

from eiplab import keys
from eiplab.data.hashing import config_hash
from eiplab.graphs.build import X, Z
from eiplab.paths import cache_dir as default_cache_dir

CACHE_SUBDIR = "soap"
CHUNK = 256  # configurations per dscribe call (progress bar granularity)
PARALLEL_MIN = 64  # fewer configurations than this are computed in one process


@dataclass(frozen=True)
class SoapSettings:
    """SOAP descriptor settings.

    Args:
        r_cut: cutoff radius (Angstrom).
        n_max: radial basis functions.
        l_max: maximum spherical-harmonic degree.
        sigma: Gaussian width of the atomic density (Angstrom).
        rbf: dscribe radial basis ("gto" or "polynomial").
        species: atomic numbers covered (sorted); ``None`` = those of the dataset.
    """

    r_cut: float = 5.0
    n_max: int = 8
    l_max: int = 6
    sigma: float = 1.0
    rbf: str = "gto"
    species: tuple[int, ...] | None = None

    def with_species(self, configs: Sequence[ase.Atoms]) -> SoapSettings:
        """These settings with ``species`` set to the dataset's species when unset."""
        if self.species is not None:
            return self
        found = sorted({int(z) for atoms in configs for z in atoms.numbers})
        return replace(self, species=tuple(found))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["species"] = None if self.species is None else list(self.species)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> SoapSettings:
        values = dict(values)
        if values.get("species") is not None:
            values["species"] = tuple(int(z) for z in values["species"])
        return cls(**values)


def _descriptor(settings: SoapSettings, periodic: bool):
    from dscribe.descriptors import SOAP

    return SOAP(
        species=list(settings.species),
        r_cut=settings.r_cut,
        n_max=settings.n_max,
        l_max=settings.l_max,
        sigma=settings.sigma,
        rbf=settings.rbf,
        periodic=periodic,
        sparse=False,
        dtype="float64",
    )


def n_soap_features(settings: SoapSettings) -> int:
    """Length of the per-atom SOAP vector for ``settings`` (species must be set)."""
    if settings.species is None:
        raise ValueError("set SoapSettings.species first (e.g. settings.with_species(configs))")
    return int(_descriptor(settings, periodic=False).get_number_of_features())


def _cache_key(configs: Sequence[ase.Atoms], settings: SoapSettings) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings.to_dict(), sort_keys=True).encode())
    h.update(version("dscribe").encode())
    for atoms in configs:
        h.update(config_hash(atoms).encode())
    return h.hexdigest()[:24]


def _compute(
    configs: Sequence[ase.Atoms], settings: SoapSettings, n_jobs: int, progress: bool
) -> list[np.ndarray]:
    results: list[np.ndarray | None] = [None] * len(configs)
    # a daemon process (a local Dask worker of the grid engine) cannot start joblib workers:
    # joblib would fall back to one job with a warning per call, so ask for one job directly
    in_daemon = multiprocessing.current_process().daemon
    groups = {
        True: [k for k, a in enumerate(configs) if np.any(a.pbc)],
        False: [k for k, a in enumerate(configs) if not np.any(a.pbc)],
    }
    with tqdm(total=len(configs), desc="SOAP", disable=not progress, leave=False) as bar:
        for periodic, indices in groups.items():
            if not indices:
                continue
            soap = _descriptor(settings, periodic)
            for start in range(0, len(indices), CHUNK):
                chunk = indices[start : start + CHUNK]
                systems = [_prepared(configs[k]) for k in chunk]
                jobs = n_jobs if len(systems) >= PARALLEL_MIN and not in_daemon else 1  # joblib start-up ~1-3 s
                out = soap.create(systems, n_jobs=jobs)
                if len(systems) == 1:  # dscribe returns a bare array for a single system
                    out = [out]
                for k, features in zip(chunk, out, strict=True):
                    results[k] = np.asarray(features, dtype=np.float32).reshape(len(configs[k]), -1)
                bar.update(len(chunk))
    return results  # type: ignore[return-value]


def _prepared(atoms: ase.Atoms) -> ase.Atoms:
    """A copy dscribe accepts: a periodic config with zero cell vectors gets them completed."""
    atoms = atoms.copy()
    atoms.calc = None
    if np.any(atoms.pbc) and abs(atoms.cell.volume) < 1e-12:
        atoms.set_cell(atoms.cell.complete(), scale_atoms=False)
    return atoms


def soap_features(
    configs: Sequence[ase.Atoms],
    settings: SoapSettings = SoapSettings(),
    *,
    cache: bool | str | Path = True,
    n_jobs: int = 2,
    progress: bool = True,
) -> list[np.ndarray]:
    """SOAP vectors of every atom of every configuration.

    Args:
        configs: the configurations.
        settings: descriptor settings (``species`` None = the configs' species).
        cache: True = default cache folder, a path = that folder, False = no cache.
        n_jobs: parallel dscribe jobs.
        progress: show a progress bar.

    Returns:
        One float32 array [n_atoms, n_features] per configuration.
    """
    settings = settings.with_species(configs)
    for atoms in configs:
        missing = set(int(z) for z in atoms.numbers) - set(settings.species)
        if missing:
            raise ValueError(
                f"configuration {atoms.info.get(keys.CONFIG_ID, '?')} has species {sorted(missing)} "
                f"not in the SOAP species {list(settings.species)}"
            )
    path = None
    if cache:
        folder = default_cache_dir() / CACHE_SUBDIR if cache is True else Path(cache)
        path = folder / f"soap-{_cache_key(configs, settings)}.npz"
        if path.exists():
            with np.load(path) as stored:
                flat, offsets = stored["features"], stored["offsets"]
            return [flat[offsets[k] : offsets[k + 1]] for k in range(len(configs))]
    features = _compute(configs, settings, n_jobs, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in features])])
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # grid workers may write the same entry
        np.savez(tmp, features=np.concatenate(features), offsets=offsets)
        tmp.replace(path)
    return features


def attach_soap(graphs: Sequence[Data], features: Sequence[np.ndarray]) -> None:
    """Set ``x`` [n_atoms, n_features] on each graph (in place)."""
    if len(graphs) != len(features):
        raise ValueError(f"{len(graphs)} graphs but {len(features)} feature arrays")
    for graph, values in zip(graphs, features, strict=True):
        if values.shape[0] != graph[Z].shape[0]:
            raise ValueError("feature rows do not match the graph's atoms")
        graph[X] = torch.as_tensor(values, dtype=torch.get_default_dtype())
