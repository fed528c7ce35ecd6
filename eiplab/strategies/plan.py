"""What a grid command still has to train, and about how long it will take (``eiplab grid --plan``).

Reads only the grid folder (result and run records, epoch checkpoints): no data, no training.
One row per fit of :func:`eiplab.strategies.fits.grid_fits` (the same fits, finished or not,
that the workers of ``eiplab grid --workers N`` train): a classifier, an MP backbone, a run's
single fit, or one alpha of an LA / MP+LA run. Time estimates use the seconds per epoch
recorded by this grid folder itself: the fit's own checkpoint when it was interrupted, else the
median over finished fits of the same model and run tag (so they assume the same machine,
threads and load as those fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..training import CHECKPOINT_FILE, RECORD_FILE
from .fits import (
    ALPHA,
    CLASSIFIER,
    PRETRAIN,
    RUN,
    GridTask,
    grid_fits,
    is_choice,
    needed,
)
from .grid import (
    RESULT_FILE,
    GridConfig,
    GridData,
    RunSpec,
    alpha_folder,
    fit_inputs,
    is_current,
    read_record,
    run_folder,
    run_inputs,
    stale_reason,
)

DONE, RESUMES, TO_DO, DEPENDS, NOT_NEEDED = "done", "resumes", "to do", "depends", "not needed"
PLAN_COLUMNS = ["model", "run", "seed", "fit", "status", "epochs_done", "epochs_left", "estimate_s", "note", "name",
                "needs"]


def _checkpoint_progress(folder: Path | None) -> tuple[int, float, bool] | None:
    """(epochs trained, wall seconds so far, stopped early) of an interrupted fit, or None."""
    path = folder / CHECKPOINT_FILE if folder is not None else None
    if path is None or not path.exists():
        return None
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(state["epoch"]) + 1, float(state["wall_time_s"]), bool(state["stopped"])


def _seconds_per_epoch(out: Path) -> dict[tuple[str, str], float]:
    """Median wall seconds per epoch of the finished fits in ``out``, by (model, kind); kind is
    the run tag, "classifier" or "pretrain"."""
    rates: dict[tuple[str, str], list[float]] = {}

    def add(key: tuple[str, str], record_path: Path) -> None:
        record = read_record(record_path)
        epochs = len(record.get("history", [])) if record else 0
        if epochs:
            rates.setdefault(key, []).append(float(record["wall_time_s"]) / epochs)

    for path in out.glob(f"runs/*/*/seed*/{RECORD_FILE}"):
        add((path.parts[-4], path.parts[-3]), path)
    for path in out.glob(f"runs/*/*/seed*/alpha_*/{RECORD_FILE}"):
        add((path.parts[-5], path.parts[-4]), path)
    for path in out.glob(f"la/*/*/seed*/classifier/{RECORD_FILE}"):
        add((path.parts[-5], "classifier"), path)
    for path in out.glob(f"pretrain/*/*/{RECORD_FILE}"):
        add((path.parts[-3], "pretrain"), path)
    return {key: float(pd.Series(values).median()) for key, values in rates.items()}


def _fit_row(folder: Path | None, epochs: int, rate: float | None, finished: bool, **fields) -> dict:
    """One fit's row: done, resumes from its checkpoint, or to do (with a time estimate)."""
    if finished:
        return {**fields, "status": DONE, "epochs_done": epochs, "epochs_left": 0, "estimate_s": 0.0}
    progress = _checkpoint_progress(folder)
    done, wall, stopped = progress if progress else (0, 0.0, False)
    left = 0 if stopped else max(epochs - done, 0)
    if done:
        rate = wall / done
    return {**fields, "status": RESUMES if done else TO_DO, "epochs_done": done, "epochs_left": left,
            "estimate_s": left * rate if rate is not None else float("nan")}


def _stale(spec: RunSpec, grid: GridConfig, out: Path, data: GridData) -> str | None:
    record = read_record(run_folder(out, spec) / RESULT_FILE)
    key = data.key(spec.seed, spec.subset)
    if record is None or key is None:
        return None
    return stale_reason(record, spec, grid.alphas, out, run_inputs(key, grid, spec))


