"""Label configurations with DFT: resumable, on the engine (Dask workers, one thread each).

Every finished config is appended to a :class:`DFTStore` at once, so a run stopped by Ctrl-C
or a kill loses at most the configs in progress; the next run computes only what the store
lacks. Failures (SCF not converged, GPAW errors) are stored with NaN energies and the reason,
never dropped; they are not retried unless asked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import ase
import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from tqdm.auto import tqdm

from .. import keys
from ..data.hashing import config_hash
from ..engine import Job, run_jobs
from .gpaw_calc import check_periodic, gpaw_version, make_calculator
from .settings import DFTSettings
from .store import DFTRecord, DFTStore

log = logging.getLogger(__name__)

#: ``factory(atoms, settings) -> ASE calculator``; must be picklable (a module-level function).
CalculatorFactory = Callable[[Atoms, DFTSettings], Calculator]



def _code_versions(calc: Any) -> dict[str, str]:
    code = {"ase": ase.__version__, "calculator": type(calc).__name__}
    if type(calc).__module__.startswith("gpaw"):
        code["gpaw"] = gpaw_version()
        with contextlib.suppress(ImportError):
            import gpaw_data

            code["gpaw-data"] = str(gpaw_data.__version__)
    return code


def compute_one(
    config_id: str,
    atoms: Atoms,
    settings: DFTSettings,
    factory: CalculatorFactory = make_calculator,
) -> DFTRecord:
    """Run one calculation; any ``Exception`` becomes a failed record (NaN, reason).

    Args:
        config_id: id stored with the result.
        atoms: the configuration (not modified).
        settings: DFT settings.
        factory: builds the calculator (default: GPAW via :func:`make_calculator`).

    Returns:
        A :class:`DFTRecord`; energies in eV, forces in eV/Angstrom, seconds of wall time.
    """
    a = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    t0, c0 = time.perf_counter(), time.process_time()
    code: dict[str, str] = {"ase": ase.__version__}
    try:
        calc = factory(a, settings)
        code = _code_versions(calc)
        a.calc = calc
        energy = float(a.get_potential_energy())
        try:
            free = float(a.get_potential_energy(force_consistent=True))
        except PropertyNotImplementedError:
            free = energy
        forces = np.asarray(a.get_forces(), dtype=float).tolist()
        status, reason = "ok", None
    except Exception as e:  # recorded, never dropped: the store keeps the reason
        energy = free = float("nan")
        forces = None
        status, reason = "failed", f"{type(e).__name__}: {' '.join(str(e).split())}"
    return DFTRecord(
        config_id=config_id,
        structure_hash=config_hash(atoms),
        settings_digest=settings.digest(),
        energy=energy,
        free_energy=free,
        forces=forces,
        status=status,
        reason=reason,
        seconds=round(time.perf_counter() - t0, 3),
        cpu_seconds=round(time.process_time() - c0, 3),
        kpts=list(settings.kpts(a)),
        n_atoms=len(a),
        settings=settings.as_dict(),
        code=code,
    )


def _plain(atoms: Atoms) -> Atoms:
    """Numbers, positions, cell and pbc only: what a worker needs (cheap to send)."""
    return Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def _apply(atoms: Atoms, rec: DFTRecord) -> None:
    """Write an ok record into ``atoms.info``/``arrays`` (failed ones leave no energy)."""
    if rec.ok:
        atoms.info[keys.ENERGY_DFT] = rec.energy
        if rec.forces is not None:
            atoms.arrays[keys.FORCES_DFT] = np.asarray(rec.forces, dtype=float)
    else:
        atoms.info.pop(keys.ENERGY_DFT, None)


def label_dft(
    configs: Sequence[Atoms],
    settings: DFTSettings | Sequence[DFTSettings],
    store: str | os.PathLike | DFTStore,
    *,
    n_workers: int = 2,
    progress: bool = True,
    calculator_factory: CalculatorFactory = make_calculator,
    retry_failed: bool = False,
    desc: str = "DFT",
    scheduler: str | None = None,
    client: object = None,
) -> pd.DataFrame:
    """DFT energies (eV) and forces for every config, stored as they finish, resumable.

    Args:
        configs: 3D-periodic configurations with unique ``info[keys.CONFIG_ID]``.
        settings: DFT settings (recorded with every energy), or one per config.
        store: the JSON-lines store file (or a :class:`DFTStore`).
        n_workers: local Dask worker processes (one BLAS/OpenMP thread each: Dask's nanny sets
            OMP/MKL/OPENBLAS_NUM_THREADS=1 before starting them); 1 = in this process.
        progress: show a tqdm progress bar.
        calculator_factory: ``factory(atoms, settings) -> calculator`` (a picklable module-level
            function; tests inject a cheap one such as ASE's EMT).
        retry_failed: compute configs whose stored record is a failure again.
        desc: progress-bar label.
        scheduler, client: an existing Dask cluster (address or scheduler file) or client instead
            of local workers (see :mod:`eiplab.engine`); its workers need GPAW too.

    Returns:
        DataFrame indexed by config id: ``energy`` and ``free_energy`` (eV, NaN = failed),
        ``status``, ``reason``, ``seconds``, ``cpu_seconds``, ``n_atoms``, ``computed`` (True when computed in
        this call). ``df.attrs["failures"]`` = ``{config_id: reason}``. The configs also get
        ``info[keys.ENERGY_DFT]`` and ``arrays[keys.FORCES_DFT]`` for the ok ones.

    Raises:
        NonPeriodicError: a config is not 3D periodic (checked before any work).
        ValueError: config ids missing or repeated.
        KeyboardInterrupt: re-raised after pending work is cancelled; finished configs stay
            stored.
    """
    store = store if isinstance(store, DFTStore) else DFTStore(store)
    ids = [a.info.get(keys.CONFIG_ID) for a in configs]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        raise ValueError("label_dft needs unique info['config_id'] on every config")
    for a in configs:
        check_periodic(a)
    if calculator_factory is make_calculator:
        gpaw_version()  # fail now (with the install route) rather than in every worker

    per_config = [settings] * len(configs) if isinstance(settings, DFTSettings) else list(settings)
    if len(per_config) != len(configs):
        raise ValueError(f"{len(per_config)} settings for {len(configs)} configs")
    keys_ = [
        (cid, config_hash(a), s.digest())
        for cid, a, s in zip(ids, configs, per_config, strict=True)
    ]
    done = store.load()
    results: dict[str, DFTRecord] = {}
    todo: list[int] = []
    for k, key in enumerate(keys_):
        rec = done.get(key)
        if rec is not None and (rec.ok or not retry_failed):
            results[key[0]] = rec
        else:
            todo.append(k)
    # expensive first (atoms x k-points): the workers finish together
    todo.sort(key=lambda k: -len(configs[k]) * int(np.prod(per_config[k].kpts(configs[k]))))
    computed: set[str] = set()

    # the bar shows done / to do, the rate and the ETA (the expensive configs come first, so the ETA
    # starts pessimistic) and the CPU-hours spent by this call; failures when there are any
    bar = tqdm(total=len(todo), desc=desc, unit="config", disable=not progress)
    cpu_seconds = [0.0]

    def finish(rec: DFTRecord) -> None:
        store.append(rec)
        results[rec.config_id] = rec
        computed.add(rec.config_id)
        cpu_seconds[0] += rec.cpu_seconds or 0.0
        failed = sum(not results[c].ok for c in computed)
        bar.set_postfix({"cpu_h": f"{cpu_seconds[0] / 3600:.2f}", **({"failed": failed} if failed else {})},
                        refresh=False)
        bar.update(1)
        if not rec.ok:
            log.warning("DFT failed for %s: %s", rec.config_id, rec.reason)

    jobs = [Job(ids[k], compute_one, (ids[k], _plain(configs[k]), per_config[k], calculator_factory)) for k in todo]
    try:
        if jobs:
            run_jobs(jobs, lambda job, rec: finish(rec), workers=n_workers, scheduler=scheduler, client=client,
                     in_flight=2 * max(n_workers, 1) if scheduler is None and client is None else None, progress=False)
    finally:
        bar.close()

    for a, cid in zip(configs, ids, strict=True):
        _apply(a, results[cid])
    rows = {
        cid: {
            "energy": r.energy,
            "free_energy": r.free_energy,
            "status": r.status,
            "reason": r.reason,
            "seconds": r.seconds,
            "cpu_seconds": r.cpu_seconds,
            "n_atoms": r.n_atoms,
            "computed": cid in computed,
        }
        for cid, r in ((cid, results[cid]) for cid in ids)
    }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = keys.CONFIG_ID
    df.attrs["failures"] = {cid: r.reason for cid, r in results.items() if not r.ok}
    return df
