"""The run store: the one owner of a grid folder's layout on disk.

Layout under the root::

    pretrain/<model>/eips-<hash>/            MP backbone, keyed by the pool and EIP ids it was
                                             pretrained on (``made_with.json`` lists them)
    la/<model>/<subset>/seed<k>/             LA classifier (``classifier/``), its pool selection
                                             (``selection.csv``), its picks on the held-out test
                                             configs (``held_out_selection.csv``, Table 6 only),
                                             ``classifier.json``
    runs/<model>/<run tag>/seed<k>/          a run's ``result.json``; its fit (baseline / MP) or
                                             one fit per alpha in ``alpha_<a>/`` (LA, MP+LA and
                                             confidence-group runs)
    splits/seed<k>.json                      the split's EIP ranking on its TRAIN configs (Table 7)

Every stored result records what made it (``made_with.json``, :mod:`eiplab.provenance`) and is
reused only when a call's inputs match (:meth:`RunStore.is_current`); otherwise
:meth:`RunStore.claim` removes the stale files before it is redone. :meth:`RunStore.lock` keeps
two processes (two grid commands on one folder, or two workers) from training the same fit at
once. Tables and analyses read records through the store, never by spelling paths.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .. import keys
from ..atomic_io import write_text_atomic
from ..provenance import MADE_WITH_FILE, fingerprint, mismatch, write_made_with
from ..training.records import BEST_MODEL_FILE
from .spec import injected_eip_forces, la_strategy

if TYPE_CHECKING:
    from .spec import RunSpec

RESULT_FILE = "result.json"
RECORD_FILE = "run.json"  # the training loop's record (eiplab.training.RECORD_FILE)
SELECTION_FILE = "selection.csv"
HELD_OUT_SELECTION_FILE = "held_out_selection.csv"  # the classifier on the split's TEST configs: Table 6 only
CLASSIFIER_FILE = "classifier.json"
CLASSIFIER_FIT = "classifier"  # subfolder of a classifier folder holding its training
PRETRAINED_FILE = "pretrained.pt"
SCALER_FILE = "scaler.npz"
LOCK_FILE = ".lock"


def alpha_folder(folder: str | Path, alpha: float) -> Path:
    """The fit of one alpha inside an LA / MP+LA / confidence-group run folder."""
    return Path(folder) / f"alpha_{alpha:g}"


def read_json(path: Path) -> dict | None:
    """A JSON record, or None when absent."""
    return json.loads(path.read_text()) if path.exists() else None


class RunStore:
    """A grid folder (see the module docstring).

    Args:
        root: the folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # --- layout ----------------------------------------------------------------------------------
    def run_folder(self, spec: RunSpec) -> Path:
        """``runs/<model>/<tag>/seed<k>``: a run's result (and its fit, or one fit per alpha)."""
        return self.root / "runs" / spec.model / spec.tag / f"seed{spec.seed}"

    def alpha_folder(self, spec: RunSpec, alpha: float) -> Path:
        """``runs/<model>/<tag>/seed<k>/alpha_<a>``: one alpha's fit of a run."""
        return alpha_folder(self.run_folder(spec), alpha)

    def classifier_folder(self, model: str, subset: str, seed: int) -> Path:
        """``la/<model>/<subset>/seed<k>``: an LA classifier and its selections."""
        return self.root / "la" / model / subset / f"seed{seed}"

    def backbone_folder(self, model: str, pool: str, eips: Sequence[str]) -> Path:
        """``pretrain/<model>/eips-<hash>``: the MP backbone pretrained on a pool (its fingerprint)
        and EIPs, shared by every split and subset with the same pool and EIPs."""
        return self.root / "pretrain" / model / ("eips-" + fingerprint({"pool": pool, "eips": sorted(eips)})[:12])

    def ranking_file(self, seed: int) -> Path:
        """``splits/seed<k>.json``: a split's EIP ranking on its TRAIN configs."""
        return self.root / "splits" / f"seed{seed}.json"

    # --- provenance and locks --------------------------------------------------------------------
    @staticmethod
    def is_current(folder: Path, inputs: dict | None, done_file: str) -> bool:
        """True when ``folder`` holds a finished result (``done_file``) made with ``inputs``."""
        return inputs is not None and (folder / done_file).exists() and mismatch(folder, inputs) is None

    @staticmethod
    def claim(folder: Path, inputs: dict, what: str, log: Callable[[str], object] = print,
              subfolders: Sequence[str] = ()) -> None:
        """Make ``folder`` hold a result of ``inputs``: when it holds files made with other inputs
        (or of unknown inputs), remove them (and ``subfolders``) first, saying why; then record the
        inputs, so an interrupted fit resumes only from a checkpoint of the same inputs."""
        why = mismatch(folder, inputs)
        if why is None:
            return
        stale = [f for f in folder.iterdir() if f.is_file() and f.name != LOCK_FILE] if folder.is_dir() else []
        stale += [folder / name for name in subfolders if (folder / name).is_dir()]
        if any(f.name != MADE_WITH_FILE for f in stale):
            log(f"[grid] {what}: stored result made with other inputs ({why}); redoing it")
        for item in stale:
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        write_made_with(folder, inputs)

    @staticmethod
    @contextmanager
    def lock(folder: Path) -> Iterator[None]:
        """Hold ``folder``'s lock (waits while another process holds it): two grid commands or
        workers never train the same fit at once. (An OS file lock, released if the holder dies;
        on network file systems it is only as good as their locking.)"""
        from filelock import FileLock  # a dependency of torch

        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / LOCK_FILE)):
            yield

    # --- results ---------------------------------------------------------------------------------
    def result(self, spec: RunSpec) -> dict | None:
        """A run's result record, or None while the run is unfinished."""
        return read_json(self.run_folder(spec) / RESULT_FILE)

    def write_result(self, spec: RunSpec, record: dict) -> None:
        """Store a run's result record (atomically)."""
        write_text_atomic(self.run_folder(spec) / RESULT_FILE, json.dumps(record, indent=2, default=float))

    @staticmethod
    def fit_folder(folder: str | Path, record: dict) -> Path:
        """Where a finished run's training record and checkpoints are (``folder``: its run
        folder): ``alpha_<a>/`` for LA runs (group runs before that layout trained in the run
        folder itself)."""
        folder = Path(folder)
        if "alpha" in record and alpha_folder(folder, record["alpha"]).is_dir():
            return alpha_folder(folder, record["alpha"])
        return folder

    def result_files(self) -> list[Path]:
        """Every finished run's ``result.json``."""
        return sorted(self.root.glob(f"runs/*/*/seed*/{RESULT_FILE}"))

    def results(self) -> pd.DataFrame:
        """Every finished run's result, one row each (to rebuild tables from records)."""
        return pd.DataFrame([self.read_result(p) for p in self.result_files()])

    def read_result(self, path: Path) -> dict:
        """A ``result.json``; an LA run's record made before runs recorded their selector gets it
        from its classifier folder's inputs (named there when it is not the paper's classifier) --
        only when that folder still holds the selection the run was trained on (the run folder's
        ``selection`` fingerprint); otherwise the paper's classifier, which made every such run
        before a selector could be chosen."""
        path = Path(path)
        record = json.loads(path.read_text())
        if la_strategy(record) and keys.SELECTOR not in record:
            run_made = read_json(path.parent / MADE_WITH_FILE) or {}
            folder = self.classifier_folder(record["model"], record.get("subset", "all"), int(record["seed"]))
            made = read_json(folder / MADE_WITH_FILE)
            same = made is not None and run_made.get("selection") == fingerprint(made)
            record[keys.SELECTOR] = made.get(keys.SELECTOR, keys.DEFAULT_SELECTOR) if same else keys.DEFAULT_SELECTOR
        return record

    def finished_fit_folder(self, model: str, tag: str, seed: int) -> Path:
        """The folder of a finished run's fit (for LA runs: the chosen alpha's)."""
        folder = self.root / "runs" / model / tag / f"seed{seed}"
        record = read_json(folder / RESULT_FILE)
        return self.fit_folder(folder, record) if record is not None else folder

    def model_file(self, model: str, tag: str, seed: int) -> Path:
        """The trained network of a finished run (best validation checkpoint, ``model_best.pt``)."""
        path = self.finished_fit_folder(model, tag, seed) / BEST_MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(f"no trained network {path}: has {model} {tag} seed {seed} run in {self.root}?")
        return path

    def history(self, model: str, tag: str, seed: int) -> list[dict]:
        """Per-epoch history of a finished run (for LA runs: the chosen alpha's fit)."""
        path = self.finished_fit_folder(model, tag, seed) / RECORD_FILE
        if not path.exists():
            raise FileNotFoundError(f"no run record {path}: has {model} {tag} seed {seed} run?")
        return json.loads(path.read_text())["history"]

    def classifiers(self) -> pd.DataFrame:
        """The LA classifiers: validation accuracy, selected / pool configs, tau per model, subset, split."""
        rows = []
        for f in sorted(self.root.glob(f"la/*/*/seed*/{CLASSIFIER_FILE}")):
            d = json.loads(f.read_text())
            rows.append({"model": f.parts[-4], "subset": f.parts[-3], "seed": int(f.parts[-2][4:]),
                         "val_accuracy": d["val_accuracy"], "n_selected": d["n_selected"], "n_pool": d["n_pool"],
                         "tau": d.get("tau")})
        return pd.DataFrame(rows)

    def fit_records(self) -> Iterator[tuple[tuple[str, str], Path]]:
        """Every finished fit's training record with its kind: ((model, run tag / "classifier" /
        "pretrain"), path) -- for time estimates."""
        for path in self.root.glob(f"runs/*/*/seed*/{RECORD_FILE}"):
            yield (path.parts[-4], path.parts[-3]), path
        for path in self.root.glob(f"runs/*/*/seed*/alpha_*/{RECORD_FILE}"):
            yield (path.parts[-5], path.parts[-4]), path
        for path in self.root.glob(f"la/*/*/seed*/{CLASSIFIER_FIT}/{RECORD_FILE}"):
            yield (path.parts[-5], "classifier"), path
        for path in self.root.glob(f"pretrain/*/*/{RECORD_FILE}"):
            yield (path.parts[-3], "pretrain"), path

    def export(self, dest: str | Path, models: Sequence[str] | None = None) -> list[Path]:
        """Copy every finished run's result (and its training record, ``.run.json``; for LA runs
        the chosen alpha's) and every LA classifier summary into ``dest`` (for reports/)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        for result in self.result_files():
            rec = self.read_result(result)
            if models and rec["model"] not in models:
                continue
            eipf = "-eipf" if injected_eip_forces(rec) else ""  # beside the same runs without EIP forces
            stem = f"{rec['model']}-{rec['tag']}{eipf}-seed{rec['seed']}"
            target = dest / f"{stem}.json"
            if target.exists():  # another grid's record of this name: only the same kind of run may replace it
                old = json.loads(target.read_text())
                settings = [(float(r.get("force_weight", 0.0)), injected_eip_forces(r),
                             r.get(keys.SELECTOR, keys.DEFAULT_SELECTOR) if la_strategy(r) else None) for r in (old, rec)]
                if settings[0] != settings[1]:  # (force weight, EIP forces used, LA selector)
                    raise ValueError(f"{target} holds a run with force_weight, EIP forces, selector = {settings[0]}, "
                                     f"{result} has {settings[1]}: export runs of other settings to another folder")
            written.append(target)
            written[-1].write_text(json.dumps(rec, indent=2, default=float))
            run = self.fit_folder(result.parent, rec) / RECORD_FILE
            if run.exists():
                written.append(dest / f"{stem}.run.json")
                written[-1].write_text(run.read_text())
        for clf in sorted(self.root.glob(f"la/*/*/seed*/{CLASSIFIER_FILE}")):
            model, subset, seed = clf.parts[-4], clf.parts[-3], clf.parts[-2]
            if models and model not in models:
                continue
            written.append(dest / f"classifier-{model}-{subset}-{seed}.json")
            written[-1].write_text(clf.read_text())
        return written


def load_records(folder: str | Path) -> pd.DataFrame:
    """Run results from a grid folder (``runs/``) or from a folder of exported records
    (``<model>-<tag>-seed<k>.json``, as committed under ``reports/``)."""
    folder = Path(folder)
    if (folder / "runs").is_dir():
        return RunStore(folder).results()
    files = [f for f in sorted(folder.glob("*.json")) if not f.name.endswith(".run.json") and not f.name.startswith("classifier-")]
    if not files:
        raise FileNotFoundError(f"no run records in {folder}: expected a grid folder with runs/ or exported "
                                "<model>-<tag>-seed<k>.json files")
    records = [json.loads(f.read_text()) for f in files]
    for record in records:  # exported before runs named their selector: the classifier summary beside it does
        if la_strategy(record) and keys.SELECTOR not in record:
            summary = read_json(folder / f"classifier-{record['model']}-{record.get('subset', 'all')}-seed{record['seed']}.json")
            record[keys.SELECTOR] = (summary or {}).get(keys.SELECTOR, keys.DEFAULT_SELECTOR)
    return pd.DataFrame(records)


def store_of(grid_dir: str | Path | RunStore) -> RunStore:
    """A :class:`RunStore` for a folder (or the store itself)."""
    return grid_dir if isinstance(grid_dir, RunStore) else RunStore(grid_dir)


