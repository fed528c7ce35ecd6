"""Orchestration: the grid of fits as one job graph, the run store that owns every path on
disk, and the Dask engine (:mod:`eiplab.engine`) that runs the jobs -- in this process, on local
worker processes, or on a cluster. The method itself is in :mod:`eiplab.strategies`."""

from .graph import GridJob, grid_jobs, is_choice, needed
from .grid import GridWork, run_grid
from .inputs import GridData, SplitKey, grid_data
from .plan import plan_grid, plan_summary
from .probe import configs_per_epoch, probe_seconds_per_config
from .spec import (
    DELTA_STRATEGIES,
    STRATEGIES,
    GridConfig,
    RunSpec,
    dataset_tau,
    default_cutoff,
    grid_from_profile,
    specs_for,
)
from .steps import (
    alphas_tried,
    finish_run,
    fit_alpha,
    held_out_selection,
    pool_selection,
    pretrained_backbone,
)
from .store import RunStore, load_records, store_of

__all__ = [
    "DELTA_STRATEGIES", "STRATEGIES", "GridConfig", "GridData", "GridJob", "GridWork", "RunSpec", "RunStore",
    "SplitKey", "alphas_tried", "configs_per_epoch", "dataset_tau", "default_cutoff", "finish_run",
    "fit_alpha", "grid_data", "grid_from_profile", "grid_jobs", "held_out_selection", "is_choice",
    "load_records", "needed", "plan_grid", "plan_summary", "pool_selection", "pretrained_backbone",
    "probe_seconds_per_config", "run_grid", "specs_for", "store_of",
]