def _label(task: GridTask) -> str:
    """The plan's "run" column: the run tag, or classifier / pretrain with its EIP subset."""
    spec = task.spec
    if task.kind in (CLASSIFIER, PRETRAIN):
        return task.kind + ("" if spec.subset == "all" else f"[{spec.subset}]")
    return spec.tag


def plan_grid(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path, data: GridData) -> pd.DataFrame:
    """The fits that ``run_grid(specs, ...)`` with ``grid`` (its alpha grid and epochs) would train.

    One row per fit of :func:`eiplab.strategies.fits.grid_fits` (an LA run's choice of alpha
    trains nothing and has no row). Columns: model, run (tag), seed, fit ("classifier",
    "pretrain", "run" or "alpha <a>"), status ("done", "resumes", "to do"; "depends" for a
    confidence-group run whose full LA run has not yet chosen its alpha on this grid: redone only
    if that choice differs from the alpha it used; "not needed" for an unfinished fit of a
    finished run), epochs_done, epochs_left, estimate_s (seconds; NaN when this folder holds no
    finished fit of that kind to time it by), note, name (the fit's name, as the workers log it)
    and needs (the names of the fits it waits for).
    """
    out = Path(out)
    epochs = grid.train.epochs
    rates = _seconds_per_epoch(out)
    fits = grid_fits(specs, grid, out, data)
    todo = needed(fits)
    rows: list[dict] = []
    for name, task in fits.items():
        if is_choice(task):
            continue
        spec = task.spec
        needs = tuple(m for n in task.needs for m in (fits[n].needs if is_choice(fits[n]) else (n,)))
        base = {"model": spec.model, "run": _label(task), "seed": None if task.kind == PRETRAIN else spec.seed,
                "name": name, "needs": needs}
        if not task.finished and name not in todo:
            fit = f"alpha {task.alpha:g}" if task.kind == ALPHA else task.kind
            rows.append({**base, "fit": fit, "status": NOT_NEEDED, "epochs_done": 0, "epochs_left": 0,
                         "estimate_s": 0.0, "note": "its run is finished"})
            continue
        if task.kind == CLASSIFIER:
            rows.append(_fit_row(task.folder, epochs, rates.get((spec.model, CLASSIFIER)), task.finished, **base,
                                 fit=CLASSIFIER, note="LA classifier + pool selection"))
            continue
        if task.kind == PRETRAIN:
            note = ("MP backbone, shared by every split with the same pool and EIPs" if task.folder is not None
                    else "MP backbone of EIPs ranked on the split's training data (not ranked yet)")
            rows.append(_fit_row(task.folder, epochs, rates.get((spec.model, PRETRAIN)), task.finished, **base,
                                 fit=PRETRAIN, note=note))
            continue
        rate = rates.get((spec.model, spec.tag))
        stale = _stale(spec, grid, out, data)
        folder = run_folder(out, spec)
        if task.kind == ALPHA:
            note = ("finished fit reused; " if task.finished and stale else "") + (f"choice redone: {stale}" if stale else "")
            rows.append(_fit_row(alpha_folder(folder, task.alpha), epochs, rate, task.finished, **base,
                                 fit=f"alpha {task.alpha:g}", note=note))
            continue
        if task.finished:
            rows.append(_fit_row(folder, epochs, rate, True, **base, fit=RUN, note=""))
            continue
        finished_fit = False
        if spec.group != "all":  # a group run trains at the alpha its full LA run chose
            full = fits[task.needs[-1]]
            if not full.finished:  # not known until the full LA run has chosen on this grid
                record = read_record(folder / RESULT_FILE)
                used = f"; used alpha {record['alpha']:g}" if record is not None else ""
                rows.append({**base, "fit": RUN, "status": DEPENDS if record is not None else TO_DO,
                             "epochs_done": 0, "epochs_left": epochs,
                             "estimate_s": epochs * rate if rate is not None else float("nan"),
                             "note": f"uses the alpha the full LA run chooses on this grid{used}"})
                continue
            chosen = read_record(run_folder(out, full.spec) / RESULT_FILE)["alpha"]
            folder = alpha_folder(folder, chosen)
            key = data.key(spec.seed, spec.subset)
            # trained with these inputs; only its result is to be written
            finished_fit = key is not None and is_current(folder, fit_inputs(key, grid, spec, chosen), RECORD_FILE)
        rows.append(_fit_row(folder, epochs, rate, finished_fit, **base, fit=RUN,
                             note=f"redone: {stale}" if stale else ""))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def wall_estimate_s(plan: pd.DataFrame, workers: int) -> float:
    """Seconds until every fit that is surely to train (resumes / to do) is done on ``workers``
    processes: each fit, in plan order, goes to the first free worker once the fits it needs are
    done (as ``eiplab grid --workers`` schedules them), taking its estimated time (a fit not yet
    timed counts 0). Assumes each worker keeps the speed the folder recorded."""
    todo = plan[plan["status"].isin([RESUMES, TO_DO])]
    duration = dict(zip(todo["name"], todo["estimate_s"].fillna(0.0), strict=True))
    free = [0.0] * max(workers, 1)
    finish: dict[str, float] = {}
    for name, needs in zip(todo["name"], todo["needs"], strict=True):
        ready = max((finish[m] for m in needs if m in finish), default=0.0)
        worker = min(range(len(free)), key=free.__getitem__)
        finish[name] = max(free[worker], ready) + duration[name]
        free[worker] = finish[name]
    return max(finish.values(), default=0.0)


