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
    GridConfig,
    GridData,
    RunSpec,
    alpha_folder,
    backbone_folder,
    backbone_inputs,
    classifier_folder,
    classifier_inputs,
    fit_inputs,
    is_current,
    read_record,
    run_folder,
    run_inputs,
    stale_reason,
)
from .pretrain import PRETRAINED_FILE

CLASSIFIER, PRETRAIN, ALPHA, RUN = "classifier", "pretrain", "alpha", "run"


@dataclass(frozen=True)
class GridTask:
    """One fit: ``kind`` is "classifier", "pretrain", "alpha" (one alpha of an LA / MP+LA run)
    or "run" (``run_one``: a whole baseline / MP / group run, or an LA run's choice).
    ``finished``: its result is in the grid folder and was made with the grid's inputs.
    ``folder``: where it trains (its checkpoint), when known."""

    name: str
    kind: str
    spec: RunSpec
    alpha: float | None = None
    needs: tuple[str, ...] = ()
    finished: bool = False
    folder: Path | None = None


def is_choice(task: GridTask) -> bool:
    """An LA / MP+LA run's choice of alpha: a "run" that trains nothing (its alphas do)."""
    return task.kind == RUN and task.spec.strategy in ("la", "mp+la") and task.spec.group == "all"


def grid_fits(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path, data: GridData) -> dict[str, GridTask]:
    """Every fit ``specs`` need on the grid's alpha grid, by name, each after the fits it needs,
    split by split (the specs in their order within a split): a split's confidence-group runs
    come right after its LA run's choice, before the next split's fits, so an interrupted grid
    leaves whole splits finished (the workers take the first ready fit in this order).

    Finished: a classifier whose pool selection is stored, a backbone whose pretrained network
    is stored, an alpha whose training record is stored, a run whose ``result.json`` is stored
    and not stale (``stale_reason``) -- each only when made with the inputs ``grid`` and ``data``
    give now (``made_with.json``); a confidence-group run moreover only when its full LA run is
    finished on this grid (it follows that run's choice of alpha). Fits of a Table 7 subset of a
    split whose EIPs are not ranked yet (``data.rankings``) count as unfinished.
    """
    out = Path(out)
    alphas = grid.alphas
    fits: dict[str, GridTask] = {}

    def add(task: GridTask) -> str:
        fits.setdefault(task.name, task)  # classifiers and backbones are shared by several runs
        return task.name

    def classifier(spec: RunSpec) -> str:
        key = data.key(spec.seed, spec.subset)
        folder = classifier_folder(out, spec.model, spec.subset, spec.seed)
        inputs = classifier_inputs(key, grid, spec.model, spec.seed) if key else None
        return add(GridTask(f"{spec.model} classifier[{spec.subset}] seed {spec.seed}", CLASSIFIER, spec,
                            finished=is_current(folder, inputs, SELECTION_FILE), folder=folder / "classifier"))

    def backbone(spec: RunSpec) -> str:
        key = data.key(spec.seed, spec.subset)
        if key is None:  # the split's EIPs are not ranked yet: which backbone is not known
            return add(GridTask(f"{spec.model} pretrain[{spec.subset}] seed {spec.seed}", PRETRAIN, spec))
        folder = backbone_folder(out, spec.model, key)
        label = "all" if key.eips == data.keys[spec.seed].eips else f"{spec.subset} of split {spec.seed}"
        return add(GridTask(f"{spec.model} pretrain {folder.name} ({label})", PRETRAIN, spec,
                            finished=is_current(folder, backbone_inputs(key, grid, spec.model), PRETRAINED_FILE),
                            folder=folder))

    def run(spec: RunSpec, needs: tuple[str, ...] = ()) -> str:
        key = data.key(spec.seed, spec.subset)
        record = read_record(run_folder(out, spec) / RESULT_FILE)
        inputs = run_inputs(key, grid, spec) if key else None
        finished = record is not None and inputs is not None and stale_reason(record, spec, alphas, out, inputs) is None
        if spec.group != "all":
            full = full_run(replace(spec, group="all"))
            needs += (full,)
            finished = finished and fits[full].finished
        return add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed}", RUN, spec, needs=needs, finished=finished,
                            folder=run_folder(out, spec)))

    def full_run(spec: RunSpec) -> str:
        """An LA / MP+LA run: one fit per alpha, then the choice."""
        needs = (classifier(spec),) + ((backbone(spec),) if spec.strategy == "mp+la" else ())
        folder = run_folder(out, spec)
        key = data.key(spec.seed, spec.subset)
        fitted = tuple(add(GridTask(f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}", ALPHA, spec,
                                    alpha=float(alpha), needs=needs, folder=alpha_folder(folder, alpha),
                                    finished=key is not None and is_current(
                                        alpha_folder(folder, alpha), fit_inputs(key, grid, spec, alpha), RECORD_FILE)))
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
