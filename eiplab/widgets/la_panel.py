"""Pick a network, EIPs and alpha; train label augmentation on one split and compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from ..eips import spec_for
from ..strategies.experiment import Experiment
from ..strategies.explore import la_with_choice

if TYPE_CHECKING:
    from ..models import ModelConfig
    from ..training import TrainSettings


def la_explorer_panel(exp: Experiment, model_configs: dict[str, ModelConfig], settings: TrainSettings,
                      eip_ids: Sequence[str], alphas: Sequence[float] = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)) -> widgets.VBox:
    """Widgets: model, EIP multi-select, alpha, Tukey on/off and a Run button; each run adds a row."""
    model = widgets.Dropdown(options=list(model_configs), description="model")
    eips = widgets.SelectMultiple(options=[(spec_for(m).name, m) for m in eip_ids], value=tuple(eip_ids),
                                  description="EIPs", rows=min(8, len(eip_ids)))
    alpha = widgets.SelectionSlider(options=list(alphas), value=1.0 if 1.0 in alphas else alphas[0], description="alpha")
    tukey = widgets.Checkbox(value=True, description="Tukey loss")
    run = widgets.Button(description="Train LA", button_style="primary")
    # the results table can be wider than the notebook: it scrolls inside the panel
    out = widgets.Output(layout=widgets.Layout(overflow="auto", max_width="100%"))
    rows: list[dict] = []

    def on_run(_):
        run.disabled = True
        with out:  # an error in training shows here, not only in the browser's log console
            try:
                result = la_with_choice(exp, model_configs[model.value], settings, list(eips.value), alpha.value,
                                        tukey=tukey.value)
                rows.append({"model": model.value, "EIPs": len(eips.value),
                             **{k: v for k, v in result.items() if k != "picked_per_eip"}})
                out.clear_output()
                display(pd.DataFrame(rows))
            finally:
                run.disabled = False

    run.on_click(on_run)
    return widgets.VBox([widgets.HBox([model, alpha, tukey, run]), eips, out])
