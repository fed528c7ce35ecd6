"""EIP accuracy against DFT (the paper's Table 2) and a parity figure.

config-level MAE (eV) = mean |E_k - E_dft| and atom-level MAE (eV/atom) = mean |E_k - E_dft| / N
over a split's TEST configs, with alignment (if any) fitted on that split's TRAIN configs;
mean and std over the splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from ase import Atoms

from .. import keys
from .alignment import Align, SpeciesAligner, Weighting
from .energies import config_ids, dft_energies, eip_energies, n_atoms
from .registry import spec_for

if TYPE_CHECKING:
    import plotly.graph_objects as go

SplitLike = pd.Series | Mapping[str, str]

#: Column: configs of the test set where the EIP energy is NaN (left out of its MAE).
N_NAN = "n_nan"
#: Column: test configs that entered the MAE.
N_TEST = "n_test"


def _split_list(splits: SplitLike | Sequence[SplitLike] | pd.DataFrame) -> list[pd.Series]:
    if isinstance(splits, pd.DataFrame):
        return [splits[c] for c in splits.columns]
    if isinstance(splits, pd.Series | Mapping):
        return [pd.Series(splits)]
    return [pd.Series(s) for s in splits]


def eip_benchmark(
    configs: Sequence[Atoms],
    splits: SplitLike | Sequence[SplitLike] | pd.DataFrame,
    model_ids: Sequence[str] | None = None,
    *,
    align: Sequence[Align] = ("none", "species"),
    energies_eip: pd.DataFrame | None = None,
    energies_dft: pd.Series | None = None,
    epsilon: float = 1.35,
    weighting: Weighting = "per-atom",
) -> pd.DataFrame:
    """Tidy EIP-vs-DFT errors: one row per (split, align, model).

    Args:
        configs: the dataset (``info[keys.CONFIG_ID]`` must match the split labels).
        splits: one split or several (Series/dict config_id -> keys.TRAIN/VAL/TEST/POOL, or a
            DataFrame with one column per split).
        model_ids: EIPs (default: every column of ``energies_eip``).
        align: alignment modes to report (``"none"`` raw totals, ``"species"`` per-species
            offsets fitted on the split's TRAIN configs).
        energies_eip: [configs x models] eV total, index config_id; default from ``atoms.info``.
        energies_dft: eV total per config_id; default from ``atoms.info``.
        epsilon: Huber threshold of the alignment fit.
        weighting: ``"per-atom"`` (default) or ``"total"`` residuals in the alignment fit.

    Returns:
        Columns: split (0-based), align, model_id, name, mae_config (eV), mae_atom (eV/atom),
        n_test (configs used), n_nan (test configs left out: EIP energy NaN).
        ``attrs["offsets"][split][align]``: the fitted offsets, ``{model_id: {species: eV/atom}}``.
    """
    ids = config_ids(configs)
    e_eip = eip_energies(configs, model_ids) if energies_eip is None else energies_eip.reindex(ids)
    if model_ids is not None:
        e_eip = e_eip[list(model_ids)]
    e_dft = dft_energies(configs) if energies_dft is None else energies_dft.reindex(ids)
    n = n_atoms(configs).to_numpy()
    rows = []
    offsets: dict[int, dict[str, dict]] = {}
    for s, split in enumerate(_split_list(splits)):
        label = split.reindex(ids).to_numpy()
        train = np.flatnonzero(label == keys.TRAIN)
        test = np.flatnonzero((label == keys.TEST) & np.isfinite(e_dft.to_numpy()))
        if len(test) == 0:
            raise ValueError(f"split {s} has no DFT-labelled {keys.TEST!r} configs")
        for mode in align:
            aligner = SpeciesAligner(mode, epsilon=epsilon, weighting=weighting).fit(
                [configs[k] for k in train], e_dft.iloc[train], e_eip.iloc[train]
            )
            offsets.setdefault(s, {})[mode] = aligner.offsets_.to_dict(orient="index")
            pred = aligner.transform([configs[k] for k in test], e_eip.iloc[test]).to_numpy()
            err = np.abs(pred - e_dft.to_numpy()[test, None])  # [n_test, n_models]
            for k, model in enumerate(e_eip.columns):
                ok = np.isfinite(err[:, k])
                rows.append(
                    {
                        "split": s,
                        "align": mode,
                        "model_id": model,
                        "name": spec_for(model).name,
                        keys.MAE_CONFIG: float(err[ok, k].mean()) if ok.any() else np.nan,
                        keys.MAE_ATOM: float((err[ok, k] / n[test][ok]).mean())
                        if ok.any()
                        else np.nan,
                        N_TEST: int(ok.sum()),
                        N_NAN: int((~ok).sum()),
                    }
                )
    tidy = pd.DataFrame(rows)
    tidy.attrs["offsets"] = offsets
    return tidy


def summarize(tidy: pd.DataFrame, *, ddof: int = 1) -> pd.DataFrame:
    """Mean and std over splits per (align, model): columns ``<metric>_mean``/``_std`` (and the
    summed n_nan). ``ddof=1``: the sample std over the splits, as in Tables 3-7."""
    g = tidy.groupby(["align", "model_id", "name"], sort=False)
    out = pd.DataFrame(
        {
            f"{keys.MAE_CONFIG}_mean": g[keys.MAE_CONFIG].mean(),
            f"{keys.MAE_CONFIG}_std": g[keys.MAE_CONFIG].std(ddof=ddof),
            f"{keys.MAE_ATOM}_mean": g[keys.MAE_ATOM].mean(),
            f"{keys.MAE_ATOM}_std": g[keys.MAE_ATOM].std(ddof=ddof),
            N_NAN: g[N_NAN].sum(),
            "n_splits": g.size(),
        }
    )
    return out.reset_index()


def table2(
    tidy: pd.DataFrame, *, align: Align = "species", digits: int = 4, ddof: int = 1
) -> pd.DataFrame:
    """Paper-style Table 2 for one alignment mode: EIP name -> "Config" (eV) and "Atom" (eV/atom)
    as "mean (std)" over the splits, the std being the sample std (ddof=1) as in Tables 3-7 (the
    table's ``attrs["caption"]`` says so; its HTML shows it)."""
    s = summarize(tidy[tidy["align"] == align], ddof=ddof)

    def fmt(mean: pd.Series, std: pd.Series) -> list[str]:
        return [f"{m:.{digits}f} ({d:.{digits}f})" for m, d in zip(mean, std, strict=True)]

    table = pd.DataFrame(
        {
            "Config": fmt(s[f"{keys.MAE_CONFIG}_mean"], s[f"{keys.MAE_CONFIG}_std"]),
            "Atom": fmt(s[f"{keys.MAE_ATOM}_mean"], s[f"{keys.MAE_ATOM}_std"]),
            "NaN": s[N_NAN].to_numpy(),
        },
        index=pd.Index(s["name"], name="EIP"),
    )
    n = int(s["n_splits"].max()) if len(s) else 0
    table.attrs["caption"] = (f"Table 2 (align={align!r}): test MAE, Config in eV, Atom in eV/atom, mean "
                              f"({'sample std, ddof=1' if ddof == 1 else f'std, ddof={ddof}'}) over {n} split(s)")
    return table


def parity_figure(
    configs: Sequence[Atoms],
    model_ids: Sequence[str] | None = None,
    *,
    energies_eip: pd.DataFrame | None = None,
    energies_dft: pd.Series | None = None,
    aligner: SpeciesAligner | None = None,
    title: str = "EIP vs DFT energy",
) -> go.Figure:
    """Plotly parity plot: EIP vs DFT energy per atom (eV/atom), one trace per EIP.

    ``aligner``: a fitted :class:`SpeciesAligner` to plot aligned EIP energies (fit it on
    training configs; plot test configs). NaN energies are left out.
    """
    import plotly.graph_objects as go

    ids = config_ids(configs)
    e_eip = eip_energies(configs, model_ids) if energies_eip is None else energies_eip.reindex(ids)
    if model_ids is not None:
        e_eip = e_eip[list(model_ids)]
    if aligner is not None:
        e_eip = aligner.transform(configs, e_eip)
    e_dft = dft_energies(configs) if energies_dft is None else energies_dft.reindex(ids)
    n = n_atoms(configs).to_numpy()
    x = e_dft.to_numpy() / n
    fig = go.Figure()
    lo, hi = np.inf, -np.inf
    for model in e_eip.columns:
        y = e_eip[model].to_numpy() / n
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            lo, hi = min(lo, x[ok].min(), y[ok].min()), max(hi, x[ok].max(), y[ok].max())
        fig.add_trace(
            go.Scattergl(
                x=x[ok],
                y=y[ok],
                mode="markers",
                name=spec_for(model).name,
                text=list(ids[ok]),
                marker={"size": 4},
            )
        )
    if np.isfinite(lo):
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="y = x",
                line={"dash": "dash", "color": "gray"},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="DFT energy (eV/atom)",
        yaxis_title="EIP energy (eV/atom)"
        + (" (aligned)" if aligner is not None and aligner.method != "none" else ""),
    )
    return fig


def force_errors(configs: Sequence[Atoms], model_ids: Sequence[str]) -> pd.DataFrame:
    """Each EIP's forces against DFT's, one row per EIP (forces need no alignment).

    Over the configs that have DFT forces (``arrays[keys.FORCES_DFT]``) and this EIP's forces
    (labelled with ``label_dataset(..., forces=True)``; a config where the EIP failed is counted
    in ``n_failed`` and left out): ``keys.MAE_FORCE`` and ``keys.RMSE_FORCE`` per force component
    (eV/Angstrom), ``keys.MEAN_ABS_FORCE_DFT`` (eV/Angstrom, the scale the errors compare with,
    over the same configs), ``n_configs`` and ``n_failed``.

    Raises:
        KeyError: a config has DFT forces but was not labelled with an EIP's forces.
    """
    from .labelling import eip_forces

    with_dft = [a for a in configs if keys.FORCES_DFT in a.arrays]
    rows = []
    for model_id in model_ids:
        errors, reference, failed = [], [], 0
        for atoms in with_dft:
            forces = eip_forces(atoms, model_id)
            if forces is None or not np.isfinite(forces).all():
                failed += 1
                continue
            dft = np.asarray(atoms.arrays[keys.FORCES_DFT], dtype=float)
            errors.append((np.asarray(forces, dtype=float) - dft).ravel())
            reference.append(dft.ravel())
        err = np.concatenate(errors) if errors else np.array([np.nan])
        ref = np.concatenate(reference) if reference else np.array([np.nan])
        rows.append({"model_id": model_id, "name": spec_for(model_id).name,
                     keys.MAE_FORCE: float(np.mean(np.abs(err))), keys.RMSE_FORCE: float(np.sqrt(np.mean(err**2))),
                     keys.MEAN_ABS_FORCE_DFT: float(np.mean(np.abs(ref))), "n_configs": len(errors), "n_failed": failed})
    return pd.DataFrame(rows)

