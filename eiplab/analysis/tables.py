"""Result tables: mean (std) formatting and writing CSV + HTML next to executed notebooks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def mean_std_table(
    df: pd.DataFrame, by: list[str], values: list[str], decimals: int = 4
) -> pd.DataFrame:
    """Aggregate ``values`` over repeats (e.g. the 3 splits) as strings ``mean (std)``.

    The std is the sample standard deviation (ddof=1), as papers report it; a single repeat
    shows std 0.
    """
    grouped = df.groupby(by, sort=False)[values]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    out = mean.copy().astype(object)
    for col in values:
        out[col] = [f"{m:.{decimals}f} ({s:.{decimals}f})" for m, s in zip(mean[col], std[col], strict=True)]
    return out


def save_table(df: pd.DataFrame, out_dir: str | Path | None, name: str) -> list[Path]:
    """Write ``df`` as ``<name>.csv`` and ``<name>.html`` under ``out_dir`` (no-op if None)."""
    if out_dir is None:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv, html = out / f"{name}.csv", out / f"{name}.html"
    df.to_csv(csv)
    html.write_text(df.to_html(border=0, float_format=lambda x: f"{x:.4g}"))
    return [csv, html]


def save_figure(fig, out_dir: str | Path | None, name: str) -> Path | None:
    """Write a plotly figure as standalone HTML (papermill keeps no widget state)."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.html"
    fig.write_html(path, include_plotlyjs="cdn")
    return path
