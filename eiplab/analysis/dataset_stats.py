"""Dataset overview: counts, atoms per config, phases and energy distributions (plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from .. import keys
from ..data import ConfigSet


def overview(configs: ConfigSet, split: pd.Series | None = None) -> pd.DataFrame:
    """One row per phase (and split, when given): configs, atoms, labelled share, E/N stats (eV/atom)."""
    df = configs.summary()
    df["labelled"] = configs.labelled()  # DFT that may be trained on (an audit subset's is hidden)
    by = [keys.PHASE]
    if split is not None:
        df["split"] = split.reindex(df[keys.CONFIG_ID]).to_numpy()
        by = ["split", keys.PHASE]
    g = df.groupby(by)
    out = pd.DataFrame(
        {
            "configs": g.size(),
            "atoms": g[keys.N_ATOMS].sum(),
            "atoms/config (min-max)": g[keys.N_ATOMS].agg(lambda s: f"{s.min()}-{s.max()}"),
            "labelled": g["labelled"].sum().astype(int),
            "E/N mean (eV/atom)": g["energy_dft_per_atom"].mean(),
            "E/N std (eV/atom)": g["energy_dft_per_atom"].std(),
        }
    )
    total = pd.DataFrame(
        {
            "configs": [len(df)],
            "atoms": [df[keys.N_ATOMS].sum()],
            "atoms/config (min-max)": [f"{df[keys.N_ATOMS].min()}-{df[keys.N_ATOMS].max()}"],
            "labelled": [int(df["labelled"].sum())],
            "E/N mean (eV/atom)": [df["energy_dft_per_atom"].mean()],
            "E/N std (eV/atom)": [df["energy_dft_per_atom"].std()],
        },
        index=pd.MultiIndex.from_tuples([("all",) * len(by)], names=by) if len(by) > 1 else pd.Index(["all"], name=by[0]),
    )
    return pd.concat([out, total])


def energy_histogram(configs: ConfigSet, split: pd.Series | None = None) -> go.Figure:
    """Histogram of DFT energy per atom (eV/atom), coloured by phase or split."""
    df = configs.summary()
    color = keys.PHASE
    if split is not None:
        df["split"] = split.reindex(df[keys.CONFIG_ID]).to_numpy()
        color = "split"
    fig = px.histogram(
        df, x="energy_dft_per_atom", color=color, nbins=80, barmode="overlay", opacity=0.7,
        labels={"energy_dft_per_atom": "E_DFT / N (eV/atom)"}, title=f"{configs.name}: DFT energy per atom",
    )
    return fig


def atoms_per_config_figure(configs: ConfigSet) -> go.Figure:
    """Bar chart of the number of configs per atom count, stacked by phase."""
    df = configs.summary().groupby([keys.N_ATOMS, keys.PHASE]).size().rename("configs").reset_index()
    return px.bar(
        df, x=keys.N_ATOMS, y="configs", color=keys.PHASE,
        labels={keys.N_ATOMS: "atoms per config"}, title=f"{configs.name}: atoms per configuration",
    )


def volume_energy_figure(configs: ConfigSet) -> go.Figure:
    """Scatter of E/N (eV/atom) against volume per atom (Angstrom^3) for periodic configs."""
    df = configs.summary()
    df["volume_per_atom"] = [a.get_volume() / len(a) if a.pbc.all() else float("nan") for a in configs]
    return px.scatter(
        df, x="volume_per_atom", y="energy_dft_per_atom", color=keys.PHASE, hover_data=[keys.CONFIG_ID, "formula"],
        labels={"volume_per_atom": "V / N (Angstrom^3/atom)", "energy_dft_per_atom": "E_DFT / N (eV/atom)"},
        title=f"{configs.name}: energy-volume map",
    )
