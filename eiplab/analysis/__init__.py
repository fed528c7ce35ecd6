"""Analysis: dataset statistics, result tables (mean and std over splits), the classifier audit,
alpha sensitivity, representation maps, figures and the CSV/HTML/PNG writers.

The submodules are part of the public API (notebooks use them as ``res.table3(...)`` etc.):
``alpha``, ``audit``, ``dataset_stats``, ``representations``, ``results``.
"""

from . import alpha, audit, dataset_stats, representations, results
from .tables import mean_std_table, save_figure, save_table

__all__ = ["alpha", "audit", "dataset_stats", "mean_std_table", "representations", "results", "save_figure",
           "save_table"]
