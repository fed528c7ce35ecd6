"""Run a grid's fits on several processes (``eiplab grid --workers N``).

The grid is cut into fits with dependencies (``eiplab.strategies.fits``), split by split: a
split's LA classifier and the MP backbone, its baseline / MP runs and every alpha of its LA /
MP+LA runs, each LA run's choice on validation (reusing its fits), then its confidence-group
runs (which need that choice). A free worker takes the first fit whose needs are finished, in
that order, so the next split's fits fill the workers while a split's choice waits. Fits
already finished in the grid folder are skipped, and an interrupted fit resumes from its last
epoch as in the serial grid, so the result is the one ``run_grid`` gives: it is called at the
end, in this process, and only reads what the workers stored (``run_grid(..., workers=N)``).

Workers are spawned processes with ``threads`` torch threads each (1 by default: on a CPU
machine one worker per core beats one process using all cores for these small networks).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import pandas as pd

from ..data import ConfigSet
from .experiment import label_with_eips, prepare_experiment
from .fits import ALPHA, CLASSIFIER, PRETRAIN, GridTask, grid_fits, needed
from .grid import (
    GridConfig,
    GridData,
    RunSpec,
    fit_alpha,
    grid_data,
    pool_selection,
    pretrained_backbone,
    run_one,
)
from .plan import plan_grid, time_left
from .subsets import eip_subset, restrict


def grid_tasks(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path, data: GridData) -> dict[str, GridTask]:
    """The fits still to do for ``specs`` (finished ones left out), by name, with what each needs."""
    return needed(grid_fits(specs, grid, out, data))


# --- worker side: the data are sent once per worker; experiments are built once per split -------
_WORKER: dict = {}


def _init_worker(configs: ConfigSet, splits: list[pd.Series], seeds: list[int], eip_ids: list[str], grid: GridConfig,
                 out: str, threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    _WORKER.update(configs=configs, splits=dict(zip(seeds, splits, strict=True)), eip_ids=eip_ids, grid=grid,
                   out=Path(out), experiments={})


def _experiment(seed: int):
    if seed not in _WORKER["experiments"]:
        _WORKER["experiments"][seed] = prepare_experiment(
            _WORKER["configs"], _WORKER["splits"][seed], _WORKER["eip_ids"], align=_WORKER["grid"].align,
            progress=False)
    return _WORKER["experiments"][seed]


def _stop_joblib_workers() -> None:
    """Stop joblib's reusable loky executor (dscribe's SOAP jobs), if this process started one.

    Its processes otherwise idle for ~5 min after use, and a spawned worker joins its children
    before it exits, so the pool's shutdown would wait that long. Private loky state, read with
    getattr: loky has no public "shut down if it exists" (get_reusable_executor creates one).
    """
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def _execute(task: GridTask) -> float:
    """Run one task in a worker; returns its wall time (s)."""
    try:
        return _run_task(task)
    finally:
        _stop_joblib_workers()


def _run_task(task: GridTask) -> float:
    started = time.perf_counter()
    grid, out, spec = _WORKER["grid"], _WORKER["out"], task.spec
    base = _experiment(spec.seed)
    if task.kind == CLASSIFIER:
        pool_selection(out, spec.model, spec.seed, restrict(base, eip_subset(base, spec.subset)), grid,
                       subset=spec.subset)
    elif task.kind == PRETRAIN:
        pretrained_backbone(out, spec.model, restrict(base, eip_subset(base, spec.subset)), grid)
    elif task.kind == ALPHA:
        fit_alpha(spec, task.alpha, base, grid, out)
    else:
        run_one(spec, base, grid, out)
    return time.perf_counter() - started


def train_in_workers(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path, data: tuple, *, workers: int,
                     threads: int = 1, n_jobs: int = 1, log: Callable[[str], object] = print) -> None:
    """Train every unfinished fit of ``specs`` on ``workers`` processes (``run_grid(workers=N)``).

    ``data`` is (configs, splits, seeds, eip_ids) as ``run_grid`` takes them.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    configs, splits, seeds, eip_ids = data
    label_with_eips(configs, eip_ids, n_jobs=n_jobs, progress=False)  # labelled once, here; workers read the cache
    experiments = None
    if any(spec.subset != "all" for spec in specs):  # Table 7: rank each split's EIPs first (cheap)
        experiments = {seed: prepare_experiment(configs, split, eip_ids, align=grid.align, progress=False)
                       for seed, split in zip(seeds, splits, strict=True)}
    inputs = grid_data(splits, seeds, eip_ids, out, experiments=experiments)
    tasks = grid_tasks(specs, grid, out, inputs)
    if not tasks:
        return
    log(f"[grid] {len(tasks)} fits to do on {workers} worker processes ({threads} torch thread(s) each)")

    def left() -> str:
        return time_left(plan_grid(specs, grid, out, inputs), workers)

    _schedule(tasks, workers, (configs, list(splits), list(seeds), list(eip_ids), grid, str(out), threads), log,
              left=left)


def next_tasks(waiting: dict[str, GridTask], finished: Collection[str], todo: Collection[str], free: int) -> list[str]:
    """The first ``free`` waiting tasks, in order, whose needs are finished (or were never to do)."""
    ready = [name for name, task in waiting.items()
             if all(need in finished or need not in todo for need in task.needs)]
    return ready[:max(free, 0)]


def _schedule(tasks: dict[str, GridTask], workers: int, initargs: tuple, log,
              left: Callable[[], str] | None = None) -> None:
    """Give each free worker the first task (in ``tasks`` order) whose needs are finished; stop
    everything at the first failure. Only as many tasks as workers are submitted at a time, so a
    task never queues behind ones that became ready earlier but come later in the order: an LA
    run's choice runs as soon as its alphas are done, not after every other split's alphas (an
    interrupted grid then leaves whole splits finished). After each finished fit, ``left()`` (the
    plan's estimate of what is left) is logged."""
    waiting = dict(tasks)
    running: dict[Future, str] = {}
    finished: set[str] = set()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch / KIM state
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs)
    try:
        while waiting or running:
            for name in next_tasks(waiting, finished, tasks, workers - len(running)):
                running[pool.submit(_execute, waiting.pop(name))] = name
            if not running:
                raise RuntimeError(f"grid tasks wait on each other: {sorted(waiting)}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                try:
                    seconds = future.result()
                except Exception as exc:
                    raise RuntimeError(f"grid fit '{name}' failed in a worker process: {exc}; finished fits are kept, "
                                       "re-run the same command to resume") from exc
                finished.add(name)
                log(f"[grid] done ({len(finished)}/{len(tasks)}): {name} in {seconds / 60:.1f} min")
                if left is not None and (waiting or running):
                    log(f"[grid] left: {left()}")
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
