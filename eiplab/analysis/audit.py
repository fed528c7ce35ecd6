"""The LA classifier audit (Table 6) and what it picks where.

On a pool whose DFT energies were hidden from training but are known (si-pyxtal's pool; a
dataset's hidden-DFT audit subset), every selected config's EIP label is compared with DFT. A
selected config is an outlier when its label misses DFT by more than ``tau`` eV/atom; outliers
fall into bands of multiples of tau (METHOD.md decision: mild tau-2tau, normal 2tau-5tau,
severe > 5tau). Accuracy = 1 - outliers / audited selected configs (the paper's 75-78 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.express as px

from .. import keys
from ..data import ConfigSet
from ..strategies.labels import DEFAULT_TAU, best_eip_labels

if TYPE_CHECKING:
    import plotly.graph_objects as go

DEFAULT_BANDS = (1.0, 2.0, 5.0)  # band edges in units of tau: mild [1, 2), normal [2, 5), severe >= 5
BAND_NAMES = ("mild", "normal", "severe")
ERROR = "label_error_per_atom"  # |E_label - E_dft| / N, eV/atom


def audited_part(pool: ConfigSet) -> str:
    """Where a split's classifier is audited: its pool (keys.POOL) when the pool's DFT energies are
    known but were hidden from training (si-pyxtal), else its held-out TEST configs (keys.TEST;
    the mlearn sets, whose pool has no DFT)."""
    return keys.POOL if np.isfinite(pool.energies_dft()).any() else keys.TEST


def label_errors(selection: pd.DataFrame, pool: ConfigSet) -> pd.DataFrame:
    """The selected configs with their DFT energy (eV) and the error of their EIP label (eV/atom).

    ``selection``: ``select_pool``'s output (index config_id). Configs of ``pool`` without a
    DFT energy are left out (they cannot be audited); the caller sees how many via the counts.
    """
    missing = selection.index.difference(pool.ids)
    if len(missing):
        raise ValueError(f"{len(missing)} selected configs are not in the pool {pool.name!r} (first: {missing[0]!r}); "
                         "audit with the pool of the same split the classifier selected from")
    dft = pd.Series(pool.energies_dft(), index=pd.Index(pool.ids, name=keys.CONFIG_ID), name=keys.ENERGY_DFT)
    chosen = selection[selection["selected"].astype(bool)].copy()
    chosen[keys.ENERGY_DFT] = dft.loc[chosen.index]
    chosen = chosen[np.isfinite(chosen[keys.ENERGY_DFT])]
    chosen[ERROR] = (chosen["label_energy"] - chosen[keys.ENERGY_DFT]).abs() / chosen[keys.N_ATOMS]
    return chosen


def outlier_band(error_per_atom: pd.Series | np.ndarray, tau: float = DEFAULT_TAU,
                 bands: Sequence[float] = DEFAULT_BANDS) -> np.ndarray:
    """"ok" or the outlier band ("mild", "normal", "severe") of each label error (eV/atom)."""
    if len(bands) != 3 or not 0 < bands[0] < bands[1] < bands[2]:
        raise ValueError(f"bands must be three increasing multiples of tau, got {bands}")
    err = np.asarray(error_per_atom, dtype=float) / tau
    return np.select([err <= bands[0], err < bands[1], err < bands[2]], ["ok", *BAND_NAMES[:2]], default=BAND_NAMES[2])


def audit_selection(
    selection: pd.DataFrame,
    pool: ConfigSet,
    aligned: pd.DataFrame | None = None,
    *,
    tau: float = DEFAULT_TAU,
    bands: Sequence[float] = DEFAULT_BANDS,
) -> dict:
    """Table 6 numbers for one classifier: selected configs, outliers per band, accuracy.

    Args:
        selection: ``select_pool`` output over ``pool``.
        pool: the pool configs (with their hidden DFT energies).
        aligned: aligned EIP energies of the pool (eV, columns = EIPs in class order); if given,
            also the agreement of the classifier's class with the best class in hindsight
            (``best_eip_labels`` on the audited configs, selected or not).
        tau: outlier threshold, eV/atom; bands: band edges in units of tau.
    """
    errors = label_errors(selection, pool)
    band = outlier_band(errors[ERROR], tau, bands)
    n_audited = len(errors)
    counts = {name: int((band == name).sum()) for name in BAND_NAMES}
    n_out = sum(counts.values())
    row = {
        "n_pool": len(selection), "n_pool_with_dft": int(np.isfinite(pool.energies_dft()).sum()),
        "n_selected": int(selection["selected"].sum()), "n_audited": n_audited,
        **{f"n_{k}": v for k, v in counts.items()}, "n_outliers": n_out,
        "accuracy": 1.0 - n_out / n_audited if n_audited else float("nan"),
        "median_label_error_per_atom": float(errors[ERROR].median()) if n_audited else float("nan"),
    }
    if aligned is not None:
        known = np.isfinite(pool.energies_dft())
        ids = np.asarray(pool.ids)[known]
        best = best_eip_labels(aligned.loc[ids].to_numpy(), pool.energies_dft()[known], pool.n_atoms()[known], tau)
        predicted = selection.loc[ids, "eip_class"].to_numpy()
        row["class_agreement"] = float((best == predicted).mean()) if len(ids) else float("nan")
    return row


def table6(audits: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Table 6: mean over splits of the audit counts per model (and the accuracy, %)."""
    cols = ["n_mild", "n_normal", "n_severe", "n_outliers", "n_selected", "n_pool"]
    table = audits.groupby("model", sort=False)[cols].mean().round(decimals)
    table["accuracy %"] = (100 * audits.groupby("model", sort=False)["accuracy"].mean()).round(1)
    if "class_agreement" in audits:
        table["class agreement %"] = (100 * audits.groupby("model", sort=False)["class_agreement"].mean()).round(1)
    table.columns = ["#Mild", "#Normal", "#Severe", "#Outliers", "#Selected", "#Unlabeled", *table.columns[6:]]
    return table


