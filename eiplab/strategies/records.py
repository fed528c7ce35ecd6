"""Run records: every finished run's result read back from a grid folder, or from records
exported under ``reports/`` (``eiplab tables``), and the export itself."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .grid import RESULT_FILE, fit_folder


def collect_results(out: str | Path) -> pd.DataFrame:
    """Every finished run's result under ``out/runs`` (to rebuild tables from records)."""
    rows = [json.loads(p.read_text()) for p in sorted(Path(out).glob(f"runs/*/*/seed*/{RESULT_FILE}"))]
    return pd.DataFrame(rows)


def load_records(folder: str | Path) -> pd.DataFrame:
    """Run results from a grid folder (``runs/``) or from a folder of exported records
    (``<model>-<tag>-seed<k>.json``, as committed under ``reports/``)."""
    folder = Path(folder)
    if (folder / "runs").is_dir():
        return collect_results(folder)
    files = [f for f in sorted(folder.glob("*.json")) if not f.name.endswith(".run.json") and not f.name.startswith("classifier-")]
    if not files:
        raise FileNotFoundError(f"no run records in {folder}: expected a grid folder with runs/ or exported <model>-<tag>-seed<k>.json files")
    return pd.DataFrame([json.loads(f.read_text()) for f in files])


def export_records(grid_dir: str | Path, dest: str | Path, models: Sequence[str] | None = None) -> list[Path]:
    """Copy every finished run's result (and its training record, ``.run.json``; for LA runs the
    chosen alpha's) and every LA classifier summary from a grid folder into ``dest``."""
    grid_dir, dest = Path(grid_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for result in sorted(grid_dir.glob(f"runs/*/*/seed*/{RESULT_FILE}")):
        rec = json.loads(result.read_text())
        if models and rec["model"] not in models:
            continue
        stem = f"{rec['model']}-{rec['tag']}-seed{rec['seed']}"
        written.append(dest / f"{stem}.json")
        written[-1].write_text(result.read_text())
        run = fit_folder(result.parent, rec) / "run.json"
        if run.exists():
            written.append(dest / f"{stem}.run.json")
            written[-1].write_text(run.read_text())
    for clf in sorted(grid_dir.glob("la/*/*/seed*/classifier.json")):
        model, subset, seed = clf.parts[-4], clf.parts[-3], clf.parts[-2]
        if models and model not in models:
            continue
        written.append(dest / f"classifier-{model}-{subset}-{seed}.json")
        written[-1].write_text(clf.read_text())
    return written
