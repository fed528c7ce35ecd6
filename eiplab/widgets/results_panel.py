"""A model / strategy / split picker showing the learning curve of a finished grid run."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from ..analysis.results import learning_curve_figure, load_history


def learning_curve_panel(grid_dir: str | Path, results: pd.DataFrame) -> widgets.VBox:
    """Dropdowns over the finished runs in ``results``; the plot follows the choice."""
    model = widgets.Dropdown(options=sorted(results["model"].unique()), description="model")
    tag = widgets.Dropdown(options=sorted(results["tag"].unique()), description="strategy")
    seed = widgets.Dropdown(options=sorted(results["seed"].unique()), description="split")
    fig = go.FigureWidget()

    def redraw(*_):
        try:
            new = learning_curve_figure(load_history(grid_dir, model.value, tag.value, seed.value),
                                        title=f"{model.value} {tag.value} split {seed.value}")
        except FileNotFoundError:
            new = go.Figure(layout={"title": "this run has not been made"})
        with fig.batch_update():
            fig.data = []
            for trace in new.data:
                fig.add_trace(trace)
            fig.layout = new.layout

    for w in (model, tag, seed):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([model, tag, seed]), fig])
