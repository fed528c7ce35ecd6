"""Run a grid: its jobs (:func:`eiplab.workflows.graph.grid_jobs`) on the engine, then its records.

``run_grid(..., workers=1)`` runs every unfinished job in this process, in the graph's order;
``workers=N`` on a local Dask cluster of N processes; ``scheduler=...`` (or ``client=...``) on an
existing Dask cluster, whose workers must reach the grid folder (a shared file system) and
import eiplab. Either way the same jobs run and the same records are written; a finished job is
never redone, an interrupted one resumes from its checkpoint, and a worker killed mid-job has
its job re-run (resuming) on another worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import ConfigSet
from ..engine import Job, Shared, run_jobs, scheduler_from_env
from ..strategies.experiment import Experiment, label_with_eips, prepare_experiment
from .graph import ALPHA, CLASSIFIER, PRETRAIN, GridJob, grid_jobs, is_choice, needed
from .inputs import GridData, grid_data
from .spec import DELTA_STRATEGIES, GridConfig, RunSpec
from .steps import finish_run, fit_alpha, pool_selection, pretrained_backbone, subset_experiment
from .store import RunStore


@dataclass
class GridWork:
    """What every job of a grid needs from the data (sent to each worker once).

    Attributes:
        configs: the dataset.
        splits: split seed -> split (config_id -> part).
        eip_ids: the EIPs.
        energies: their energies of every config (eV; index config_id), so that workers need no
            label cache of their own.
        align: the EIP alignment.
    """

    configs: ConfigSet
    splits: dict[int, pd.Series]
    eip_ids: list[str]
    energies: pd.DataFrame
    align: str


_LAST: dict[str, Any] = {}  # this process's last experiment: jobs come split by split


def experiment_for(work: GridWork, seed: int) -> Experiment:
    """The experiment of split ``seed`` (built once per process and split; one held at a time)."""
    key = (id(work), seed)
    if _LAST.get("key") != key:
        _LAST.clear()
        _LAST.update(key=key, experiment=prepare_experiment(work.configs, work.splits[seed], work.eip_ids,
                                                            align=work.align, energies=work.energies, progress=False))
    return _LAST["experiment"]


def _stop_joblib_workers() -> None:
    """Stop joblib's reusable loky executor (dscribe's SOAP jobs), if this process started one:
    its idle processes would otherwise linger ~5 min in a worker. Private loky state, read with
    getattr: loky has no public "shut down if it exists" (get_reusable_executor creates one)."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def execute(job: GridJob, grid: GridConfig, root: str, work: GridWork, threads: int = 1,
            log: Callable[[str], object] | None = None) -> str:
    """Run one job (in this process or on a Dask worker) with ``threads`` torch threads (0: torch's
    default); returns its name."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    log = log or print
    store, spec = RunStore(root), job.spec
    try:
        base = experiment_for(work, spec.seed)
        if job.kind == CLASSIFIER:
            pool_selection(store, spec.model, spec.seed, subset_experiment(base, spec.subset), grid,
                           subset=spec.subset, log=log)
        elif job.kind == PRETRAIN:
            pretrained_backbone(store, spec.model, subset_experiment(base, spec.subset), grid, log=log)
        elif job.kind == ALPHA:
            fit_alpha(store, spec, job.alpha, base, grid, log=log)
        else:
            finish_run(store, spec, base, grid, log=log)
    finally:
        _stop_joblib_workers()
    return job.name


def plan_inputs(configs: ConfigSet, splits: Sequence[pd.Series], seeds: Sequence[int], eip_ids: Sequence[str],
                specs: Sequence[RunSpec], grid: GridConfig, store: RunStore, energies: pd.DataFrame) -> GridData:
    """The grid's :class:`GridData`; each split's EIPs are ranked (and stored) when a Table 7
    subset is among ``specs``."""
    experiments = None
    if any(spec.subset != "all" for spec in specs):
        experiments = {seed: prepare_experiment(configs, split, eip_ids, align=grid.align, energies=energies,
                                                progress=False)
                       for seed, split in zip(seeds, splits, strict=True)}
    return grid_data(splits, seeds, eip_ids, store, experiments=experiments)


def run_grid(
    configs: ConfigSet,
    splits: Sequence[pd.Series],
    seeds: Sequence[int],
    eip_ids: Sequence[str],
    specs: Sequence[RunSpec],
    grid: GridConfig,
    out: str | Path,
    *,
    n_jobs: int = 1,
    workers: int = 1,
    threads: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = False,
    log: Callable[[str], object] = print,
) -> pd.DataFrame:
    """Run every spec (skipping finished ones); return one row per run, in ``specs`` order.

    Args:
        configs, splits, seeds, eip_ids: the dataset, one split per seed, and the EIPs.
        specs: the runs (:func:`eiplab.workflows.specs_for`).
        grid: the grid's settings.
        out: the grid folder (a :class:`RunStore`).
        n_jobs: processes for the EIP labelling (when not cached yet).
        workers: Dask worker processes on this machine (1: everything in this process).
        threads: torch threads per job (0: torch's default).
        scheduler: an existing Dask scheduler (address or scheduler file; default: the
            ``EIPLAB_SCHEDULER`` environment variable); its workers must see ``out``.
        client: an open ``distributed.Client`` instead.
        progress: show a progress bar of the fits.
        log: where progress lines go.
    """
    delta = sorted({spec.tag for spec in specs if spec.strategy in DELTA_STRATEGIES})
    if grid.force_weight > 0 and delta:
        raise NotImplementedError(f"{delta}: delta-learning with forces (the EIP's forces subtracted too) is not "
                                  "implemented; run delta strategies with force_weight=0")
    store = RunStore(out)
    scheduler = scheduler_from_env(scheduler)
    energies = label_with_eips(configs, eip_ids, n_jobs=n_jobs, progress=False, forces=grid.eip_forces)
    data = plan_inputs(configs, splits, seeds, eip_ids, specs, grid, store, energies)
    todo = needed(grid_jobs(specs, grid, store, data))
    if todo:
        remote = client is not None or scheduler is not None or workers > 1
        where = "this process" if not remote else (f"{workers} local Dask worker(s)" if client is None and scheduler is None
                                                   else "the Dask cluster")
        n_fits = sum(not is_choice(job) for job in todo.values())  # as `--plan` counts them
        log(f"[grid] {len(todo)} job(s) to do on {where}: {n_fits} fit(s) to train, "
            f"{len(todo) - n_fits} alpha choice(s)")
        work = GridWork(configs, dict(zip((int(s) for s in seeds), splits, strict=True)), list(energies.columns),
                        energies, grid.align)
        jobs = [Job(name, execute, (job, grid, str(store.root.resolve()), Shared("work"), threads,
                                    None if remote else log), needs=job.needs)
                for name, job in todo.items()]
        run_jobs(jobs, workers=workers, scheduler=scheduler, client=client, shared={"work": work}, progress=progress,
                 desc="grid fits", unit="fit", log=lambda line: log(f"[grid] {line}"))
    rows = []
    for spec in specs:
        record = store.result(spec)
        if record is None:
            raise RuntimeError(f"{spec.model} {spec.tag} seed {spec.seed}: no result after the grid ran ({store})")
        rows.append(record)
    return pd.DataFrame(rows)
