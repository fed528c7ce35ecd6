"""Table 5 confidence groups and the Table 6 classifier audit on hand-built selections."""

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from eiplab import keys
from eiplab.analysis import audit
from eiplab.analysis import results as res
from eiplab.data import ConfigSet
from eiplab.strategies.confidence import confidence_groups
from eiplab.workflows import RunSpec, specs_for


def _selection(confidence, selected, model_id=None, label=None, n_atoms=None):
    n = len(confidence)
    return pd.DataFrame(
        {
            "eip_class": [0] * n,
            "model_id": model_id or ["A"] * n,
            "confidence": confidence,
            "label_energy": label if label is not None else [0.0] * n,
            keys.N_ATOMS: n_atoms or [2] * n,
            "selected": selected,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name=keys.CONFIG_ID),
    )


def _pool(energies, phases=None):
    configs = []
    for i, e in enumerate(energies):
        a = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]])
        a.info[keys.CONFIG_ID] = f"c{i}"
        a.info[keys.PHASE] = (phases or ["p"] * len(energies))[i]
        if e is not None:
            a.info[keys.ENERGY_DFT] = e
        configs.append(a)
    return ConfigSet(configs, name="pool")


def test_confidence_groups_split_selected_configs_at_the_quantiles():
    conf = np.linspace(0.1, 0.9, 9)
    selected = [True] * 9
    selected[4] = False  # 0.5: not selected, so in no group
    groups = confidence_groups(_selection(conf, selected))
    assert "c4" not in groups.index and len(groups) == 8
    kept = conf[np.array(selected)]
    lo, hi = np.quantile(kept, [0.33, 0.66])
    for cid, g in groups.items():
        c = conf[int(cid[1:])]
        assert g == ("low" if c < lo else "high" if c > hi else "medium")
    assert set(groups) == {"low", "medium", "high"}


def test_confidence_groups_refuse_empty_selection_and_bad_quantiles():
    with pytest.raises(ValueError, match="selected no pool config"):
        confidence_groups(_selection([0.5, 0.6], [False, False]))
    with pytest.raises(ValueError, match="quantiles"):
        confidence_groups(_selection([0.5, 0.6], [True, True]), quantiles=(0.7, 0.3))


def test_outlier_bands_in_units_of_tau():
    errors = [0.05, 0.1, 0.15, 0.2, 0.35, 0.5, 0.9]
    assert list(audit.outlier_band(errors, tau=0.1)) == ["ok", "ok", "mild", "normal", "normal", "severe", "severe"]
    assert list(audit.outlier_band([0.15], tau=0.1, bands=(1.0, 1.2, 3.0))) == ["normal"]
    with pytest.raises(ValueError, match="increasing"):
        audit.outlier_band(errors, bands=(2.0, 1.0, 5.0))


def test_audit_counts_outliers_and_skips_configs_without_dft():
    # 2-atom configs; label errors per atom: 0, 0.15 (mild), 0.3 (normal), 0.8 (severe), unknown DFT, not selected
    dft = [-10.0, -10.0, -10.0, -10.0, None, -10.0]
    label = [-10.0, -10.3, -10.6, -11.6, -10.0, np.nan]
    sel = _selection([0.9] * 6, [True, True, True, True, True, False], label=label)
    row = audit.audit_selection(sel, _pool(dft), tau=0.1)
    assert row["n_selected"] == 5 and row["n_audited"] == 4 and row["n_pool_with_dft"] == 5
    assert (row["n_mild"], row["n_normal"], row["n_severe"], row["n_outliers"]) == (1, 1, 1, 3)
    assert row["accuracy"] == pytest.approx(0.25)


def test_audit_class_agreement_against_best_eip_in_hindsight():
    pool = _pool([-10.0, -10.0, -10.0])
    aligned = pd.DataFrame({"A": [-10.0, -12.0, -10.1], "B": [-12.0, -10.0, -10.0]}, index=["c0", "c1", "c2"])
    sel = _selection([0.9] * 3, [True] * 3, label=[-10.0, -12.0, -10.1])  # class 0 (A) everywhere
    row = audit.audit_selection(sel, pool, aligned, tau=0.1)
    assert row["class_agreement"] == pytest.approx(1 / 3)  # best: A, B, B


def test_audit_refuses_a_selection_from_another_pool():
    sel = _selection([0.9], [True])
    sel.index = pd.Index(["elsewhere"], name=keys.CONFIG_ID)
    with pytest.raises(ValueError, match="not in the pool"):
        audit.audit_selection(sel, _pool([-10.0]))


