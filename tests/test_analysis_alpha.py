"""Alpha sensitivity of LA runs: tables and figure from hand-built run records."""

import pandas as pd
import pytest

from eiplab.analysis.alpha import alpha_choice, alpha_figure, alpha_runs, alpha_sensitivity

TEST, VAL = "test_mae_config", "val_mae_config"


def la_run(seed: int, val: dict, test: dict) -> dict:
    chosen = min(val, key=val.get)
    table = [{"alpha": a, VAL: val[a], TEST: test[a], "test_mae_atom": test[a] / 8, "effective_weight": a / 4,
              "n_aug": 100, "chosen": a == chosen} for a in val]
    return {"model": "schnet", "tag": "la", "seed": seed, "alpha": chosen, TEST: test[chosen], "alpha_table": table}


@pytest.fixture
def results():
    runs = [
        la_run(0, val={0.1: 0.40, 1.0: 0.45}, test={0.1: 0.50, 1.0: 0.44}),  # validation picks 0.1, test prefers 1
        la_run(1, val={0.1: 0.42, 1.0: 0.41}, test={0.1: 0.46, 1.0: 0.42}),  # both agree on 1
        {"model": "schnet", "tag": "baseline", "seed": 0, TEST: 0.50, "alpha_table": float("nan")},
        {"model": "schnet", "tag": "baseline", "seed": 1, TEST: 0.46, "alpha_table": float("nan")},
        {"model": "schnet", "tag": "la{low}", "seed": 0, TEST: 0.47,  # a group run tried one alpha: left out
         "alpha_table": [{"alpha": 0.1, VAL: 0.4, TEST: 0.47, "chosen": True}]},
    ]
    return pd.DataFrame(runs)


def test_alpha_tables_by_hand(results):
    assert len(alpha_runs(results)) == 4 and set(alpha_runs(results)["tag"]) == {"la"}
    table = alpha_sensitivity(results).loc[("schnet", "la")]
    assert table.loc[1.0, "test Config (eV)"] == "0.4300 (0.0141)"
    assert table.loc[1.0, "test vs baseline (%)"] == pytest.approx(100 * (0.43 / 0.48 - 1), abs=0.05)
    assert list(table["chosen on (splits)"]) == [1, 1] and list(table["splits"]) == [2, 2]
    choice = alpha_choice(results).loc[("schnet", "la")]
    assert choice.loc[0, "chosen alpha"] == 0.1 and choice.loc[0, "best alpha on test"] == 1.0
    assert choice.loc[0, "cost of choice (eV)"] == pytest.approx(0.06)
    assert choice.loc[0, "rank of chosen on test"] == 2
    assert choice.loc[1, "cost of choice (eV)"] == 0 and choice.loc[1, "rank of chosen on test"] == 1


def test_alpha_figure_marks_the_chosen_alpha(results):
    fig = alpha_figure(results)
    split0_test = next(t for t in fig.data if t.name == "split 0, test")
    assert list(split0_test.x) == [0.1, 1.0] and list(split0_test.marker.size) == [12, 5]
    baseline = next(t for t in fig.data if t.name.startswith("baseline"))
    assert list(baseline.y) == pytest.approx([0.48, 0.48])


def test_no_alpha_grid_gives_nothing_and_a_damaged_table_names_the_run(results):
    only_baseline = results[results["tag"] == "baseline"]
    assert alpha_runs(only_baseline).empty and alpha_figure(only_baseline) is None
    assert alpha_sensitivity(only_baseline).empty and alpha_choice(only_baseline).empty
    damaged = results.copy()
    damaged.at[1, "alpha_table"] = [dict(row, chosen=True) for row in damaged.at[1, "alpha_table"]]
    with pytest.raises(ValueError, match="schnet la seed 1: 2 alphas flagged"):
        alpha_choice(damaged)


def test_tau_sensitivity_table_by_hand():
    import pandas as pd

    from eiplab.analysis.results import tau_sensitivity

    rows = [{"model": "soapnet", "tag": "baseline", "seed": s, "test_mae_config": 1.0, "test_mae_atom": 0.1} for s in (0, 1)]
    rows += [{"model": "soapnet", "tag": "la", "seed": s, "test_mae_config": v, "test_mae_atom": 0.1,
              "tau_setting": setting, "tau": t, "n_aug": n}
             for setting, vals, t, n in (("auto", (0.8, 0.9), 0.006, 100), (0.1, (1.1, 1.1), 0.1, 300))
             for s, v in zip((0, 1), vals, strict=True)]
    table = tau_sensitivity(pd.DataFrame(rows))
    assert table.loc[("soapnet", "auto"), "change vs baseline %"] == -15.0
    assert table.loc[("soapnet", "0.1"), "change vs baseline %"] == 10.0
    assert table.loc[("soapnet", "auto"), "tau per split (eV/atom)"] == "0.006 / 0.006"
    assert table.loc[("soapnet", "0.1"), "EIP-labelled configs (mean)"] == 300


def _la_records(selector: str | None, values, tau_setting="auto") -> list[dict]:
    rows = [{"model": "soapnet", "tag": "baseline", "strategy": "baseline", "seed": s, "test_mae_config": 1.0,
             "test_mae_atom": 0.1, "dataset": "d", "epochs": 30} for s in (0, 1)]
    for s, v in zip((0, 1), values, strict=True):
        rows.append({"model": "soapnet", "tag": "la", "strategy": "la", "seed": s, "test_mae_config": v,
                     "test_mae_atom": 0.1, "dataset": "d", "epochs": 30, "tau_setting": tau_setting,
                     **({"selector": selector} if selector else {})})
    return rows