def plan_summary(plan: pd.DataFrame, workers: int = 1) -> str:
    """One paragraph: fits left, epochs left and the estimated time (hours, one process; and on
    ``workers`` processes when more than one)."""
    todo = plan[~plan["status"].isin([DONE, NOT_NEEDED])]
    if todo.empty:
        return "nothing to train: every fit of this grid is finished"
    maybe = todo["status"] == DEPENDS
    sure = todo[~maybe]
    known = sure["estimate_s"].notna()
    text = (f"{len(sure)} of {len(plan)} fits to train ({int(sure['epochs_left'].sum())} epochs); about "
            f"{sure.loc[known, 'estimate_s'].sum() / 3600:.1f} h in one process at the speed this folder recorded")
    if workers > 1:
        text += f" (about {wall_estimate_s(plan, workers) / 3600:.1f} h on {workers} workers)"
    if (~known).any():
        text += f", plus {int((~known).sum())} fit(s) of a kind not yet timed here"
    if maybe.any():
        text += (f"; {int(maybe.sum())} confidence-group fit(s) redone only if the full LA run's alpha changes "
                 f"(up to {todo.loc[maybe, 'estimate_s'].sum() / 3600:.1f} h more)")
    return text + "."


def time_left(plan: pd.DataFrame, workers: int = 1) -> str:
    """One line for a running grid's log: fits left and the estimated wall time on ``workers``
    processes (hours, at the speed this folder recorded; group runs waiting for an LA run's
    choice counted apart)."""
    sure = plan[plan["status"].isin([RESUMES, TO_DO])]
    maybe = plan[plan["status"] == DEPENDS]
    if sure.empty and maybe.empty:
        return "nothing left to train"
    timed = sure["estimate_s"].notna()
    if sure.empty:  # only group runs waiting for an LA choice (which trains nothing)
        text = "no fit surely left"
    elif not timed.any():
        text = f"{len(sure)} fit(s) left (no time estimate until a fit of each kind has finished in this folder)"
    else:
        text = f"{len(sure)} fit(s) left, about {wall_estimate_s(plan, workers) / 3600:.1f} h on {workers} worker(s)"
        if not timed.all():
            text += f" plus {int((~timed).sum())} fit(s) of a kind not yet timed here"
    if not maybe.empty:
        text += f"; {len(maybe)} group run(s) more if an LA run's alpha changes"
    return text
