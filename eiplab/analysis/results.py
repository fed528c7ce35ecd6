"""Tables 3, 4 and 7 from grid results (one row per run: model, tag, seed, test metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.express as px

from .. import keys
from .tables import log_ticks, mean_std_table

if TYPE_CHECKING:
    import plotly.graph_objects as go

TEST_CONFIG = "test_" + keys.MAE_CONFIG  # eV
TEST_ATOM = "test_" + keys.MAE_ATOM  # eV/atom
TEST_FORCE = "test_" + keys.MAE_FORCE  # eV/Angstrom per force component (force-trained runs)
STRATEGY_ORDER = ("baseline", "la", "mp", "mp+la", "delta", "delta+mp")
MODEL_ORDER = ("soapnet", "schnet", "cgcnn", "gemnet")  # the paper's row order; other models follow


EIP_FORCES_LABEL = " +EIP forces"  # marks the runs that injected the EIPs' forces (MP heads, LA picks)


def _model_rank(model: str) -> int:
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def _selector(run: Mapping[str, Any]) -> str:
    """The LA selector of a run's record (records that name none used the paper's classifier)."""
    value = run.get(keys.SELECTOR)
    return value if isinstance(value, str) and value else keys.DEFAULT_SELECTOR


def run_label(run: Mapping[str, Any]) -> str:
    """A run's tag for tables, marked with its LA selector when it is not the paper's classifier
    (``la (error-regression)``) and with :data:`EIP_FORCES_LABEL` when it injected the EIPs'
    forces, so that tables built from several grids never average such runs with the others
    (the run tag itself is the same: ``mp``, ``la``)."""
    from ..workflows.spec import injected_eip_forces

    label = str(run["tag"])
    if _selector(run) != keys.DEFAULT_SELECTOR:
        label += f" ({_selector(run)})"
    return f"{label}{EIP_FORCES_LABEL}" if injected_eip_forces(run) else label


#: Settings two records of one (model, label, split) must share to be the same run (tables keep the
#: first of such duplicates: each grid trains its own baseline).
SAME_RUN_SETTINGS = ("dataset", "epochs", "tau_setting", "alpha")


def la_selectors(results: pd.DataFrame) -> list[str]:
    """The LA selectors of the LA runs (``la``, ``mp+la``, their groups and ablations) in ``results``."""
    from ..workflows.spec import la_strategy

    return sorted({_selector(run) for _, run in results.iterrows() if la_strategy(run)})


def comparable_runs(results: pd.DataFrame, what: str, *, eip_forces_apart: bool = False,
                    settings_apart: tuple[str, ...] = (), selectors_apart: bool = False) -> pd.DataFrame:
    """``results`` with a ``label`` column (:func:`run_label`) and each (model, label, split) once,
    refusing what one table must not average: runs trained with different force weights, and --
    unless the table keeps them apart (``eip_forces_apart``: Table 3, the alpha tables) -- runs
    with and without EIP forces. Several grids may hold the same run (each grid trains its own
    baseline): the first record of each (model, label, split) is kept, after checking that the
    records agree on :data:`SAME_RUN_SETTINGS` (otherwise one would be dropped unseen) -- except
    ``settings_apart``, which the caller's table keeps apart itself (tau sensitivity: ``tau_setting``).
    LA runs of different selectors are refused unless the table keeps them apart
    (``selectors_apart``: Table 3, whose labels name the selector).

    Raises:
        ValueError: naming the table and what is mixed.
    """
    from ..workflows.spec import EIP_FORCE_STRATEGIES, injected_eip_forces

    df = results.copy()
    df["label"] = pd.Series([run_label(run) for _, run in df.iterrows()], index=df.index, dtype=object)
    weight = df["force_weight"].fillna(0.0) if "force_weight" in df else pd.Series(0.0, index=df.index)
    weights = sorted({float(w) for w in weight})  # energy-only records have none: 0
    if len(weights) > 1:
        raise ValueError(f"{what}: the runs were trained with different force weights {weights}; make one table "
                         "per force weight (eiplab tables on the records or grids of one --force-weight)")
    uses_eipf = {injected_eip_forces(run) for _, run in df.iterrows()
                 if run.get("strategy", run["tag"]) in EIP_FORCE_STRATEGIES}
    if len(uses_eipf) > 1 and not eip_forces_apart:
        raise ValueError(f"{what}: runs with and without EIP forces are mixed; make it from the grids of one "
                         "--eip-forces setting (Table 3 and the alpha tables keep them apart)")
    if not selectors_apart and len(la_selectors(df)) > 1:
        raise ValueError(f"{what}: the LA runs come from different selectors {la_selectors(df)}; make it from the "
                         "grids (or exported records) of one --selector")
    same = ["model", "label", "seed"]
    for key_values, runs in df[df.duplicated(same, keep=False)].groupby(same, sort=False):
        for setting in (s for s in SAME_RUN_SETTINGS if s not in settings_apart):
            # a record older than the setting lacks it (NaN): compare the records that have it
            values = {str(v) for v in runs[setting] if pd.notna(v)} if setting in runs else set()
            if len(values) > 1:
                model, label, seed = key_values
                raise ValueError(f"{what}: the sources hold different {model} {label} runs of split {seed} "
                                 f"({setting}: {sorted(values)}); make one table per setting, or export them "
                                 "to separate folders")
    return df.drop_duplicates(same, keep="first")


def _strategy_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The Table 3 runs (tags in STRATEGY_ORDER) with their ``label`` (:func:`run_label`), sorted
    by model, strategy (runs with EIP forces after the same strategy without) and split."""
    df = comparable_runs(results[results["tag"].isin(STRATEGY_ORDER)], "Table 3", eip_forces_apart=True,
                         selectors_apart=True)
    eipf = df["label"].str.endswith(EIP_FORCES_LABEL).astype(bool) if len(df) else pd.Series(dtype=bool)
    other_selector = pd.Series([_selector(run) != keys.DEFAULT_SELECTOR for _, run in df.iterrows()],
                               index=df.index, dtype=float)
    df["order"] = df["tag"].map(STRATEGY_ORDER.index) + 0.5 * eipf.astype(float) + 0.25 * other_selector
    df["model_rank"] = df["model"].map(_model_rank)
    return df.sort_values(["model_rank", "model", "order", "seed"])


