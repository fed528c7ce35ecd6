"""Figures read right: log axes are labelled in full, not with plotly's first-digit minor labels."""

from eiplab.analysis.results import learning_curve_figure
from eiplab.analysis.tables import log_ticks


def test_log_ticks_label_values_in_full():
    ticks, labels = log_ticks([0.03, 0.4, float("nan")])
    assert labels == ["0.02", "0.05", "0.1", "0.2", "0.5"]
    assert ticks[0] < 0.03 and ticks[-1] > 0.4


def test_learning_curve_log_axis_has_full_labels():
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_mae_config": 0.3 / (e + 1)} for e in range(20)]
    fig = learning_curve_figure(history)
    labels = list(fig.layout.yaxis.ticktext)
    assert "0.5" in labels and "5" not in labels


def test_nglview_loads_without_a_warning_box():
    """nglview 3.1 warns about pkg_resources on import (a red box in JupyterLab): eiplab hides it."""
    import subprocess
    import sys

    code = "from eiplab.widgets.viewer import _nglview; _nglview()"
    shown = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    plain = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", "import nglview"], capture_output=True,
                           text=True)
    assert plain.returncode != 0 and "pkg_resources" in plain.stderr  # the warning this guards against
