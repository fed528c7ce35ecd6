"""What a grid command still has to train, and about how long it will take (``eiplab grid --plan``).

Reads only the grid folder (records, epoch checkpoints) and the splits: no labelling, no
training. One row per job of :func:`eiplab.workflows.graph.grid_jobs` -- the same jobs, finished
or not, that ``run_grid`` runs: a classifier, an MP backbone, a run's single fit, or one alpha of
an LA / MP+LA run. Time estimates use the seconds per epoch recorded by this grid folder itself:
the fit's own checkpoint when it was interrupted, else the median over finished fits of the same
model and run tag, else of a run kind that trains on the same configs (:data:`SAME_COST_AS`, named
in the row's note) -- so they assume the same machine, threads and load as those fits. A kind
the folder never timed is timed, when the caller gives a ``probe``, by a few training steps
measured now (:mod:`eiplab.workflows.probe`; the note says so). On N workers the wall time is
roughly the total divided by N (Dask's dashboard shows the real one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..training import CHECKPOINT_FILE, RECORD_FILE
from .graph import ALPHA, CLASSIFIER, PRETRAIN, RUN, GridJob, grid_jobs, is_choice, needed
from .inputs import GridData, fit_inputs, run_inputs
from .probe import PROBE_NOTE, configs_per_epoch
from .spec import GridConfig, RunSpec
from .steps import stale_reason
from .store import RunStore, read_json

DONE, RESUMES, TO_DO, DEPENDS, NOT_NEEDED = "done", "resumes", "to do", "depends", "not needed"
#: A run kind never timed in the folder is timed by one that trains on the same configs per epoch:
#: an MP / delta fine-tune like the baseline (the DFT training configs), MP+LA like LA (DFT + the
#: selected pool configs), and the other way round.
SAME_COST_AS = {"mp": ("baseline",), "delta": ("baseline", "mp"), "delta+mp": ("baseline", "mp"),
                "baseline": ("mp",), "mp+la": ("la",), "la": ("mp+la",)}
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


def _seconds_per_epoch(store: RunStore) -> dict[tuple[str, str], float]:
    """Median wall seconds per epoch of the finished fits in the store, by (model, kind); kind is
    the run tag, "classifier" or "pretrain"."""
    rates: dict[tuple[str, str], list[float]] = {}
    for key, path in store.fit_records():
        record = read_json(path)
        epochs = len(record.get("history", [])) if record else 0
        if epochs:
            rates.setdefault(key, []).append(float(record["wall_time_s"]) / epochs)
    return {key: float(pd.Series(values).median()) for key, values in rates.items()}


def _fit_row(folder: Path | None, epochs: int, rate: float | None, finished: bool, timed_by: str = "",
             **fields) -> dict:
    """One fit's row: done, resumes from its checkpoint (timed by it), or to do (with a time
    estimate; ``timed_by`` is added to the note when the rate is another run kind's)."""
    if finished:
        return {**fields, "status": DONE, "epochs_done": epochs, "epochs_left": 0, "estimate_s": 0.0}
    progress = _checkpoint_progress(folder)
    done, wall, stopped = progress if progress else (0, 0.0, False)
    left = 0 if stopped else max(epochs - done, 0)
    if done:
        rate = wall / done
    elif timed_by:
        fields["note"] = "; ".join(n for n in (fields.get("note", ""), timed_by) if n)
    return {**fields, "status": RESUMES if done else TO_DO, "epochs_done": done, "epochs_left": left,
            "estimate_s": left * rate if rate is not None else float("nan")}


def _stale(spec: RunSpec, grid: GridConfig, store: RunStore, data: GridData) -> str | None:
    record = store.result(spec)
    key = data.key(spec.seed, spec.subset)
    if record is None or key is None:
        return None
    return stale_reason(store, record, spec, grid, run_inputs(key, grid, spec))


def _label(job: GridJob) -> str:
    """The plan's "run" column: the run tag, or classifier / pretrain with its EIP subset."""
    spec = job.spec
    if job.kind in (CLASSIFIER, PRETRAIN):
        return job.kind + ("" if spec.subset == "all" else f"[{spec.subset}]")
    return spec.tag


