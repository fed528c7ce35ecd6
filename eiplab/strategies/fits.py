"""A grid cut into fits: what each needs, and which are finished (read from the grid folder).

One decision, used by both the workers (``eiplab grid --workers N`` trains the fits still
needed) and the plan (``eiplab grid --plan`` lists every fit with its status and a time
estimate). A fit is an LA classifier with its pool selection, an MP backbone, one alpha of an
LA / MP+LA run, or a "run": a baseline / MP / confidence-group run, or an LA run's choice of
alpha on validation (which trains nothing itself and reuses its alpha fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..training import RECORD_FILE
from .grid import (
    RESULT_FILE,
    SELECTION_FILE,
    RunSpec,
    alpha_folder,
    backbone_folder,
    classifier_folder,
    read_record,
    run_folder,
    stale_reason,
)
from .pretrain import PRETRAINED_FILE

CLASSIFIER, PRETRAIN, ALPHA, RUN = "classifier", "pretrain", "alpha", "run"


@dataclass(frozen=True)
class GridTask:
    """One fit: ``kind`` is "classifier", "pretrain", "alpha" (one alpha of an LA / MP+LA run)
    or "run" (``run_one``: a whole baseline / MP / group run, or an LA run's choice).
    ``finished``: its result is in the grid folder and still matches the grid."""

    name: str
    kind: str
    spec: RunSpec
    alpha: float | None = None
    needs: tuple[str, ...] = ()
    finished: bool = False


def is_choice(task: GridTask) -> bool:
    """An LA / MP+LA run's choice of alpha: a "run" that trains nothing (its alphas do)."""
    return task.kind == RUN and task.spec.strategy in ("la", "mp+la") and task.spec.group == "all"


def grid_fits(specs: Sequence[RunSpec], alphas: Sequence[float], out: str | Path) -> dict[str, GridTask]:
    """Every fit ``specs`` need on this alpha grid, by name, each after the fits it needs,
    split by split (the specs in their order within a split): a split's confidence-group runs
    come right after its LA run's choice, before the next split's fits, so an interrupted grid
    leaves whole splits finished (the workers take the first ready fit in this order).

    Finished: a classifier whose pool selection is stored, a backbone whose pretrained network
    is stored, an alpha whose training record is stored, a run whose ``result.json`` is stored
    and not stale (``stale_reason``); a confidence-group run moreover only when its full LA run
    is finished on this grid (it follows that run's choice of alpha).
    """
    out = Path(out)
    fits: dict[str, GridTask] = {}

    def add(task: GridTask) -> str:
        fits.setdefault(task.name, task)  # classifiers and backbones are shared by several runs
        return task.name

    def classifier(spec: RunSpec) -> str:
        folder = classifier_folder(out, spec.model, spec.subset, spec.seed)
        return add(GridTask(f"{spec.model} classifier[{spec.subset}] seed {spec.seed}", CLASSIFIER, spec,
                            finished=(folder / SELECTION_FILE).exists()))

    def backbone(spec: RunSpec) -> str:
        folder = backbone_folder(out, spec.model, spec.subset)
        return add(GridTask(f"{spec.model} pretrain[{spec.subset}]", PRETRAIN, spec,
                            finished=(folder / PRETRAINED_FILE).exists()))

    def run(spec: RunSpec, needs: tuple[str, ...] = ()) -> str:
        record = read_record(run_folder(out, spec) / RESULT_FILE)
        finished = record is not None and stale_reason(record, spec, alphas, out) is None
        if spec.group != "all":
            full = full_run(replace(spec, group="all"))
            needs += (full,)
            finished = finished and fits[full].finished
        return add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed}", RUN, spec, needs=needs, finished=finished))

    def full_run(spec: RunSpec) -> str:
        """An LA / MP+LA run: one fit per alpha, then the choice."""
        needs = (classifier(spec),) + ((backbone(spec),) if spec.strategy == "mp+la" else ())
        folder = run_folder(out, spec)
        fitted = tuple(add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}", ALPHA, spec,
                                    alpha=float(alpha), needs=needs,
                                    finished=(alpha_folder(folder, alpha) / RECORD_FILE).exists()))
                       for alpha in alphas)
        return run(spec, fitted)

    for spec in sorted(specs, key=lambda spec: spec.seed):  # stable: grid order within a split
        if spec.strategy in ("la", "mp+la") and spec.group == "all":
            full_run(spec)
        elif spec.strategy == "mp" and spec.group == "all":
            run(spec, (backbone(spec),))
        else:
            run(spec)
    return fits


def needed(fits: dict[str, GridTask]) -> dict[str, GridTask]:
    """The unfinished fits that finishing every run requires, each after what it needs
    (the fits of a finished run are not needed again, even if some were deleted)."""
    todo: dict[str, GridTask] = {}

    def need(name: str) -> None:
        task = fits[name]
        if task.finished or name in todo:
            return
        for other in task.needs:
            need(other)
        todo[name] = task

    for name, task in fits.items():
        if task.kind == RUN:
            need(name)
    return todo