def picks_by_phase(selection: pd.DataFrame, pool: ConfigSet, names: dict[str, str] | None = None,
                   classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Fraction of each phase's pool configs assigned to each class (EIP or "none"); rows sum to 1.

    ``names``: optional display names for the class ids (e.g. short EIP names); ``classes``: every
    class id to show as a column, in order (never-picked EIPs get a column of zeros).
    """
    phase = pd.Series([a.info.get(keys.PHASE, "unknown") for a in pool], index=pd.Index(pool.ids, name=keys.CONFIG_ID),
                      name=keys.PHASE)
    picked = selection["model_id"].where(selection["selected"].astype(bool) | (selection["model_id"] == "none"), "EIP energy missing")
    if names:
        picked = picked.map(lambda m: names.get(m, m))
    table = pd.crosstab(phase.loc[selection.index], picked.rename("picked class"), normalize="index")
    if classes is not None:
        shown = [names.get(c, c) if names else c for c in classes]
        table = table.reindex(columns=shown + [c for c in table.columns if c not in shown], fill_value=0.0)
    return table


def picks_heatmap(fractions: pd.DataFrame, title: str = "Which EIP the classifier trusts, per phase") -> go.Figure:
    """Plotly heatmap of ``picks_by_phase`` (fraction of the phase's pool configs)."""
    fig = px.imshow(fractions, text_auto=".2f", aspect="auto", color_continuous_scale="Blues", zmin=0, zmax=1,
                    labels={"x": "picked class", "y": "phase", "color": "fraction"}, title=title)
    return fig


def outliers_by_confidence(selection: pd.DataFrame, pool: ConfigSet, groups: pd.Series, tau: float = DEFAULT_TAU) -> pd.DataFrame:
    """Per confidence group (``confidence_groups`` output): audited configs, median label error
    (eV/atom) and the outlier fraction -- does a confident pick mean a good label?"""
    errors = label_errors(selection, pool)
    errors["group"] = groups.reindex(errors.index)
    errors["outlier"] = errors[ERROR] > tau
    table = errors.groupby("group").agg(n_audited=(ERROR, "size"), median_error_per_atom=(ERROR, "median"),
                                        outlier_fraction=("outlier", "mean"), min_confidence=("confidence", "min"),
                                        max_confidence=("confidence", "max"))
    return table.reindex([g for g in ("low", "medium", "high") if g in table.index])


def worst_picks(selection: pd.DataFrame, pool: ConfigSet, n: int = 10) -> pd.DataFrame:
    """The ``n`` selected configs whose EIP label misses DFT the most (eV/atom), worst first."""
    errors = label_errors(selection, pool)
    phase = {a.info[keys.CONFIG_ID]: a.info.get(keys.PHASE, "unknown") for a in pool}
    errors[keys.PHASE] = [phase[i] for i in errors.index]
    cols = ["model_id", "confidence", keys.N_ATOMS, keys.PHASE, "label_energy", keys.ENERGY_DFT, ERROR]
    return errors.sort_values(ERROR, ascending=False)[cols].head(n)
