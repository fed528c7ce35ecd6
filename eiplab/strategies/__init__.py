"""Strategies: label augmentation (classifier, selection, Tukey loss), multi-task pretraining,
MP+LA, and the experiment grid that runs them against the baseline."""

from .augment import ALPHA_GRID, AugmentedLoss, fit_augmented, select_alpha
from .classifier import class_names, select_pool, train_classifier
from .experiment import Experiment, label_with_eips, prepare_experiment
from .grid import (
    STRATEGIES,
    GridConfig,
    RunSpec,
    grid_from_profile,
    run_grid,
    specs_for,
)
from .labels import best_eip_labels
from .pretrain import for_finetuning, load_pretrained, masked_mse, pretrain
from .records import collect_results, export_records, load_records
from .subsets import SUBSETS, eip_subset, rank_eips
from .tukey import TUKEY_C, robust_scale, tukey_biweight

__all__ = [
    "ALPHA_GRID", "STRATEGIES", "SUBSETS", "TUKEY_C", "AugmentedLoss", "Experiment", "GridConfig",
    "RunSpec", "best_eip_labels", "class_names", "collect_results", "eip_subset", "export_records",
    "fit_augmented", "for_finetuning", "grid_from_profile", "label_with_eips", "load_pretrained",
    "load_records", "masked_mse", "prepare_experiment", "pretrain", "rank_eips", "robust_scale",
    "run_grid", "select_alpha", "select_pool", "specs_for", "train_classifier", "tukey_biweight",
]
