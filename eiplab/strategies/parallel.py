"""Run a grid's fits on several processes (``eiplab grid --workers N``).

The grid is cut into fits with dependencies: LA classifiers and MP backbones first, then
baseline / MP runs and every alpha of every LA / MP+LA run side by side, then each LA run's
choice on validation (reusing its fits), then the confidence-group runs (which need that
choice). A fit starts as soon as what it needs is finished, on whichever worker is free. Fits
already finished in the grid folder are skipped, and an interrupted fit resumes from its last
epoch as in the serial grid, so the result is the one ``run_grid`` gives: it is called at the
end, in this process, and only reads what the workers stored (``run_grid(..., workers=N)``).

Workers are spawned processes with ``threads`` torch threads each (1 by default: on a CPU
machine one worker per core beats one process using all cores for these small networks).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..data import ConfigSet
from ..training import RECORD_FILE
from .experiment import label_with_eips, prepare_experiment
from .grid import (
    RESULT_FILE,
    SELECTION_FILE,
    GridConfig,
    RunSpec,
    alpha_folder,
    backbone_folder,
    classifier_folder,
    fit_alpha,
    pool_selection,
    pretrained_backbone,
    run_folder,
    run_one,
    stale_reason,
)
from .pretrain import PRETRAINED_FILE
from .subsets import eip_subset, restrict


@dataclass(frozen=True)
class GridTask:
    """One fit: ``kind`` is "classifier", "pretrain", "alpha" (one alpha of an LA / MP+LA run)
    or "run" (``run_one``: a whole baseline / MP / group run, or an LA run's choice)."""

    name: str
    kind: str
    spec: RunSpec
    alpha: float | None = None
    needs: tuple[str, ...] = ()


def grid_tasks(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path) -> dict[str, GridTask]:
    """The fits still to do for ``specs`` (finished ones left out), by name, with what each needs."""
    out = Path(out)
    tasks: dict[str, GridTask] = {}

    def add(task: GridTask, finished: bool) -> str:
        if not finished and task.name not in tasks:
            tasks[task.name] = task
        return task.name

    def classifier(spec: RunSpec) -> str:
        folder = classifier_folder(out, spec.model, spec.subset, spec.seed)
        return add(GridTask(f"{spec.model} classifier[{spec.subset}] seed {spec.seed}", "classifier", spec),
                   (folder / SELECTION_FILE).exists())

    def backbone(spec: RunSpec) -> str:
        folder = backbone_folder(out, spec.model, spec.subset)
        return add(GridTask(f"{spec.model} pretrain[{spec.subset}]", "pretrain", spec), (folder / PRETRAINED_FILE).exists())

    def run(spec: RunSpec, needs: tuple[str, ...] = ()) -> str:
        record = run_folder(out, spec) / RESULT_FILE
        finished = record.exists() and stale_reason(_read(record), spec, grid.alphas, out) is None
        if spec.group != "all":
            # a group run follows its full LA run's choice: while that is to be (re)done, so is it
            full = full_run(replace(spec, group="all"))
            needs += (full,)
            finished = finished and full not in tasks
        return add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed}", "run", spec, needs=needs), finished)

    def full_run(spec: RunSpec) -> str:
        """An LA / MP+LA run: one task per alpha, then the choice."""
        needs = [classifier(spec)] + ([backbone(spec)] if spec.strategy == "mp+la" else [])
        alphas = []
        for alpha in grid.alphas:
            done = (alpha_folder(run_folder(out, spec), alpha) / RECORD_FILE).exists()
            alphas.append(add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}", "alpha", spec,
                                       alpha=float(alpha), needs=tuple(needs)), done))
        return run(spec, tuple(alphas))

    for spec in specs:
        if spec.strategy in ("la", "mp+la") and spec.group == "all":
            full_run(spec)
        elif spec.group != "all":
            run(spec)
        elif spec.strategy == "mp":
            run(spec, (backbone(spec),))
        else:
            run(spec)
    return tasks


def _read(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


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
    if task.kind == "classifier":
        pool_selection(out, spec.model, spec.seed, restrict(base, eip_subset(base, spec.subset)), grid,
                       subset=spec.subset)
    elif task.kind == "pretrain":
        pretrained_backbone(out, spec.model, restrict(base, eip_subset(base, spec.subset)), grid, subset=spec.subset)
    elif task.kind == "alpha":
        fit_alpha(spec, task.alpha, base, grid, out)
    else:
        run_one(spec, base, grid, out)
    return time.perf_counter() - started


def train_in_workers(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path, data: tuple, *, workers: int,
                     threads: int = 1, n_jobs: int = 1, log=print) -> None:
    """Train every unfinished fit of ``specs`` on ``workers`` processes (``run_grid(workers=N)``).

    ``data`` is (configs, splits, seeds, eip_ids) as ``run_grid`` takes them.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    tasks = grid_tasks(specs, grid, out)
    if not tasks:
        return
    configs, splits, seeds, eip_ids = data
    label_with_eips(configs, eip_ids, n_jobs=n_jobs, progress=False)  # labelled once, here; workers read the cache
    log(f"[grid] {len(tasks)} fits to do on {workers} worker processes ({threads} torch thread(s) each)")
    _schedule(tasks, workers, (configs, list(splits), list(seeds), list(eip_ids), grid, str(out), threads), log)


def _schedule(tasks: dict[str, GridTask], workers: int, initargs: tuple, log) -> None:
    """Submit each task once what it needs is finished; stop everything at the first failure."""
    waiting = dict(tasks)
    running: dict[Future, str] = {}
    finished: set[str] = set()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch / KIM state
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs)
    try:
        while waiting or running:
            for name, task in list(waiting.items()):
                if all(need in finished or need not in tasks for need in task.needs):
                    running[pool.submit(_execute, task)] = name
                    del waiting[name]
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
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
