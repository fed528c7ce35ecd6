"""An EIP picker: choose EIPs and the alignment; see Table 2 rows and the parity plot update."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from .. import keys
from ..data import ConfigSet, split_configs
from ..eips import SpeciesAligner, parity_figure, spec_for, table2


def _name(model_id: str) -> str:
    return spec_for(model_id).name  # the id itself for models outside Table 2


def eip_benchmark_panel(configs: ConfigSet, tidy: pd.DataFrame, split: pd.Series, model_ids: Sequence[str]) -> widgets.VBox:
    """Multi-select of EIPs and an alignment switch; Table 2 rows and a test-set parity plot.

    Args:
        configs: the dataset with EIP energies in ``info``.
        tidy: :func:`eiplab.eips.eip_benchmark` output (all EIPs, both alignments).
        split: the split whose TRAIN configs fit the alignment and whose TEST configs are plotted.
        model_ids: the EIPs to offer.
    """
    options = [(_name(m), m) for m in model_ids]
    pick = widgets.SelectMultiple(options=options, value=tuple(model_ids), description="EIPs", rows=min(10, len(options)))
    align = widgets.ToggleButtons(options=["species", "none"], value="species", description="align")
    table_out = widgets.Output()
    fig = go.FigureWidget()
    parts = split_configs(configs, split)

    def redraw(*_):
        chosen = list(pick.value)
        with table_out:
            table_out.clear_output()
            display(table2(tidy[tidy["model_id"].isin(chosen)], align=align.value))
        aligner = SpeciesAligner(method=align.value).fit(parts[keys.TRAIN], energies_eip=None) if chosen else None
        new = parity_figure(parts[keys.TEST], chosen, aligner=aligner) if chosen else go.Figure()
        with fig.batch_update():
            fig.data = []
            for trace in new.data:
                fig.add_trace(trace)
            fig.layout = new.layout

    pick.observe(redraw, names="value")
    align.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([pick, align]), table_out, fig])