def table3(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Table 3: rows (model, strategy), columns Config (eV) and Atom (eV/atom) as mean (std) over
    splits, plus Force (eV/A, MAE per component) when the runs were trained on forces."""
    df = _strategy_rows(results)
    columns = [TEST_CONFIG, TEST_ATOM]
    if TEST_FORCE in df.columns and df[TEST_FORCE].notna().any():
        columns.append(TEST_FORCE)
    table = mean_std_table(df, ["model", "label"], columns, decimals)
    table.columns = ["Config (eV)", "Atom (eV/atom)", "Force (eV/A)"][: len(columns)]
    table.index.names = ["model", "strategy"]
    return table


def improvement_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per model and strategy: mean test MAEs and the relative change against the baseline (%)."""
    df = _strategy_rows(results)
    mean = df.groupby(["model", "label"], sort=False)[[TEST_CONFIG, TEST_ATOM]].mean()
    rows = []
    for (model, tag), row in mean.iterrows():
        if (model, "baseline") not in mean.index:
            continue
        base = mean.loc[(model, "baseline")]
        rows.append({
            "model": model, "strategy": tag,
            TEST_CONFIG: row[TEST_CONFIG], TEST_ATOM: row[TEST_ATOM],
            "change_config_%": 100 * (row[TEST_CONFIG] / base[TEST_CONFIG] - 1),
            "change_atom_%": 100 * (row[TEST_ATOM] / base[TEST_ATOM] - 1),
        })
    columns = ["model", "strategy", TEST_CONFIG, TEST_ATOM, "change_config_%", "change_atom_%"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "strategy"])


