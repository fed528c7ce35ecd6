"""Analysis: dataset statistics, result tables (mean and std over splits), figures."""

from .tables import mean_std_table, save_figure, save_table

__all__ = ["mean_std_table", "save_figure", "save_table"]
