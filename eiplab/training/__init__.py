"""Training: one loop for every model and strategy, and the baseline recipe.

- :mod:`.settings`: ``TrainSettings``, the run profiles' settings, learning-rate schedules,
  device resolution and seeding.
- :mod:`.loop`: ``train(model, train_loader, val_loader, loss_fn, settings)`` -- Adam with a
  per-step schedule, gradient clipping, model selection on a validation metric, a checkpoint
  after every epoch (resumed automatically, same result as an uninterrupted run on CPU).
- :mod:`.evaluate`: energy MSE, predictions and config / atom MAE on loaders.
- :mod:`.records`: the history / run-record field names, the run's files and the JSON writer.
- :mod:`.energy`: the paper's A.4 recipe, ``fit_energy_model`` (per-species energy baseline,
  DFT targets), ``predict`` and the graphs a model needs.

Everything is importable from ``eiplab.training``.
"""

from .energy import FitResult, complete_config, fit_energy_model, model_inputs, predict
from .evaluate import (
    LossFn,
    MetricsFn,
    energy_force_loss,
    energy_force_metrics,
    energy_loader_metrics,
    energy_mse,
    force_loader_metrics,
    mean_loss,
    predict_loader,
    predicted_forces,
)
from .loop import Callback, TrainResult, compiled_for_training, train, training_step
from .prepare import check_prepared, fit_species_baseline, prepare_for_fit, species_counts
from .records import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILE,
    EPOCH,
    LR,
    RECORD_FILE,
    RUN_BASELINE,
    RUN_BEST_EPOCH,
    RUN_DATASET,
    RUN_DEVICE,
    RUN_GIT,
    RUN_HISTORY,
    RUN_METRICS,
    RUN_MODEL,
    RUN_N_TEST,
    RUN_N_TRAIN,
    RUN_N_VAL,
    RUN_SEED,
    RUN_SETTINGS,
    RUN_SPLIT,
    RUN_STRATEGY,
    RUN_TORCH,
    RUN_WALL_TIME,
    TEST_PREFIX,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_LOSS,
    VAL_MAE_ATOM,
    VAL_MAE_CONFIG,
    git_revision,
    write_run_record,
)
from .settings import (
    PROFILES,
    QUICK_MAX_CONFIGS,
    SCHEDULES,
    SELECT_MODES,
    TrainSettings,
    learning_rate_at,
    lr_factor,
    resolve_device,
    seed_everything,
    train_settings,
)

__all__ = [
    "BEST_MODEL_FILE", "CHECKPOINT_FILE", "EPOCH", "LR", "PROFILES", "QUICK_MAX_CONFIGS", "RECORD_FILE",
    "RUN_BASELINE", "RUN_BEST_EPOCH", "RUN_DATASET", "RUN_DEVICE", "RUN_GIT", "RUN_HISTORY", "RUN_METRICS",
    "RUN_MODEL", "RUN_N_TEST", "RUN_N_TRAIN", "RUN_N_VAL", "RUN_SEED", "RUN_SETTINGS", "RUN_SPLIT",
    "RUN_STRATEGY", "RUN_TORCH", "RUN_WALL_TIME", "SCHEDULES", "SELECT_MODES", "TEST_PREFIX", "TRAIN_LOSS",
    "VAL_ACCURACY", "VAL_LOSS", "VAL_MAE_ATOM", "VAL_MAE_CONFIG",
    "Callback", "FitResult", "LossFn", "MetricsFn", "TrainResult", "TrainSettings",
    "complete_config", "energy_force_loss", "energy_force_metrics", "energy_loader_metrics", "force_loader_metrics",
    "predicted_forces", "energy_mse", "fit_energy_model", "fit_species_baseline",
    "git_revision", "learning_rate_at", "lr_factor", "mean_loss", "model_inputs", "predict", "predict_loader",
    "check_prepared", "prepare_for_fit", "resolve_device", "seed_everything", "species_counts", "train", "train_settings",
    "compiled_for_training", "training_step",
    "write_run_record",
]