def table4(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Table 4: config-level MAE with and without the Tukey loss (LA), per model."""
    df = comparable_runs(results[results["tag"].isin(["la", "la-notukey"])], "Table 4")
    df["Tukey"] = df["tag"].map({"la": "w/ Tukey", "la-notukey": "w/o Tukey"})
    table = mean_std_table(df, ["Tukey", "model"], [TEST_CONFIG], decimals)[TEST_CONFIG].unstack("model")
    return table.reindex(["w/o Tukey", "w/ Tukey"])


def _with_defaults(results: pd.DataFrame) -> pd.DataFrame:
    """Records written before a RunSpec field existed get its default."""
    df = results.copy()
    for col, default in (("subset", "all"), ("tukey", True), ("group", "all")):
        df[col] = df[col].fillna(default) if col in df else default
    return df


def _table5_runs(results: pd.DataFrame) -> pd.DataFrame:
    """Baseline runs and LA runs with all EIPs and the Tukey term (full selection or one group)."""
    df = _with_defaults(results)
    df = df[(df["tag"] == "baseline") | ((df["strategy"] == "la") & (df["subset"] == "all") & df["tukey"].astype(bool))]
    return comparable_runs(df, "Table 5")


def table5(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Table 5: test MAE after adding each confidence group (low / medium / high) of the
    LA-selected configs to the DFT training set, per model; the baseline and the full LA run
    (all selected configs) are shown alongside when present."""
    df = _table5_runs(results)
    order = ["baseline", "low", "medium", "high", "all"]
    df["confidence"] = ["baseline" if t == "baseline" else g for t, g in zip(df["tag"], df["group"], strict=True)]
    df["order"] = df["confidence"].map(order.index)
    df = df.sort_values(["model", "order", "seed"])
    table = mean_std_table(df, ["model", "confidence"], [TEST_CONFIG, TEST_ATOM], decimals)
    table.columns = ["Config (eV)", "Atom (eV/atom)"]
    return table.rename(index={"all": "all selected (LA)"}, level="confidence")


def table7(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Table 7: LA and MP with EIP subsets (all, best, worst, best+worst) against the baseline."""
    df = _with_defaults(results)
    df = df[(df["tag"] == "baseline") | df["strategy"].isin(["la", "mp"]) & df["tukey"].astype(bool) & (df["group"] == "all")]
    df = comparable_runs(df, "Table 7")
    df["row"] = [("Baseline", "-") if t == "baseline" else ("+" + s.upper(), sub) for t, s, sub in zip(df["tag"], df["strategy"], df["subset"], strict=True)]
    df["strategy_row"] = [r[0] for r in df["row"]]
    df["EIPs"] = [r[1] for r in df["row"]]
    table = mean_std_table(df, ["strategy_row", "EIPs", "model"], [TEST_CONFIG, TEST_ATOM], decimals)
    table.columns = ["Config (eV)", "Atom (eV/atom)"]
    return table.unstack("model")


def improvement_figure(results: pd.DataFrame) -> go.Figure:
    """Bar chart: relative change of the test config-level MAE against the baseline (%)."""
    imp = improvement_table(results).reset_index()
    imp = imp[imp["strategy"] != "baseline"]
    return px.bar(imp, x="model", y="change_config_%", color="strategy", barmode="group",
                  labels={"change_config_%": "test config MAE vs baseline (%)"},
                  title="Change of the test MAE against the baseline (negative = better)")


def learning_curve_figure(history: list[dict], title: str = "learning curve") -> go.Figure:
    """Training loss and validation MAE per epoch (plotly, log-scale y)."""
    df = pd.DataFrame(history)
    cols = [c for c in ("train_loss", "val_" + keys.MAE_CONFIG, "val_" + keys.MAE_ATOM) if c in df]
    long = df.melt(id_vars="epoch", value_vars=cols, var_name="quantity", value_name="value")
    fig = px.line(long, x="epoch", y="value", color="quantity", log_y=True, markers=True, title=title)
    tickvals, ticktext = log_ticks(long["value"])
    return fig.update_yaxes(tickvals=tickvals, ticktext=ticktext)


def load_history(grid_dir: str | Path, model: str, tag: str, seed: int) -> list[dict]:
    """Per-epoch history of a finished run (for LA runs: the chosen alpha's fit)."""
    from ..workflows.store import store_of

    return store_of(grid_dir).history(model, tag, seed)


def classifier_summary(grid_dir: str | Path) -> pd.DataFrame:
    """LA classifiers: validation accuracy, selected / pool configs and tau per model, subset and split."""
    from ..workflows.store import store_of

    return store_of(grid_dir).classifiers()


def confidence_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The confidence-group runs of ``results``: split, group, alpha (from the full LA run),
    EIP-labelled configs added, the group's confidence range and the test MAEs."""
    df = _with_defaults(results)
    cols = ["model", "seed", "group", "alpha", "n_aug", "confidence_range", TEST_CONFIG, TEST_ATOM]
    return df.loc[df["group"] != "all", [c for c in cols if c in df]].reset_index(drop=True)


def confidence_figure(results: pd.DataFrame) -> go.Figure:
    """Bar chart of Table 5: test config MAE (eV) per confidence group, mean and std over splits
    (the title says how many)."""
    df = _table5_runs(results)
    df = df.assign(training=["DFT only" if t == "baseline" else ("DFT + all selected" if g == "all" else f"DFT + {g}")
                             for t, g in zip(df["tag"], df["group"], strict=True)])
    order = ["DFT only", "DFT + low", "DFT + medium", "DFT + high", "DFT + all selected"]
    stats = df.groupby(["model", "training"])[TEST_CONFIG].agg(["mean", "std"]).reset_index()
    n = df["seed"].nunique()
    spread = f"mean and std over {n} splits" if n > 1 else "one split: no error bars"
    return px.bar(stats, x="training", y="mean", error_y="std", color="model", barmode="group",
                  category_orders={"training": order}, labels={"mean": "test config MAE (eV)", "training": ""},
                  title=f"Adding one confidence group of EIP-labelled configs<br><sup>Table 5; {spread}</sup>")


def tau_sensitivity(results: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """How LA depends on tau: per model and tau setting (a number in eV/atom, or "auto"), the LA
    runs' test config MAE (mean (std) over splits), the change of its mean against the baseline,
    the tau used per split (eV/atom) and the EIP-labelled configs added. ``results`` holds the
    baseline and LA runs of grids that differ only in tau (``eiplab grid --tau``)."""
    la = results[results["tag"] == "la"].copy()
    if not la.empty:
        comparable_runs(results, "tau sensitivity", settings_apart=("tau_setting", "alpha"))
    if la.empty or "tau_setting" not in la:
        raise ValueError("no LA runs with a recorded tau setting (run eiplab grid --tau ...)")
    la["tau_setting"] = la["tau_setting"].astype(str)
    base = results[results["tag"] == "baseline"].groupby("model")[TEST_CONFIG].mean()
    table = mean_std_table(la, ["model", "tau_setting"], [TEST_CONFIG], decimals)
    table.columns = ["LA config (eV)"]
    grouped = la.groupby(["model", "tau_setting"], sort=False)
    table["change vs baseline %"] = [
        round(100 * (grouped[TEST_CONFIG].mean()[key] / base.get(key[0], float("nan")) - 1), 1) for key in table.index]
    table["tau per split (eV/atom)"] = grouped["tau"].agg(lambda t: " / ".join(f"{v:.3g}" for v in t))
    table["EIP-labelled configs (mean)"] = grouped["n_aug"].mean().round(0)
    table.index.names = ["model", "tau"]
    return table
