"""Interactive panels for JupyterLab (ipywidgets, nglview). Headless runs never need them."""

from .eip_panel import eip_benchmark_panel
from .la_panel import la_explorer_panel
from .results_panel import learning_curve_panel
from .viewer import config_picker, describe_config, show_config

__all__ = ["config_picker", "describe_config", "eip_benchmark_panel", "la_explorer_panel", "learning_curve_panel", "show_config"]