def test_tables_keep_la_runs_of_two_selectors_apart_and_never_drop_a_different_run():
    import pandas as pd

    from eiplab.analysis.results import table3, table4

    # a classifier grid (records from before runs named their selector) and an error-regression grid,
    # each with its own (identical) baseline: Table 3 gets both LA rows, not one of them silently
    both = pd.DataFrame(_la_records(None, (0.8, 0.9)) + _la_records("error-regression", (0.5, 0.7)))
    table = table3(both)
    assert table.loc[("soapnet", "la"), "Config (eV)"].startswith("0.8500")
    assert table.loc[("soapnet", "la (error-regression)"), "Config (eV)"].startswith("0.6000")
    assert table.loc[("soapnet", "baseline"), "Config (eV)"].startswith("1.0000")
    # a table that would average them refuses
    notukey = pd.DataFrame(_la_records(None, (0.8, 0.9)) + _la_records("error-regression", (0.5, 0.7))
                           + [{**r, "tag": "la-notukey"} for r in _la_records(None, (1.2, 1.3))[2:]])
    with pytest.raises(ValueError, match=r"Table 4: the LA runs come from different selectors"):
        table4(notukey)
    # two grids' records of one run that differ in a setting are refused, not one of them kept
    other_tau = pd.DataFrame(_la_records(None, (0.8, 0.9)) + _la_records(None, (0.5, 0.7), tau_setting=0.1))
    with pytest.raises(ValueError, match=r"different soapnet la runs of split 0 \(tau_setting"):
        table3(other_tau)


def test_a_record_without_a_selector_gets_it_from_the_selection_it_was_trained_on(tmp_path):
    import json

    from eiplab.provenance import MADE_WITH_FILE, fingerprint
    from eiplab.workflows import RunSpec, RunStore, load_records
    from eiplab.workflows.spec import la_strategy

    store = RunStore(tmp_path)
    regression = {"kind": "la-classifier", "selector": "error-regression"}
    # seed 0: trained on the error regression's selection; seed 1: on a classifier's; seed 2: on a
    # classifier's selection that an error-regression grid has since replaced in the shared folder
    for seed, made, trained_on in ((0, regression, regression), (1, {"kind": "la-classifier"}, {"kind": "la-classifier"}),
                                   (2, regression, {"kind": "la-classifier", "tau": 0.1})):
        spec = RunSpec("schnet", "la", seed)
        store.write_result(spec, {"model": "schnet", "tag": "la", "strategy": "la", "subset": "all", "seed": seed})
        (store.run_folder(spec) / MADE_WITH_FILE).write_text(json.dumps({"selection": fingerprint(trained_on)}))
        folder = store.classifier_folder("schnet", "all", seed)
        folder.mkdir(parents=True)
        (folder / MADE_WITH_FILE).write_text(json.dumps(made))
    assert dict(zip(store.results()["seed"], store.results()["selector"], strict=True)) == {
        0: "error-regression", 1: "classifier", 2: "classifier"}
    exported = store.export(tmp_path / "records")
    assert sorted(json.loads(p.read_text())["selector"] for p in exported) == [
        "classifier", "classifier", "error-regression"]
    # records exported before runs named their selector: the classifier summary beside them does
    old = tmp_path / "old"
    old.mkdir()
    (old / "schnet-la-seed0.json").write_text(json.dumps({"model": "schnet", "tag": "la", "strategy": "la", "seed": 0}))
    (old / "classifier-schnet-all-seed0.json").write_text(json.dumps({"selector": "error-regression"}))
    assert list(load_records(old)["selector"]) == ["error-regression"]
    # an LA run is known by its strategy, else by its tag's base; nothing else counts as LA
    assert la_strategy({"strategy": float("nan"), "tag": "la{low}"}) and la_strategy({"tag": "mp+la[best2]"})
    assert not la_strategy({"strategy": "delta+mp", "tag": "delta+mp"}) and not la_strategy({"tag": "baseline"})


def test_a_row_from_fewer_splits_is_compared_with_the_baseline_on_the_same_splits(results):
    """A grid still running: alpha 10 finished on split 1 only. Its change is measured against
    split 1's baseline (0.46 eV), not the mean over both splits (0.48 eV)."""
    partial = la_run(1, val={10.0: 0.50, 0.1: 0.60}, test={10.0: 0.414, 0.1: 0.70})
    partial["tag"] = "mp+la"
    table = alpha_sensitivity(pd.concat([results, pd.DataFrame([partial])], ignore_index=True))
    assert table.loc[("schnet", "mp+la", 10.0), "test vs baseline (%)"] == pytest.approx(-10.0)
    assert table.loc[("schnet", "mp+la", 10.0), "splits"] == 1
    no_baseline = results[results["seed"] != 1]
    no_baseline = pd.concat([no_baseline, pd.DataFrame([partial])], ignore_index=True)
    assert pd.isna(alpha_sensitivity(no_baseline).loc[("schnet", "mp+la", 10.0), "test vs baseline (%)"])