def test_picks_by_phase_rows_sum_to_one_and_worst_picks_sorted():
    pool = _pool([-10.0] * 4, phases=["a", "a", "b", "b"])
    sel = _selection([0.9] * 4, [True, False, True, True], model_id=["A", "none", "B", "A"],
                     label=[-10.0, np.nan, -10.4, -11.0])
    frac = audit.picks_by_phase(sel, pool, names={"A": "EIP A"})
    np.testing.assert_allclose(frac.sum(axis=1), 1.0)
    assert frac.loc["a", "EIP A"] == 0.5 and frac.loc["a", "none"] == 0.5
    every = audit.picks_by_phase(sel, pool, names={"A": "EIP A"}, classes=["A", "B", "C", "none"])
    assert list(every.columns) == ["EIP A", "B", "C", "none"] and (every["C"] == 0).all()
    worst = audit.worst_picks(sel, pool, n=2)
    assert list(worst.index) == ["c3", "c2"]
    assert worst[audit.ERROR].iloc[0] == pytest.approx(0.5)


def test_table6_means_over_splits():
    audits = pd.DataFrame({"model": ["m", "m"], "n_mild": [1, 3], "n_normal": [0, 2], "n_severe": [0, 0], "n_outliers": [1, 5],
                           "n_selected": [10, 20], "n_pool": [50, 50], "accuracy": [0.9, 0.75]})
    table = audit.table6(audits)
    assert table.loc["m", "#Mild"] == 2 and table.loc["m", "#Selected"] == 15 and table.loc["m", "accuracy %"] == 82.5


def test_runspec_groups_and_table5_rows():
    assert RunSpec("soapnet", "la", 0, group="high").tag == "la{high}"
    with pytest.raises(ValueError, match="needs strategy 'la'"):
        RunSpec("soapnet", "mp", 0, group="low")
    with pytest.raises(ValueError, match="unknown confidence group"):
        RunSpec("soapnet", "la", 0, group="top")
    specs = specs_for(["soapnet"], (0, 1), ["baseline", "la"], confidence=True)
    assert len(specs) == 2 * 2 + 3 * 2
    rows = []
    for spec in specs:
        rec = {"model": spec.model, "strategy": spec.strategy, "seed": spec.seed, "subset": spec.subset,
               "tukey": spec.tukey, "group": spec.group, "tag": spec.tag}
        rec[res.TEST_CONFIG] = {"baseline": 1.0, "la": 0.8}[spec.strategy] + 0.1 * spec.seed + (0.05 if spec.group == "high" else 0)
        rec[res.TEST_ATOM] = rec[res.TEST_CONFIG] / 10
        rows.append(rec)
    results = pd.DataFrame(rows)
    table = res.table5(results)
    assert list(table.index.get_level_values("confidence")) == ["baseline", "low", "medium", "high", "all selected (LA)"]
    assert table.loc[("soapnet", "high"), "Config (eV)"].startswith("0.9000")
    # group runs stay out of Tables 3 and 7
    assert len(res.table3(results)) == 2
    assert ("+LA", "all") in res.table7(results).index
    assert res.table7(results).loc[("+LA", "all"), ("Config (eV)", "soapnet")].startswith("0.8500")
    fig = res.confidence_figure(results)
    assert fig.data and "over 2 splits" in fig.layout.title.text
    assert "one split" in res.confidence_figure(results[results["seed"] == 0]).layout.title.text


def test_save_figure_keeps_html_when_png_export_fails(tmp_path):
    import plotly.express as px

    from eiplab.analysis.tables import save_figure

    fig = px.scatter(x=[0, 1], y=[1, 0])

    def broken(*args, **kwargs):
        raise RuntimeError("no browser")

    fig.write_image = broken
    with pytest.warns(UserWarning, match="PNG export of figure 'f' failed"):
        path = save_figure(fig, tmp_path, "f", png=True)
    assert path.exists() and not (tmp_path / "f.png").exists()
    assert save_figure(fig, None, "f") is None
    save_figure(fig, tmp_path / "no-png", "g", png=False)
    assert [p.name for p in (tmp_path / "no-png").iterdir()] == ["g.html"]


def test_mean_std_table_marks_a_single_repeat():
    from eiplab.analysis.tables import mean_std_table

    df = pd.DataFrame({"model": ["a", "a", "b"], "mae": [1.0, 2.0, 0.5]})
    table = mean_std_table(df, ["model"], ["mae"], decimals=2)
    assert table.loc["a", "mae"] == "1.50 (0.71)"  # sample std over two repeats
    assert table.loc["b", "mae"] == "0.50 (n=1)"  # no std from one repeat, and it says so


def test_mean_std_table_marks_a_row_with_fewer_repeats_than_the_others():
    from eiplab.analysis.tables import mean_std_table

    df = pd.DataFrame({"strategy": ["base"] * 3 + ["la"] * 2, "mae": [1.0, 2.0, 3.0, 1.0, 3.0]})
    table = mean_std_table(df, ["strategy"], ["mae"], decimals=2)
    assert table.loc["base", "mae"] == "2.00 (1.00)"  # the full row: 3 of 3 repeats
    assert table.loc["la", "mae"] == "2.00 (1.41, n=2)"  # 2 of 3: a grid still running says so
