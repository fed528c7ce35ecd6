"""How much LA depends on alpha, and what choosing it on validation costs.

Every LA / MP+LA run records one row per alpha it tried (``alpha_table`` in its result:
validation and test MAE of that alpha's fit, the one chosen on validation flagged). These
functions turn those rows into tables and a figure: the test MAE at each alpha against the
baseline, and per split the alpha validation chose vs the alpha that would have been best on
test (an oracle nobody has: the gap is the price of choosing on a small validation set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px

from .. import keys
from .results import TEST_ATOM, TEST_CONFIG, run_label
from .tables import mean_std_table

if TYPE_CHECKING:
    import plotly.graph_objects as go

VAL_CONFIG = "val_" + keys.MAE_CONFIG  # eV
ALPHA_COLUMNS = ["model", "tag", "seed", "alpha", "effective_weight", "n_aug", VAL_CONFIG, TEST_CONFIG, TEST_ATOM,
                 "chosen"]


def alpha_runs(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, run tag, split, alpha) of every run that recorded an alpha table (the
    tag marked when the run injected the EIPs' forces, :func:`eiplab.analysis.results.run_label`):
    effective weight, number of EIP-labelled configs, validation / test config MAE (eV), test
    atom MAE (eV/atom) and whether validation chose it. Empty when no run tried several alphas."""
    rows = []
    if "alpha_table" not in results:
        return pd.DataFrame(columns=ALPHA_COLUMNS)
    for _, run in results.iterrows():
        table = run["alpha_table"]
        if not isinstance(table, list) or len(table) < 2:
            continue
        for entry in table:
            rows.append({"model": run["model"], "tag": run_label(run), "seed": int(run["seed"]),
                         **{k: entry.get(k) for k in ALPHA_COLUMNS[3:]}})
    df = pd.DataFrame(rows, columns=ALPHA_COLUMNS)
    df["chosen"] = df["chosen"].astype(bool)
    return df.sort_values(["model", "tag", "seed", "alpha"], ignore_index=True)


def _baseline_means(results: pd.DataFrame) -> pd.Series:
    """Mean baseline test config MAE (eV) per model."""
    return results[results["tag"] == "baseline"].groupby("model")[TEST_CONFIG].mean()


def _change_on_matched_splits(runs: pd.DataFrame, baseline: pd.Series) -> float:
    """Change (%) of the mean test config MAE of ``runs`` (one model, tag and alpha) against the
    baseline (test config MAE, eV, indexed by model and split), both averaged over the splits
    that have both; NaN when none has. (A row of a grid still running covers fewer splits than
    the baseline: comparing it with the baseline's mean over all splits would mix split-to-split
    spread into the change.)"""
    run_keys = pd.MultiIndex.from_arrays([runs["model"], runs["seed"]])
    matched = run_keys.isin(baseline.index)
    if not matched.any():
        return float("nan")
    return round(100 * (runs.loc[matched, TEST_CONFIG].mean() / baseline[run_keys[matched]].mean() - 1), 1)


def alpha_sensitivity(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Per model, run tag and alpha: validation and test config MAE as mean (std) over splits,
    the change of the mean test MAE against the model's baseline on the same splits (%, when
    baseline runs for them are in ``results``) and on how many splits validation chose this alpha."""
    runs = alpha_runs(results)
    if runs.empty:
        return pd.DataFrame()
    table = mean_std_table(runs, ["model", "tag", "alpha"], [VAL_CONFIG, TEST_CONFIG], decimals)
    table.columns = ["val Config (eV)", "test Config (eV)"]
    grouped = runs.groupby(["model", "tag", "alpha"], sort=False)
    baselines = results[results["tag"] == "baseline"]
    baseline = baselines.groupby([baselines["model"], baselines["seed"].astype(int)])[TEST_CONFIG].mean()
    table["test vs baseline (%)"] = [_change_on_matched_splits(df, baseline) for _, df in grouped]
    table["chosen on (splits)"] = grouped["chosen"].sum().astype(int).to_numpy()
    table["splits"] = grouped["seed"].nunique().to_numpy()
    return table


def alpha_choice(results: pd.DataFrame) -> pd.DataFrame:
    """Per model, run tag and split: the alpha chosen on validation and its test config MAE (eV),
    the alpha best on test and its MAE, the cost of the choice (eV, >= 0) and the chosen alpha's
    rank on test among the alphas tried (1 = best)."""
    runs = alpha_runs(results)
    rows = []
    for (model, tag, seed), df in runs.groupby(["model", "tag", "seed"], sort=False):
        chosen = df[df["chosen"]]
        if len(chosen) != 1:
            raise ValueError(f"run {model} {tag} seed {seed}: {len(chosen)} alphas flagged as chosen, expected 1; "
                             "its result.json alpha_table is damaged: delete the run's result.json and re-run the grid")
        chosen = chosen.iloc[0]
        best = df.loc[df[TEST_CONFIG].idxmin()]
        rows.append({"model": model, "tag": tag, "seed": seed, "alphas": len(df),
                     "chosen alpha": chosen["alpha"], "test at chosen (eV)": chosen[TEST_CONFIG],
                     "best alpha on test": best["alpha"], "test at best (eV)": best[TEST_CONFIG],
                     "cost of choice (eV)": chosen[TEST_CONFIG] - best[TEST_CONFIG],
                     "rank of chosen on test": int((df[TEST_CONFIG] < chosen[TEST_CONFIG]).sum()) + 1})
    return pd.DataFrame(rows).set_index(["model", "tag", "seed"]) if rows else pd.DataFrame()


def alpha_figure(results: pd.DataFrame) -> go.Figure | None:
    """Validation (dashed) and test (solid) config MAE against alpha (log axis), one colour per
    split and one panel per model and run tag; the alpha chosen on validation is drawn larger,
    the baseline's mean test MAE is the grey line. None when no run tried several alphas."""
    runs = alpha_runs(results)
    if runs.empty:
        return None
    runs["panel"] = runs["model"] + " " + runs["tag"]
    runs["split"] = "split " + runs["seed"].astype(str)
    long = runs.melt(id_vars=["panel", "model", "split", "alpha", "chosen"], value_vars=[VAL_CONFIG, TEST_CONFIG],
                     var_name="metric", value_name="MAE (eV)")
    long["metric"] = long["metric"].map({VAL_CONFIG: "validation", TEST_CONFIG: "test"})
    baseline = _baseline_means(results)
    lines = [{"panel": p, "model": m, "split": "baseline (mean)", "alpha": a, "chosen": False, "metric": "test",
              "MAE (eV)": baseline[m]}
             for (p, m), df in runs.groupby(["panel", "model"]) if m in baseline for a in sorted(set(df["alpha"]))]
    long = pd.concat([long, pd.DataFrame(lines)], ignore_index=True) if lines else long
    fig = px.line(long, x="alpha", y="MAE (eV)", color="split", line_dash="metric", facet_col="panel",
                  facet_col_wrap=2, log_x=True, markers=True, hover_data=["chosen"],
                  color_discrete_map={"baseline (mean)": "grey"},
                  category_orders={"metric": ["test", "validation"]},
                  title="LA: config MAE against alpha<br><sup>large markers: alpha chosen on validation; "
                        "grey: baseline test MAE</sup>")
    for trace in fig.data:
        chosen = [bool(c[0]) for c in trace.customdata]
        trace.marker.size = [12 if c else 5 for c in chosen]
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    alphas = sorted(set(long["alpha"]))  # ticks at the alphas tried, labelled in full
    return fig.update_xaxes(tickvals=alphas, ticktext=[f"{a:g}" for a in alphas])
