"""Result tables: mean (std) formatting and writing CSV + HTML next to executed notebooks."""

from __future__ import annotations

import warnings
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go


def mean_std_table(
    df: pd.DataFrame, by: list[str], values: list[str], decimals: int = 4
) -> pd.DataFrame:
    """Aggregate ``values`` over repeats (e.g. the 3 splits) as strings ``mean (std)``.

    The std is the sample standard deviation (ddof=1), as papers report it; a single repeat
    has none and shows ``mean (n=1)`` instead, so a one-split row is never read as exact. A row
    with fewer repeats than the table's fullest row (a grid still running: 2 of 3 splits
    finished) shows ``mean (std, n=2)``, so it is never read as a full row either.
    """
    grouped = df.groupby(by, sort=False)[values]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    full = int(count.to_numpy().max()) if len(count) else 0
    out = mean.copy().astype(object)
    for col in values:
        out[col] = [_mean_std_cell(m, s, n, full, decimals)
                    for m, s, n in zip(mean[col], std[col], count[col], strict=True)]
    out.attrs["caption"] = f"mean (sample std, ddof=1) over up to {full} splits; n = splits where fewer"
    return out


def _mean_std_cell(mean: float, std: float, n: int, full: int, decimals: int) -> str:
    """One ``mean (std)`` cell; ``n`` repeats out of the table's ``full``."""
    if n == 1:
        return f"{mean:.{decimals}f} (n=1)"
    partial = f", n={n}" if n < full else ""
    return f"{mean:.{decimals}f} ({std:.{decimals}f}{partial})"


def save_table(df: pd.DataFrame, out_dir: str | Path | None, name: str, html: bool = True) -> list[Path]:
    """Write ``df`` as ``<name>.csv`` and (unless ``html=False``, e.g. for long per-config
    tables) ``<name>.html`` under ``out_dir`` (no-op if None)."""
    if out_dir is None:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{name}.csv"
    df.to_csv(csv)
    if not html:
        return [csv]
    page = out / f"{name}.html"
    html = df.to_html(border=0, float_format=lambda x: f"{x:.4g}")
    caption = df.attrs.get("caption")
    if caption:  # e.g. "mean (sample std, ddof=1) over 3 splits": what the numbers in brackets are
        head, _, rest = html.partition(">")
        html = f"{head}>\n  <caption>{escape(str(caption))}</caption>{rest}"
    page.write_text(html)
    return [csv, page]


def png_export_available() -> bool:
    """True when plotly can write PNG: kaleido is installed (it also needs a Chrome/Chromium)."""
    import importlib.util

    return importlib.util.find_spec("kaleido") is not None


def save_figure(fig: go.Figure, out_dir: str | Path | None, name: str, png: bool | None = None) -> Path | None:
    """Write a plotly figure as standalone HTML (papermill keeps no widget state), and as PNG
    when ``png`` is True, or None and kaleido is installed (optional: ``pip install kaleido``
    plus a Chrome/Chromium, e.g. Debian's ``chromium``). A failed PNG export warns; the HTML is
    always written."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.html"
    fig.write_html(path, include_plotlyjs="cdn")
    if png or (png is None and png_export_available()):
        try:
            fig.write_image(out / f"{name}.png", scale=2)
        except Exception as err:  # kaleido/browser problems must not lose the run's other outputs
            warnings.warn(f"PNG export of figure {name!r} failed ({err}); wrote {path} only", stacklevel=2)
    return path


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis over ``values``: 1, 2 and 5 x each power of ten
    in their range, labelled in full ("0.02", "0.5", "10") -- plotly's default labels the
    in-between ticks of a log axis with their first digit only ("5", "2"), which reads wrong."""
    import math

    finite = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not finite:
        return [], []
    lo, hi = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    ticks = [m * 10.0**e for e in range(lo, hi + 1) for m in (1, 2, 5) if min(finite) / 2 <= m * 10.0**e <= max(finite) * 2]
    return ticks, [f"{t:g}" for t in ticks]
