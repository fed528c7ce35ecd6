"""Interactive panels for JupyterLab (ipywidgets, nglview). Headless runs never need them."""

from .viewer import config_picker, describe_config, show_config

__all__ = ["config_picker", "describe_config", "show_config"]
