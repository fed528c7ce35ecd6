"""The one declaration of a grid's work: its jobs, what each needs, and whether it is finished.

A job is an LA classifier with its pool selection, an MP backbone, one alpha of an LA / MP+LA
run, or a run (a baseline / MP / confidence-group run, or an LA run's choice of alpha on
validation, which reuses its alpha fits). :func:`grid_jobs` lists them split by split -- a
split's classifier (and the backbone), its runs and every alpha of its LA runs, each LA run's
choice, then its confidence-group runs -- so that running them in this order, on one process or
on a Dask cluster (:func:`eiplab.workflows.run_grid`), leaves whole splits finished; the plan
(:func:`eiplab.workflows.plan_grid`) lists the same jobs with their status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..training import BEST_MODEL_FILE, RECORD_FILE
from .inputs import GridData, backbone_inputs, classifier_inputs, fit_inputs, run_inputs
from .spec import LA_STRATEGIES, GridConfig, RunSpec
from .steps import stale_reason
from .store import CLASSIFIER_FIT, SELECTION_FILE, RunStore

CLASSIFIER, PRETRAIN, ALPHA, RUN = "classifier", "pretrain", "alpha", "run"


@dataclass(frozen=True)
class GridJob:
    """One job of a grid.

    Attributes:
        name: unique, as logs and the plan show it.
        kind: "classifier", "pretrain", "alpha" or "run".
        spec: the run it belongs to (for a classifier or backbone: the first run needing it).
        alpha: the alpha of an "alpha" job.
        needs: names of the jobs it waits for.
        finished: its result is stored and was made with the grid's inputs now.
        folder: where it trains (its checkpoint), when known.
    """

    name: str
    kind: str
    spec: RunSpec
    alpha: float | None = None
    needs: tuple[str, ...] = ()
    finished: bool = False
    folder: Path | None = None


def is_choice(job: GridJob) -> bool:
    """An LA / MP+LA run's choice of alpha: a "run" that trains nothing (its alphas do)."""
    return job.kind == RUN and job.spec.strategy in LA_STRATEGIES and job.spec.group == "all"


def grid_jobs(specs: Sequence[RunSpec], grid: GridConfig, store: RunStore, data: GridData) -> dict[str, GridJob]:
    """Every job ``specs`` need, by name, each after the jobs it needs, split by split (the specs
    in their order within a split).

    Finished: a classifier whose pool selection is stored, a backbone whose network is stored,
    an alpha whose training record is stored, a run whose ``result.json`` is stored and not stale
    (``stale_reason``) -- each only when made with the inputs ``grid`` and ``data`` give now; a
    confidence-group run moreover only when its full LA run is finished on this grid. Jobs of a
    Table 7 subset of a split whose EIPs are not ranked yet (``data.rankings``) count as unfinished.
    """
    jobs: dict[str, GridJob] = {}

    def add(job: GridJob) -> str:
        jobs.setdefault(job.name, job)  # classifiers and backbones are shared by several runs
        return job.name

    def classifier(spec: RunSpec) -> str:
        key = data.key(spec.seed, spec.subset)
        folder = store.classifier_folder(spec.model, spec.subset, spec.seed)
        inputs = classifier_inputs(key, grid, spec.model, spec.seed) if key else None
        return add(GridJob(f"{spec.model} classifier[{spec.subset}] seed {spec.seed}", CLASSIFIER, spec,
                           finished=store.is_current(folder, inputs, SELECTION_FILE), folder=folder / CLASSIFIER_FIT))

    def backbone(spec: RunSpec) -> str:
        key = data.key(spec.seed, spec.subset)
        if key is None:  # the split's EIPs are not ranked yet: which backbone is not known
            return add(GridJob(f"{spec.model} pretrain[{spec.subset}] seed {spec.seed}", PRETRAIN, spec))
        folder = store.backbone_folder(spec.model, key.pool, key.eips)
        label = "all" if key.eips == data.keys[spec.seed].eips else f"{spec.subset} of split {spec.seed}"
        return add(GridJob(f"{spec.model} pretrain {folder.name} ({label})", PRETRAIN, spec,
                           finished=store.is_current(folder, backbone_inputs(key, grid, spec.model), BEST_MODEL_FILE),
                           folder=folder))

    def run(spec: RunSpec, needs: tuple[str, ...] = ()) -> str:
        key = data.key(spec.seed, spec.subset)
        record = store.result(spec)
        inputs = run_inputs(key, grid, spec) if key else None
        finished = record is not None and inputs is not None and stale_reason(store, record, spec, grid, inputs) is None
        if spec.group != "all":
            full = full_run(replace(spec, group="all"))
            needs += (full,)
            finished = finished and jobs[full].finished
        return add(GridJob(f"{spec.model} {spec.tag} seed {spec.seed}", RUN, spec, needs=needs, finished=finished,
                           folder=store.run_folder(spec)))

    def full_run(spec: RunSpec) -> str:
        """An LA / MP+LA run: one fit per alpha, then the choice."""
        needs = (classifier(spec),) + ((backbone(spec),) if spec.strategy == "mp+la" else ())
        key = data.key(spec.seed, spec.subset)
        fitted = tuple(add(GridJob(f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}", ALPHA, spec,
                                   alpha=float(alpha), needs=needs, folder=store.alpha_folder(spec, alpha),
                                   finished=key is not None and store.is_current(
                                       store.alpha_folder(spec, alpha), fit_inputs(key, grid, spec, alpha), RECORD_FILE)))
                       for alpha in grid.alphas)
        return run(spec, fitted)

    for spec in sorted(specs, key=lambda spec: spec.seed):  # stable: grid order within a split
        if spec.strategy in ("la", "mp+la") and spec.group == "all":
            full_run(spec)
        elif spec.strategy in ("mp", "delta+mp") and spec.group == "all":
            run(spec, (backbone(spec),))
        else:
            run(spec)
    return jobs


def needed(jobs: dict[str, GridJob]) -> dict[str, GridJob]:
    """The unfinished jobs that finishing every run requires, each after what it needs (the
    jobs of a finished run are not needed again, even if some were deleted)."""
    todo: dict[str, GridJob] = {}

    def need(name: str) -> None:
        job = jobs[name]
        if job.finished or name in todo:
            return
        for other in job.needs:
            need(other)
        todo[name] = job

    for name, job in jobs.items():
        if job.kind == RUN:
            need(name)
    return todo
