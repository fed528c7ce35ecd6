"""EIP benchmark (Table 2) on synthetic data whose MAEs are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from eiplab import keys
from eiplab.eips import eip_benchmark, parity_figure, summarize, table2

N = [1, 2, 3, 4, 1, 2, 3, 4, 2, 5]
# m2's error per config (eV); NaN = the EIP failed there.
D2 = [0.2, -0.4, 0.6, np.nan, 1.0, -2.0, 3.0, np.nan, 7.0, 9.0]


def dataset() -> list[Atoms]:
    """10 Si configs: E_dft = -5 N; m1 = E_dft + N (1 eV/atom off); m2 = E_dft + D2."""
    configs = []
    for k, (n, d2) in enumerate(zip(N, D2, strict=True)):
        a = Atoms("Si" * n, positions=np.arange(3 * n).reshape(n, 3) * 2.0)
        e = -5.0 * n
        a.info[keys.CONFIG_ID] = f"c{k}"
        a.info[keys.ENERGY_DFT] = e
        a.info[keys.ENERGY_EIP] = {"m1": e + n, "m2": e + d2}
        configs.append(a)
    return configs


SPLIT_A = {f"c{k}": keys.TRAIN if k < 4 else keys.TEST for k in range(8)} | {
    "c8": keys.VAL,
    "c9": keys.POOL,
}
SPLIT_B = {f"c{k}": keys.TEST if k < 4 else keys.TRAIN for k in range(8)} | {
    "c8": keys.VAL,
    "c9": keys.POOL,
}


def test_mae_values_known_by_hand():
    tidy = eip_benchmark(dataset(), [SPLIT_A, SPLIT_B])
    assert len(tidy) == 2 * 2 * 2  # splits x align modes x models
    assert set(tidy.columns) >= {
        "split",
        "align",
        "model_id",
        "name",
        keys.MAE_CONFIG,
        keys.MAE_ATOM,
        "n_test",
        "n_nan",
    }
    raw = tidy[tidy["align"] == "none"].set_index(["split", "model_id"])
    assert raw.loc[(0, "m1"), keys.MAE_CONFIG] == pytest.approx(2.5)
    assert raw.loc[(0, "m1"), keys.MAE_ATOM] == pytest.approx(1.0)
    assert raw.loc[(0, "m2"), keys.MAE_CONFIG] == pytest.approx(2.0)  # |1|, |-2|, |3|
    assert raw.loc[(0, "m2"), keys.MAE_ATOM] == pytest.approx(1.0)
    assert raw.loc[(0, "m2"), "n_test"] == 3 and raw.loc[(0, "m2"), "n_nan"] == 1
    assert raw.loc[(1, "m2"), keys.MAE_CONFIG] == pytest.approx(0.4)  # |0.2|, |-0.4|, |0.6|
    assert raw.loc[(1, "m2"), keys.MAE_ATOM] == pytest.approx(0.2)
    # Aligned: m1 is off by exactly 1 eV/atom, which the fitted offset removes.
    aligned = tidy[tidy["align"] == "species"].set_index(["split", "model_id"])
    assert aligned.loc[(0, "m1"), keys.MAE_CONFIG] == pytest.approx(0.0, abs=1e-6)
    assert tidy.attrs["offsets"][0]["species"]["m1"]["Si"] == pytest.approx(-1.0, abs=1e-6)
    assert tidy.attrs["offsets"][0]["none"]["m1"]["Si"] == 0.0


def test_summary_and_paper_table():
    tidy = eip_benchmark(dataset(), [SPLIT_A, SPLIT_B], align=["none"])
    summary = summarize(tidy).set_index("model_id")
    assert summary.loc["m2", f"{keys.MAE_CONFIG}_mean"] == pytest.approx(1.2)
    # the sample std over the 2 splits (ddof=1, as in Tables 3-7): sqrt(2) x the population std
    assert summary.loc["m2", f"{keys.MAE_CONFIG}_std"] == pytest.approx(0.8 * np.sqrt(2))
    assert summary.loc["m2", f"{keys.MAE_ATOM}_mean"] == pytest.approx(0.6)
    assert summary.loc["m2", f"{keys.MAE_ATOM}_std"] == pytest.approx(0.4 * np.sqrt(2))
    table = table2(tidy, align="none")
    assert table.shape == (2, 3)
    assert list(table.columns) == ["Config", "Atom", "NaN"]
    assert table.loc["m1", "Config"] == "2.5000 (0.0000)"
    assert table.loc["m2", "Config"] == "1.2000 (1.1314)"
    assert table.loc["m2", "Atom"] == "0.6000 (0.5657)"
    assert table.loc["m2", "NaN"] == 2
    assert "sample std, ddof=1" in table.attrs["caption"] and "2 split(s)" in table.attrs["caption"]


def test_saved_tables_say_what_the_brackets_hold(tmp_path):
    from eiplab.analysis.tables import save_table

    table = table2(eip_benchmark(dataset(), [SPLIT_A, SPLIT_B], align=["none"]), align="none")
    save_table(table, tmp_path, "table2")
    assert "<caption>Table 2 (align=&#x27;none&#x27;): test MAE" in (tmp_path / "table2.html").read_text()


def test_val_pool_and_test_energies_do_not_move_the_fit():
    base = eip_benchmark(dataset(), [SPLIT_A, SPLIT_B])
    changed = dataset()
    changed[8].info[keys.ENERGY_DFT] += 50.0  # val
    changed[9].info[keys.ENERGY_DFT] -= 50.0  # pool
    other = eip_benchmark(changed, [SPLIT_A, SPLIT_B])
    np.testing.assert_allclose(other[keys.MAE_CONFIG], base[keys.MAE_CONFIG])
    changed[5].info[keys.ENERGY_DFT] += 10.0  # test config of split A only
    moved = eip_benchmark(changed, [SPLIT_A])
    assert moved.attrs["offsets"][0] == base.attrs["offsets"][0]
    assert not np.allclose(moved[keys.MAE_CONFIG], base[base["split"] == 0][keys.MAE_CONFIG])


def test_parity_figure_one_trace_per_eip():
    configs = dataset()
    fig = parity_figure(configs, ["m1", "m2"])
    names = [t.name for t in fig.data]
    assert names[:2] == ["m1", "m2"] and names[-1] == "y = x"
    assert len(fig.data[0].x) == 10 and len(fig.data[1].x) == 8  # NaN left out
    np.testing.assert_allclose(fig.data[0].y, np.full(10, -4.0))
    assert "eV/atom" in fig.layout.xaxis.title.text


def test_force_errors_known_by_hand():
    from eiplab.eips import force_errors

    def cell(cid: str, dft: list, eips: dict) -> Atoms:
        atoms = Atoms("Si2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]])
        atoms.info[keys.CONFIG_ID] = cid
        atoms.arrays[keys.FORCES_DFT] = np.array(dft, dtype=float)
        atoms.info[keys.FORCES_EIP] = {m: None if f is None else np.array(f, dtype=float) for m, f in eips.items()}
        return atoms

    dft = [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    configs = [cell("a", dft, {"good": dft, "off": [[2.0, 0, 0], [-2.0, 0, 0]]}),
               cell("b", dft, {"good": None, "off": [[1.0, 3.0, 0], [-1.0, -3.0, 0]]})]
    table = force_errors(configs, ["good", "off"]).set_index("model_id")
    assert table.loc["good", keys.MAE_FORCE] == 0.0 and table.loc["good", "n_failed"] == 1
    # "off": errors (1,0,0,-1,0,0) on a and (0,3,0,0,-3,0) on b: mean |e| = 8/12, rms = sqrt(20/12)
    assert table.loc["off", keys.MAE_FORCE] == pytest.approx(8 / 12)
    assert table.loc["off", keys.RMSE_FORCE] == pytest.approx(np.sqrt(20 / 12))
    assert table.loc["off", keys.MEAN_ABS_FORCE_DFT] == pytest.approx(1 / 3)
    assert table.loc["off", "n_configs"] == 2
    unlabelled = cell("c", dft, {})
    with pytest.raises(KeyError, match="no forces of EIP good"):
        force_errors([unlabelled], ["good"])
