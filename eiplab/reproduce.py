"""Run the notebooks headless with papermill (the README's main job).

Every notebook in ``notebooks/`` (found by glob, in name order) is executed with the parameters
``dataset``, ``profile``, ``out_dir`` and ``device`` (and ``workers`` where a notebook declares it:
the training notebooks); executed copies go to ``<out>/`` and each
notebook writes its tables (CSV + HTML) and static figures under ``<out>/<notebook stem>/``.
A notebook whose executed copy is newer than the source and the package is skipped on a
re-run (resumable); ``force=True`` re-runs everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .profiles import get_profile

#: Seconds one notebook cell may run before it counts as hung, per profile; the long profiles
#: (cpu, paper) train for hours in one cell, so they get no limit.
CELL_TIMEOUT_S: dict[str, float | None] = {"quick": 900.0, "demo": 1800.0, "cpu": None, "paper": None}


def notebooks_dir() -> Path:
    """The repository's notebooks folder (eiplab is installed editable from the repository)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def find_notebooks(folder: Path | None = None, pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """Notebooks to run, in name order."""
    folder = folder or notebooks_dir()
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no notebooks matching {pattern!r} in {folder}")
    return found


def _newest_source_mtime() -> float:
    pkg = Path(__file__).resolve().parent
    return max(p.stat().st_mtime for p in pkg.rglob("*.py"))


def _execute(nb: Path, target: Path, params: dict, kernel_name: str, cell_timeout: float | None,
             log: Callable[[str], object]) -> None:
    """Execute one notebook with papermill; a cell timeout is retried once (see the module doc)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    for attempt in (1, 2):
        try:
            pm.execute_notebook(str(nb), str(target), parameters=params, kernel_name=kernel_name, cwd=str(nb.parent),
                                progress_bar=False, execution_timeout=cell_timeout)
            return
        except CellTimeoutError as err:
            if attempt == 2:
                raise RuntimeError(f"{nb.name}: a cell gave no reply within {cell_timeout:.0f} s twice (executed copy: "
                                   f"{target}); run it in JupyterLab to see which cell hangs, or pass a larger "
                                   "cell_timeout (None: no limit)") from err
            log(f"[reproduce] {nb.name}: a cell gave no reply within {cell_timeout:.0f} s; running the notebook again")


def run_notebooks(
    dataset: str,
    profile: str,
    out: str | Path = "results",
    device: str = "auto",
    only: list[str] | None = None,
    force: bool = False,
    kernel_name: str = "python3",
    workers: int | None = None,
    scheduler: str | None = None,
    log: Callable[[str], object] = print,
    cell_timeout: float | None | str = "profile",
    folder: Path | None = None,
) -> list[Path]:
    """Execute the notebooks headless; return the executed notebook paths.

    ``workers``: local Dask worker processes that train fits side by side in the notebooks that
    take it (default: the profile's ``n_jobs``, i.e. one per core on the 2-core machines the
    profiles target); ``scheduler``: an existing Dask cluster for them instead.
    ``cell_timeout``: seconds a cell may run before the notebook is retried once (``"profile"``:
    :data:`CELL_TIMEOUT_S`; ``None``: no limit). ``folder``: notebooks folder (default: the
    repository's ``notebooks/``).
    """
    import papermill as pm

    prof = get_profile(profile)  # fail early on a bad name
    if cell_timeout == "profile":
        cell_timeout = CELL_TIMEOUT_S.get(profile)
    workers = prof.n_jobs if workers is None else workers
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    pkg_mtime = _newest_source_mtime()
    for nb in find_notebooks(folder):
        if only and not any(key in nb.stem for key in only):
            continue
        target = out / f"{nb.stem}-{dataset}-{profile}.ipynb"
        stamp = target.with_suffix(".done")
        if not force and stamp.exists() and stamp.stat().st_mtime > max(nb.stat().st_mtime, pkg_mtime):
            log(f"[reproduce] {nb.name}: up to date ({target}), skipped")
            done.append(target)
            continue
        params = {"dataset": dataset, "profile": profile, "out_dir": str(out / f"{nb.stem}-{dataset}-{profile}"), "device": device}
        declared = pm.inspect_notebook(str(nb))
        if "workers" in declared:
            params["workers"] = workers
        if scheduler is not None and "scheduler" in declared:
            params["scheduler"] = scheduler
        log(f"[reproduce] {nb.name} -> {target} with {params}")
        t0 = time.perf_counter()
        _execute(nb, target, params, kernel_name, cell_timeout, log)
        stamp.write_text(f"{time.perf_counter() - t0:.1f} s\n")
        log(f"[reproduce] {nb.name}: done in {time.perf_counter() - t0:.0f} s")
        done.append(target)
    return done
