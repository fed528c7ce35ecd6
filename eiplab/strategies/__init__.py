"""Strategies, the method only: label augmentation (classifier, selection, Tukey loss, LA
training), multi-task pretraining, MP+LA, delta-learning on an EIP, confidence groups and EIP subsets -- functions of data
and settings, with no folders and no processes (orchestration is in :mod:`eiplab.workflows`)."""

from .augment import ALPHA_GRID, AugmentedLoss, alpha_table, fit_augmented
from .classifier import class_names, resolve_tau, select_pool, train_classifier
from .confidence import CONFIDENCE_GROUPS, confidence_groups
from .delta import DELTA_EIP, delta_breakdown, delta_configs, delta_eip, delta_parts
from .error_selector import SELECTORS, eip_errors, select_by_error, train_error_regressor
from .experiment import Experiment, label_with_eips, prepare_experiment
from .labels import auto_tau, best_eip_labels
from .pretrain import for_finetuning, masked_mse, pretrain
from .subsets import SUBSETS, eip_subset, rank_eips
from .tukey import TUKEY_C, robust_scale, tukey_biweight

__all__ = [
    "ALPHA_GRID", "CONFIDENCE_GROUPS", "DELTA_EIP", "SELECTORS", "SUBSETS", "TUKEY_C", "AugmentedLoss", "Experiment", "alpha_table", "auto_tau",
    "best_eip_labels", "class_names", "confidence_groups", "delta_breakdown", "delta_configs", "delta_eip",
    "delta_parts", "eip_errors", "select_by_error", "train_error_regressor", "eip_subset", "fit_augmented", "for_finetuning",
    "label_with_eips", "masked_mse", "prepare_experiment", "pretrain", "rank_eips", "resolve_tau", "robust_scale",
    "select_pool", "tukey_biweight", "train_classifier",
]
