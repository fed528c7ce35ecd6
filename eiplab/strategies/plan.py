"""What a grid command still has to train, and about how long it will take (``eiplab grid --plan``).

Reads only the grid folder (result and run records, epoch checkpoints): no data, no training.
One row per fit: a classifier, an MP backbone, a run's single fit, or one alpha of an LA / MP+LA
run. Time estimates use the seconds per epoch recorded by this grid folder itself: the fit's own
checkpoint when it was interrupted, else the median over finished fits of the same model and run
tag (so they assume the same machine, threads and load as those fits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..training import CHECKPOINT_FILE, RECORD_FILE
from .grid import (
    RESULT_FILE,
    SELECTION_FILE,
    RunSpec,
    alpha_folder,
    alphas_tried,
    backbone_folder,
    classifier_folder,
    run_folder,
    stale_reason,
)
from .pretrain import PRETRAINED_FILE

DONE, RESUMES, TO_DO, DEPENDS = "done", "resumes", "to do", "depends"
PLAN_COLUMNS = ["model", "run", "seed", "fit", "status", "epochs_done", "epochs_left", "estimate_s", "note"]


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _checkpoint_progress(folder: Path) -> tuple[int, float, bool] | None:
    """(epochs trained, wall seconds so far, stopped early) of an interrupted fit, or None."""
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        return None
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(state["epoch"]) + 1, float(state["wall_time_s"]), bool(state["stopped"])


def _seconds_per_epoch(out: Path) -> dict[tuple[str, str], float]:
    """Median wall seconds per epoch of the finished fits in ``out``, by (model, kind); kind is
    the run tag, "classifier" or "pretrain"."""
    rates: dict[tuple[str, str], list[float]] = {}

    def add(key: tuple[str, str], record_path: Path) -> None:
        record = _json(record_path)
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


def _fit_row(folder: Path, epochs: int, rate: float | None, finished: bool, **fields) -> dict:
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


def plan_grid(specs: Sequence[RunSpec], alphas: Sequence[float], epochs: int, out: str | Path) -> pd.DataFrame:
    """The fits that ``run_grid(specs, ...)`` with this alpha grid and ``epochs`` would train.

    Columns: model, run (tag), seed, fit ("classifier", "pretrain", "run" or "alpha <a>"),
    status ("done", "resumes", "to do"; "depends" for a confidence-group run whose full LA run
    has not yet chosen its alpha on this grid: redone only if that choice differs from the alpha
    it used), epochs_done, epochs_left, estimate_s (seconds; NaN when this folder holds no
    finished fit of that kind to time it by) and note.
    """
    out = Path(out)
    rates = _seconds_per_epoch(out)
    rows: list[dict] = []
    listed: set[tuple] = set()

    def prerequisite(model: str, subset: str, seed: int | None) -> None:
        key = (model, subset, seed)
        if key in listed:
            return
        listed.add(key)
        if seed is None:
            folder = backbone_folder(out, model, subset)
            rows.append(_fit_row(folder, epochs, rates.get((model, "pretrain")), (folder / PRETRAINED_FILE).exists(),
                                 model=model, run="pretrain" + ("" if subset == "all" else f"[{subset}]"), seed=None,
                                 fit="pretrain", note="MP backbone, shared by every split"))
        else:
            folder = classifier_folder(out, model, subset, seed)
            rows.append(_fit_row(folder / "classifier", epochs, rates.get((model, "classifier")),
                                 (folder / SELECTION_FILE).exists(), model=model,
                                 run="classifier" + ("" if subset == "all" else f"[{subset}]"), seed=seed,
                                 fit="classifier", note="LA classifier + pool selection"))

    grid_alphas = sorted(float(a) for a in alphas)
    for spec in specs:
        folder = run_folder(out, spec)
        base = {"model": spec.model, "run": spec.tag, "seed": spec.seed}
        rate = rates.get((spec.model, spec.tag))
        record = _json(folder / RESULT_FILE)
        # a group run is judged against the full run as it will be after this grid: only known
        # now when that full run is finished on this alpha grid
        full = None
        if spec.group != "all":
            full = _json(run_folder(out, replace(spec, group="all")) / RESULT_FILE)
            if full is not None and alphas_tried(full) != grid_alphas:
                full = None
        stale = stale_reason(record, spec, alphas, out) if record is not None else None
        if record is not None and stale is None and (spec.group == "all" or full is not None):
            rows.append({**base, "fit": "run", "status": DONE, "epochs_done": epochs, "epochs_left": 0,
                         "estimate_s": 0.0, "note": ""})
            continue
        if "la" in spec.strategy:
            prerequisite(spec.model, spec.subset, spec.seed)
        if "mp" in spec.strategy:
            prerequisite(spec.model, spec.subset, None)
        if spec.strategy in ("la", "mp+la") and spec.group == "all":
            for alpha in grid_alphas:
                sub = alpha_folder(folder, alpha)
                finished = (sub / RECORD_FILE).exists()
                note = ("finished fit reused; " if finished and stale else "") + (f"choice redone: {stale}" if stale else "")
                rows.append(_fit_row(sub, epochs, rate, finished, **base, fit=f"alpha {alpha:g}", note=note))
            continue
        note = f"redone: {stale}" if stale else ""
        if spec.group != "all":
            if full is None:  # its alpha is not known until the full LA run has chosen on this grid
                used = f"; used alpha {record['alpha']:g}" if record is not None else ""
                rows.append({**base, "fit": "run", "status": DEPENDS if record is not None else TO_DO,
                             "epochs_done": 0, "epochs_left": epochs,
                             "estimate_s": epochs * rate if rate is not None else float("nan"),
                             "note": f"uses the alpha the full LA run chooses on this grid{used}"})
                continue
            folder = alpha_folder(folder, full["alpha"])  # the group run's fit at the chosen alpha
        rows.append(_fit_row(folder, epochs, rate, spec.group != "all" and (folder / RECORD_FILE).exists(),
                             **base, fit="run", note=note))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def plan_summary(plan: pd.DataFrame) -> str:
    """One paragraph: fits left, epochs left and the estimated time (hours, one process)."""
    todo = plan[plan["status"] != DONE]
    if todo.empty:
        return "nothing to train: every fit of this grid is finished"
    maybe = todo["status"] == DEPENDS
    sure = todo[~maybe]
    known = sure["estimate_s"].notna()
    text = (f"{len(sure)} of {len(plan)} fits to train ({int(sure['epochs_left'].sum())} epochs); about "
            f"{sure.loc[known, 'estimate_s'].sum() / 3600:.1f} h in one process at the speed this folder recorded")
    if (~known).any():
        text += f", plus {int((~known).sum())} fit(s) of a kind not yet timed here"
    if maybe.any():
        text += (f"; {int(maybe.sum())} confidence-group fit(s) redone only if the full LA run's alpha changes "
                 f"(up to {todo.loc[maybe, 'estimate_s'].sum() / 3600:.1f} h more)")
    return text + "."
