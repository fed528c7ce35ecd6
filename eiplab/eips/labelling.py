"""Label a dataset with EIP energies (and forces): cached, resumable, parallel on the engine (Dask)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols
from tqdm.auto import tqdm

from .. import keys
from ..engine import Job, run_jobs
from .cache import LabelCache, config_hash
from .configs import ConfigArrays
from .errors import SpeciesNotSupportedError
from .evaluate import EIPModel, config_label, evaluate_one
from .registry import EIPSpec, check_not_trained_on, resolve, spec_for

log = logging.getLogger(__name__)

#: Configurations per cache chunk (a killed run loses at most the chunks in progress).
CHUNK_SIZE = 64
MAX_PARALLEL_CHUNK = 1024  # largest chunk when labelling on several workers
CHUNKS_PER_WORKER = 1  # per model and worker when labelling on several workers (the engine costs ~10 ms a job)
JOBS_PER_WORKER = 2  # jobs in flight per local worker (one queued behind the running one)

# Models created in this process (a worker creates each model once), by spec.
_MODELS: dict[EIPSpec, EIPModel] = {}


def _model(spec: EIPSpec) -> EIPModel:
    model = _MODELS.get(spec)
    if model is None:
        from .calculator import CalculatorModel
        from .kim import KIMModel

        model = KIMModel(spec.model_id) if spec.is_kim else CalculatorModel(spec)
        _MODELS[spec] = model
    return model


Row = tuple[str, float, str | None, np.ndarray | None]


def _label_chunk(
    spec: EIPSpec, items: Sequence[tuple[str, Atoms | ConfigArrays]], forces: bool = False
) -> list[Row]:
    """Evaluate one chunk: (config hash, energy eV or NaN, failure reason or None, forces
    [n_atoms, 3] eV/Angstrom or None) per item."""
    model = _model(spec)
    out = []
    for h, atoms in items:
        try:
            e, f, reason = evaluate_one(model, atoms, forces)
        except SpeciesNotSupportedError as err:  # checked up front; kept for safety
            e, f, reason = float("nan"), None, str(err)
        out.append((h, e, reason, f))
    return out


@dataclass
class _Packed:
    """A chunk of configurations as a few flat arrays (cheap to send to a worker)."""

    hashes: list[str]
    numbers: np.ndarray  # [n_atoms_total] int
    counts: np.ndarray  # [n_configs] atoms per config
    positions: np.ndarray  # [n_atoms_total, 3] Angstrom
    cells: np.ndarray  # [n_configs, 3, 3] Angstrom
    pbc: np.ndarray  # [n_configs, 3] bool

    @classmethod
    def of(cls, items: list[tuple[str, Atoms]]) -> _Packed:
        atoms = [a for _, a in items]
        return cls(
            [h for h, _ in items],
            np.concatenate([a.numbers for a in atoms]),
            np.array([len(a) for a in atoms]),
            np.concatenate([a.positions for a in atoms]),
            np.array([a.cell.array for a in atoms]),
            np.array([a.pbc for a in atoms]),
        )

    def items(self) -> list[tuple[str, ConfigArrays]]:
        ends = np.cumsum(self.counts)
        return [
            (h, ConfigArrays(self.numbers[e - c : e], self.positions[e - c : e], cell, pbc))
            for h, c, e, cell, pbc in zip(
                self.hashes, self.counts, ends, self.cells, self.pbc, strict=True
            )
        ]


def _label_packed(spec: EIPSpec, packed: _Packed, forces: bool = False) -> list[Row]:
    """Worker entry point: unpack a chunk and label it."""
    return _label_chunk(spec, packed.items(), forces)


def _needs_work(entry: tuple | None, forces: bool) -> bool:
    """A config must be (re)evaluated: not cached, or its forces are asked for and were never
    computed (an energy-only entry, e.g. from a format-1 cache; a failed one is not retried)."""
    return entry is None or (forces and entry[2] is None and entry[1] is None)


def check_species(configs: Sequence[Atoms], model: EIPModel) -> None:
    """Refuse a model that lacks an element of the dataset.

    Raises:
        SpeciesNotSupportedError: naming the model, the missing species and one config id.
    """
    present = np.unique(np.concatenate([a.numbers for a in configs])) if configs else []
    if model.supports(np.asarray(present, dtype=int)):
        return
    missing = sorted({chemical_symbols[z] for z in present} - set(model.species))
    example = next(
        (k, a) for k, a in enumerate(configs) if set(a.get_chemical_symbols()) & set(missing)
    )
    holds = sorted(set(example[1].get_chemical_symbols()) & set(missing))
    raise SpeciesNotSupportedError(
        f"EIP {model.model_id} does not support species {missing} of this dataset "
        f"(it supports {model.species}); e.g. config {config_label(example[1], example[0])} "
        f"holds {holds}"
    )


def _config_ids(configs: Sequence[Atoms]) -> list[str]:
    ids = [config_label(a, k) for k, a in enumerate(configs)]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise ValueError(f"config ids are not unique (e.g. {dup!r} repeats)")
    return ids


def label_dataset(
    configs: Sequence[Atoms],
    model_ids: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
    scheduler: str | None = None,
    client: object = None,
    forces: bool = False,
) -> pd.DataFrame:
    """Total energies (eV) of every config under every EIP, cached on disk and resumable.

    Energies are also written to ``atoms.info[keys.ENERGY_EIP][model_id]`` (NaN = failed), and
    with ``forces`` each EIP's forces to ``atoms.info[keys.FORCES_EIP][model_id]`` ([n_atoms, 3]
    eV/Angstrom; None where the EIP failed; read them with :func:`eip_forces`).
    Configurations are cached by content hash (:func:`config_hash`) per model, in chunks of
    ``chunk_size`` written atomically: a rerun evaluates only what no finished chunk holds, and
    an interrupted run (Ctrl-C, SIGKILL) loses at most the chunks in progress.

    Args:
        configs: configurations (``info[keys.CONFIG_ID]`` used as row labels when present).
        model_ids: KIM IDs (another installed version is accepted, see :func:`resolve`) or
            registered non-KIM EIP ids. Columns use the resolved ids.
        cache_dir: cache folder (created); default: ``<eiplab cache>/eip`` (``EIPLAB_CACHE``
            or ``~/.cache/eiplab``).
        n_jobs: local Dask worker processes (each creates each model once); 1 = in this process.
        progress: show a tqdm progress bar (configs labelled / left).
        chunk_size: configs per cache chunk (one engine job each); with several workers, chunks
            grow to about a quarter of each worker's share (at most ``MAX_PARALLEL_CHUNK``), so
            that per-job overhead stays small.
        scheduler, client: an existing Dask cluster (address or scheduler file) or client instead
            of local workers (see :mod:`eiplab.engine`).
        forces: also compute (and cache) each EIP's forces; cached energy-only entries (an
            earlier call without forces, or a format-1 cache) are evaluated again for their
            forces, nothing else is.

    Returns:
        DataFrame indexed by config id (``keys.CONFIG_ID``), one float column per model, eV.
        ``df.attrs["failures"]``: ``{model_id: {config_id: reason}}`` for the NaN entries;
        ``df.attrs["n_evaluated"]``: ``{model_id: configs evaluated in this call}``;
        with ``forces``, ``df.attrs["force_failures"]``: ``{model_id: {config_id: reason}}`` for
        configs with a finite energy whose forces failed (they get no force term).

    Raises:
        SpeciesNotSupportedError: a model lacks an element of the dataset (before any work).
        LeakageError: a model was fitted on this dataset (``configs.name``; see
            :func:`eiplab.eips.registry.check_not_trained_on`).
        ModelNotFoundError, SimulatorModelError, KIMError: a model cannot be loaded.
    """
    ids = _config_ids(configs)
    resolved = list(dict.fromkeys(resolve(m) for m in model_ids))
    check_not_trained_on(resolved, getattr(configs, "name", None))
    if cache_dir is None:
        from ..paths import cache_dir as eiplab_cache

        cache_dir = eiplab_cache() / "eip"
    specs = [spec_for(m) for m in resolved]
    for spec in specs:  # load each model here once: fail fast on loading and species
        check_species(configs, _model(spec))

    cache = LabelCache(cache_dir)
    hashes = [config_hash(a) for a in configs]
    first_of: dict[str, int] = {}
    for k, h in enumerate(hashes):
        first_of.setdefault(h, k)

    cached = {m: cache.load(m) for m in resolved}
    tasks: list[tuple[EIPSpec, list[tuple[str, Atoms]]]] = []
    remote = n_jobs > 1 or scheduler is not None or client is not None
    for spec in specs:
        todo = [h for h in first_of if _needs_work(cached[spec.model_id].get(h), forces)]
        size = chunk_size
        if remote:  # a few chunks per worker: the engine costs ~10 ms a job
            size = min(max(chunk_size, -(-len(todo) // (CHUNKS_PER_WORKER * max(n_jobs, 1)))), MAX_PARALLEL_CHUNK)
        for s in range(0, len(todo), size):
            part = todo[s : s + size]
            tasks.append((spec, [(h, configs[first_of[h]]) for h in part]))
    n_evaluated = {m: 0 for m in resolved}
    n_todo = sum(len(items) for _, items in tasks)
    if n_todo:
        log.info("labelling %d (config, model) pairs in %d chunks", n_todo, len(tasks))

    with tqdm(
        total=n_todo, disable=not progress or n_todo == 0, desc="EIP labels", unit="config"
    ) as bar:

        def finish(spec: EIPSpec, rows: list[Row]) -> None:
            cache.write_chunk(spec.model_id, rows)
            for h, e, r, f in rows:
                cached[spec.model_id][h] = (e, r, f)
            n_evaluated[spec.model_id] += len(rows)
            bar.update(len(rows))

        if tasks:
            jobs = [Job(f"{spec.model_id} chunk {k}", _label_packed, (spec, _Packed.of(items), forces))
                    for k, (spec, items) in enumerate(tasks)]
            spec_of = {job.name: spec for job, (spec, _) in zip(jobs, tasks, strict=True)}
            run_jobs(jobs, lambda job, rows: finish(spec_of[job.name], rows), workers=n_jobs, scheduler=scheduler,
                     client=client, in_flight=JOBS_PER_WORKER * max(n_jobs, 1) if scheduler is None and client is None else None,
                     progress=False)

    table = pd.DataFrame(
        {m: [cached[m][h][0] for h in hashes] for m in resolved},
        index=pd.Index(ids, name=keys.CONFIG_ID),
        dtype=float,
    )
    failures: dict[str, dict[str, str]] = {}
    for m in resolved:
        bad = {
            ids[k]: cached[m][h][1] or "NaN"
            for k, h in enumerate(hashes)
            if not np.isfinite(cached[m][h][0])
        }
        if bad:
            failures[m] = bad
            log.warning("EIP %s failed on %d of %d configs", m, len(bad), len(configs))
    force_failures: dict[str, dict[str, str]] = {}
    if forces:  # a finite energy whose forces failed: the config gets no force term from this EIP
        for m in resolved:
            bad = {ids[k]: cached[m][h][1] for k, h in enumerate(hashes)
                   if np.isfinite(cached[m][h][0]) and cached[m][h][2] is None}
            if bad:
                force_failures[m] = bad
                log.warning("EIP %s: forces failed on %d of %d configs (energies fine)", m, len(bad), len(configs))
    values = table.to_numpy()
    for atoms, row in zip(configs, values, strict=True):
        labels = atoms.info.setdefault(keys.ENERGY_EIP, {})
        labels.update({m: float(e) for m, e in zip(resolved, row, strict=True)})
    if forces:
        for atoms, h in zip(configs, hashes, strict=True):
            atoms.info.setdefault(keys.FORCES_EIP, {}).update({m: cached[m][h][2] for m in resolved})
    table.attrs["failures"] = failures
    table.attrs["force_failures"] = force_failures
    table.attrs["n_evaluated"] = n_evaluated
    return table


def eip_forces(atoms: Atoms, model_id: str) -> np.ndarray | None:
    """Forces of one EIP on one config, [n_atoms, 3] eV/Angstrom (None where the EIP failed).

    Raises:
        KeyError: the config was not labelled with this EIP's forces (``label_dataset(...,
            forces=True)``), naming the config and the model.
    """
    stored = atoms.info.get(keys.FORCES_EIP, {})
    if model_id not in stored:
        raise KeyError(f"config {config_label(atoms, -1)} has no forces of EIP {model_id}: label with "
                       "label_dataset(..., forces=True) first")
    return stored[model_id]


def failures_table(table: pd.DataFrame) -> pd.DataFrame:
    """The failures recorded by :func:`label_dataset` as rows (config_id, EIP short name,
    model_id, reason)."""
    from .registry import spec_for

    rows = [
        (cid, spec_for(m).name, m, reason)
        for m, bad in table.attrs.get("failures", {}).items()
        for cid, reason in bad.items()
    ]
    return pd.DataFrame(rows, columns=[keys.CONFIG_ID, "EIP", "model_id", "reason"])