def plan_grid(specs: Sequence[RunSpec], grid: GridConfig, out: str | Path | RunStore, data: GridData, *,
              probe: Callable[[str], float] | None = None,
              sizes: Mapping[int, Mapping[str, int]] | None = None) -> pd.DataFrame:
    """The fits that ``run_grid(specs, ...)`` with ``grid`` (its alpha grid and epochs) would train.

    ``probe(model)`` (seconds per config of one training step, e.g.
    :func:`eiplab.workflows.probe.probe_seconds_per_config`) and ``sizes`` (per split seed, its
    configs per split part) time the fits of a kind this folder never timed; ``probe`` is called
    only for such fits (the caller caches it per model).

    One row per job of :func:`eiplab.workflows.graph.grid_jobs` (an LA run's choice of alpha
    trains nothing and has no row). Columns: model, run (tag), seed, fit ("classifier",
    "pretrain", "run" or "alpha <a>"), status ("done", "resumes", "to do"; "depends" for a
    confidence-group run whose full LA run has not yet chosen its alpha on this grid: redone only
    if that choice differs from the alpha it used; "not needed" for an unfinished fit of a
    finished run), epochs_done, epochs_left, estimate_s (seconds; NaN when this folder holds no
    finished fit of that kind to time it by, and no probe), note, name (the fit's name, as the
    workers log it) and needs (the names of the fits it waits for).
    """
    store = out if isinstance(out, RunStore) else RunStore(out)
    epochs = grid.train.epochs
    rates = _seconds_per_epoch(store)
    fits = grid_jobs(specs, grid, store, data)
    todo = needed(fits)
    rows: list[dict] = []

    def probed(spec: RunSpec, kind: str, rate: float | None, timed_by: str = "") -> tuple[float | None, str]:
        """The recorded rate, else the probe's (seconds per epoch) with the note saying so."""
        if rate is not None or probe is None or sizes is None or spec.seed not in sizes:
            return rate, timed_by
        return probe(spec.model) * configs_per_epoch(spec.strategy, kind, sizes[spec.seed]), PROBE_NOTE

    for name, job in fits.items():
        if is_choice(job):
            continue
        spec = job.spec
        needs = tuple(m for n in job.needs for m in (fits[n].needs if is_choice(fits[n]) else (n,)))
        base = {"model": spec.model, "run": _label(job), "seed": None if job.kind == PRETRAIN else spec.seed,
                "name": name, "needs": needs}
        if not job.finished and name not in todo:
            fit = f"alpha {job.alpha:g}" if job.kind == ALPHA else job.kind
            rows.append({**base, "fit": fit, "status": NOT_NEEDED, "epochs_done": 0, "epochs_left": 0,
                         "estimate_s": 0.0, "note": "its run is finished"})
            continue
        if job.kind in (CLASSIFIER, PRETRAIN):
            if job.kind == CLASSIFIER:
                note = "LA classifier + pool selection"
            elif job.folder is not None:
                note = "MP backbone, shared by every split with the same pool and EIPs"
            else:
                note = "MP backbone of EIPs ranked on the split's training data (not ranked yet)"
            rate, timed_by = (None, "") if job.finished else probed(spec, job.kind, rates.get((spec.model, job.kind)))
            rows.append(_fit_row(job.folder, epochs, rate, job.finished, timed_by, **base, fit=job.kind, note=note))
            continue
        rate, timed_by = rates.get((spec.model, spec.tag)), ""
        if rate is None and spec.tag == spec.strategy:  # not for groups and ablations: their data differ
            like = [k for k in SAME_COST_AS.get(spec.strategy, ()) if (spec.model, k) in rates]
            if like:
                rate, timed_by = rates[(spec.model, like[0])], f"timed like the {like[0]} fits"
        if not job.finished:
            rate, timed_by = probed(spec, RUN, rate, timed_by)
        stale = _stale(spec, grid, store, data)
        folder = store.run_folder(spec)
        if job.kind == ALPHA:
            note = ("finished fit reused; " if job.finished and stale else "") + (f"choice redone: {stale}" if stale else "")
            rows.append(_fit_row(job.folder, epochs, rate, job.finished, timed_by, **base,
                                 fit=f"alpha {job.alpha:g}", note=note))
            continue
        if job.finished:
            rows.append(_fit_row(folder, epochs, rate, True, **base, fit=RUN, note=""))
            continue
        finished_fit = False
        if spec.group != "all":  # a group run trains at the alpha its full LA run chose
            full = fits[job.needs[-1]]
            if not full.finished:  # not known until the full LA run has chosen on this grid
                record = store.result(spec)
                used = f"; used alpha {record['alpha']:g}" if record is not None else ""
                rows.append({**base, "fit": RUN, "status": DEPENDS if record is not None else TO_DO,
                             "epochs_done": 0, "epochs_left": epochs,
                             "estimate_s": epochs * rate if rate is not None else float("nan"),
                             "note": f"uses the alpha the full LA run chooses on this grid{used}"})
                continue
            chosen = store.result(full.spec)["alpha"]
            folder = store.alpha_folder(spec, chosen)
            key = data.key(spec.seed, spec.subset)
            # trained with these inputs; only its result is to be written
            finished_fit = key is not None and store.is_current(folder, fit_inputs(key, grid, spec, chosen), RECORD_FILE)
        rows.append(_fit_row(folder, epochs, rate, finished_fit, timed_by, **base, fit=RUN,
                             note=f"redone: {stale}" if stale else ""))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def plan_summary(plan: pd.DataFrame) -> str:
    """One paragraph: fits left, epochs left and the estimated time (hours, in one process)."""
    todo = plan[~plan["status"].isin([DONE, NOT_NEEDED])]
    if todo.empty:
        return "nothing to train: every fit of this grid is finished"
    maybe = todo["status"] == DEPENDS
    sure = todo[~maybe]
    known = sure["estimate_s"].notna()
    probed = sure["note"].fillna("").str.contains(PROBE_NOTE, regex=False) & (sure["status"] == TO_DO)
    text = (f"{len(sure)} of {len(plan)} fits to train ({int(sure['epochs_left'].sum())} epochs); about "
            f"{sure.loc[known, 'estimate_s'].sum() / 3600:.1f} h in one process at the speed this folder recorded")
    if probed.any():
        text += (f" ({int(probed.sum())} fit(s) of kinds it never timed: by a probe of a few training steps on "
                 f"this machine now, LA fits with the whole pool -- an upper bound)")
    if (~known).any():
        text += f", plus {int((~known).sum())} fit(s) of a kind not yet timed here"
    if maybe.any():
        text += (f"; {int(maybe.sum())} confidence-group fit(s) redone only if the full LA run's alpha changes "
                 f"(up to {todo.loc[maybe, 'estimate_s'].sum() / 3600:.1f} h more)")
    return text + "."
