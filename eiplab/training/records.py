"""The names of a run's history and record fields, its files, and the JSON record writer."""

from __future__ import annotations

import functools
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from eiplab import keys
from eiplab.atomic_io import write_text_atomic

# --- history / run-record fields ---------------------------------------------------------------
EPOCH = "epoch"
LR = "lr"  # learning rate at the start of the epoch
TRAIN_LOSS = "train_loss"  # mean training loss over the epoch's batches (config-weighted)
VAL_LOSS = "val_loss"
VAL_MAE_CONFIG = "val_" + keys.MAE_CONFIG  # eV
VAL_MAE_ATOM = "val_" + keys.MAE_ATOM  # eV/atom
VAL_ACCURACY = "val_accuracy"  # fraction, for classifiers (metrics_fn supplied by the caller)
TEST_PREFIX = "test_"
# run-record fields (run.json); ``run_info`` passed by callers should use these names
RUN_DATASET = "dataset"  # dataset name
RUN_SPLIT = "split"  # split id / seed / file
RUN_STRATEGY = "strategy"  # "baseline", "la", "mp", "mp+la", ...
RUN_MODEL = "model"  # ModelConfig as a dict
RUN_SETTINGS = "settings"  # TrainSettings as a dict
RUN_SEED = "seed"
RUN_DEVICE = "device"
RUN_BEST_EPOCH = "best_epoch"
RUN_METRICS = "metrics"  # best-epoch history entry, plus test_* metrics
RUN_HISTORY = "history"  # list of per-epoch entries
RUN_GIT = "git_revision"
RUN_TORCH = "torch_version"
RUN_WALL_TIME = "wall_time_s"  # seconds, summed over resumed sessions
RUN_BASELINE = "baseline_ev_per_atom"  # {Z: eV/atom}
RUN_FORCE_WEIGHT = "force_weight"  # weight of the force MSE in the loss (only when forces are trained)
RUN_N_TRAIN, RUN_N_VAL, RUN_N_TEST = "n_train", "n_val", "n_test"

CHECKPOINT_FILE = "checkpoint_last.pt"
BEST_MODEL_FILE = "model_best.pt"
RECORD_FILE = "run.json"


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the eiplab source tree when this process first asked, or None
    (read-only ``git rev-parse``). Cached: a long process reports the revision of the code it
    loaded, even if the tree is checked out at another commit while it trains."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_run_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a run record as JSON (NaN/inf become null), atomically: a grid's plan reads the
    records of fits that other worker processes are finishing."""
    return write_text_atomic(path, json.dumps(_json_ready(record), indent=2, sort_keys=True))
