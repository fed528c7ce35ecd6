"""Strategies end to end on a tiny Si set: classifier, selection, LA, MP, MP+LA, the grid.

Tiny networks (width 16, 2 layers), 2 epochs, 2 fast KIM models: behaviour, not accuracy.
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_si import FAST_SI_EIPS, TINY_NET

from eiplab import keys
from eiplab.data import load_dataset, paper_splits
from eiplab.models import load_model
from eiplab.strategies.classifier import select_pool, train_classifier
from eiplab.strategies.confidence import confidence_groups
from eiplab.strategies.experiment import prepare_experiment
from eiplab.strategies.pretrain import fit_scaler, for_finetuning, pretrain
from eiplab.training import BEST_MODEL_FILE
from eiplab.workflows import (
    RunStore,
    grid_data,
    grid_from_profile,
    grid_jobs,
    is_choice,
    needed,
    run_grid,
    specs_for,
)

pytest.importorskip("kimpy")
pytestmark = pytest.mark.kim

EIPS = FAST_SI_EIPS
TINY = TINY_NET


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    configs = load_dataset("si-pyxtal", limit=120, seed=3)
    splits = paper_splits(configs, seeds=(0,))
    exp = prepare_experiment(configs, splits[0], EIPS, cache=cache, progress=False)
    grid = grid_from_profile("quick", configs, models=["schnet"], **TINY)
    grid.train = replace(grid.train, epochs=2, progress=False)
    return configs, splits, exp, grid


def test_alignment_uses_train_only(setting):
    _, _, exp, _ = setting
    assert exp.aligner.n_fit_.max() == len(exp.parts[keys.TRAIN])


def test_selection_never_picks_an_invalid_energy(setting):
    _, _, exp, grid = setting
    clf = train_classifier(exp, grid.model_configs["schnet"], grid.train)
    assert 0.0 <= clf.val_accuracy <= 1.0
    assert clf.class_counts.sum() == len(exp.parts[keys.TRAIN])
    broken = replace(exp, aligned=exp.aligned.copy())
    broken.aligned.loc[exp.parts[keys.POOL].ids, EIPS[0]] = np.nan  # EIP 0 failed on every pool config
    sel = select_pool(clf.model, broken)
    assert len(sel) == len(exp.parts[keys.POOL])
    assert not sel.loc[sel["model_id"] == EIPS[0], "selected"].any()
    assert np.isfinite(sel.loc[sel["selected"], "label_energy"]).all()
    assert ((sel["confidence"] > 0) & (sel["confidence"] <= 1)).all()


def test_finetuning_starts_from_pretrained_backbone(setting, tmp_path):
    _, _, exp, grid = setting
    result = pretrain(exp.parts[keys.POOL], exp.aligned, EIPS, grid.model_configs["schnet"], grid.train, out_dir=tmp_path)
    assert result.model.n_out == len(EIPS)
    reloaded = load_model(tmp_path / BEST_MODEL_FILE)
    tuned = for_finetuning(reloaded)
    assert tuned.n_out == 1
    pre = result.model.representation_module.state_dict()
    for name, value in tuned.representation_module.state_dict().items():
        torch.testing.assert_close(value, pre[name].cpu())
    assert float(tuned.baseline.abs().sum()) == 0.0


def test_pretraining_targets_ignore_alignment_and_mask_invalid(setting):
    configs, _, exp, _ = setting
    pool = exp.parts[keys.POOL]
    raw = exp.aligned.copy()
    shifted = raw + 3.0 * pd.DataFrame({m: configs.n_atoms() for m in EIPS}, index=raw.index).to_numpy()
    t1, m1 = fit_scaler(pool, raw, EIPS).transform(pool, raw)
    t2, _ = fit_scaler(pool, shifted, EIPS).transform(pool, shifted)
    np.testing.assert_allclose(t1, t2, atol=1e-8)  # per-species shifts (alignment) cancel
    broken = raw.copy()
    broken.loc[pool.ids[0], EIPS[1]] = np.inf
    _, mask = fit_scaler(pool, broken, EIPS).transform(pool, broken)
    assert not mask[0, 1] and mask[0, 0] and m1.all()


def test_alpha_is_chosen_on_validation_only():
    from eiplab.strategies import alpha_table

    rows = [{"alpha": a, "val_" + keys.MAE_CONFIG: v, "test_" + keys.MAE_CONFIG: t, "wall_time_s": 3 * a}
            for a, v, t in ((0.1, 0.5, 0.1), (1.0, 0.2, 0.8), (10.0, 0.9, 0.05))]  # test would prefer 10
    table = alpha_table(rows)
    assert table.loc[1.0, "chosen"] and table["chosen"].sum() == 1
    assert table.loc[10.0, "wall_time_s"] == 30.0  # each alpha fit's own training time
    with pytest.raises(ValueError, match="no alpha fits"):
        alpha_table([])


def test_grid_runs_all_strategies_and_resumes(setting, tmp_path):
    configs, splits, _, grid = setting
    specs = specs_for(["schnet"], (0,), tukey_ablation=True)
    first = run_grid(configs, splits, (0,), EIPS, specs, grid, tmp_path, log=lambda *_: None)
    assert list(first["tag"]) == ["baseline", "la", "mp", "mp+la", "la-notukey"]
    assert np.isfinite(first["test_" + keys.MAE_CONFIG]).all()
    la = first.set_index("tag").loc["la"]
    n_dft = (splits[0] == keys.TRAIN).sum()
    assert la["alpha"] == 1.0
    assert la["effective_weight"] == pytest.approx(1.0 * n_dft / la["n_aug"] if la["n_aug"] else 0.0)
    results = sorted(tmp_path.glob("runs/*/*/seed0/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    again = run_grid(configs, splits, (0,), EIPS, specs, grid, tmp_path, log=lambda *_: None)
    assert [p.stat().st_mtime_ns for p in results] == stamps  # nothing re-run
    pd.testing.assert_frame_equal(first, again)  # wall times too: a reused fit keeps its recorded cost
    alpha_walls = [json.loads(p.read_text())["wall_time_s"] for p in tmp_path.glob("runs/schnet/la/seed0/alpha_*/run.json")]
    assert len(alpha_walls) == len(grid.alphas) and la["wall_time_s"] == pytest.approx(sum(alpha_walls))
    assert len(RunStore(tmp_path).results()) == len(specs)
    selection = json.loads((tmp_path / "la/schnet/all/seed0/classifier.json").read_text())
    assert selection["n_pool"] == (splits[0] == keys.POOL).sum()
    # exported records (as committed under reports/) rebuild the same tables
    from eiplab.analysis import results as res
    from eiplab.workflows import load_records

    written = RunStore(tmp_path).export(tmp_path / "records")
    assert (tmp_path / "records" / "schnet-la-seed0.run.json").exists()  # the chosen alpha's training record
    assert (tmp_path / "records" / "classifier-schnet-all-seed0.json") in written
    pd.testing.assert_frame_equal(res.table3(load_records(tmp_path / "records")), res.table3(first))
    with pytest.raises(FileNotFoundError, match="no run records"):
        load_records(tmp_path / "la")


def test_la_with_a_hand_picked_eip_and_alpha(setting):
    from eiplab.strategies.explore import la_with_choice

    _, splits, exp, grid = setting
    result = la_with_choice(exp, grid.model_configs["schnet"], grid.train, [EIPS[1]], alpha=0.5)
    assert set(result["picked_per_eip"]) <= {EIPS[1]}
    n_dft = (splits[0] == keys.TRAIN).sum()
    expected = 0.5 * n_dft / result["n_aug"] if result["n_aug"] else 0.0
    assert result["effective_weight"] == pytest.approx(expected)
    assert np.isfinite(result["test_" + keys.MAE_CONFIG])
    with pytest.raises(ValueError, match="at least one EIP"):
        la_with_choice(exp, grid.model_configs["schnet"], grid.train, [], alpha=0.5)


def test_confidence_group_runs_reuse_classifier_and_alpha(setting, tmp_path):


    configs, splits, _, grid = setting
    grid = replace(grid, alphas=(0.5, 2.0))
    specs = specs_for(["schnet"], (0,), ["la"], confidence=True)
    results = run_grid(configs, splits, (0,), EIPS, specs, grid, tmp_path, log=lambda *_: None).set_index("tag")
    assert list(results.index) == ["la", "la{low}", "la{medium}", "la{high}"]
    selection = pd.read_csv(tmp_path / "la/schnet/all/seed0/selection.csv", index_col=keys.CONFIG_ID)
    groups = confidence_groups(selection)
    for g in ("low", "medium", "high"):
        row = results.loc[f"la{{{g}}}"]
        assert row["alpha"] == results.loc["la", "alpha"]  # the full LA run's validation choice, no new tuning
        assert row["n_aug"] == (groups == g).sum()
        lo, hi = row["confidence_range"]
        assert selection.loc[groups.index[groups == g], "confidence"].between(lo, hi).all()
    assert sum(results.loc[f"la{{{g}}}", "n_aug"] for g in ("low", "medium", "high")) == results.loc["la", "n_aug"]
    assert len(list(tmp_path.glob("la/schnet/*/seed0/classifier.json"))) == 1  # one classifier for all groups


def test_a_new_alpha_grid_redoes_the_choice_but_not_the_finished_fits(setting, tmp_path):
    from eiplab.workflows import alphas_tried

    configs, splits, _, grid = setting
    specs = specs_for(["schnet"], (0,), ["la"], confidence=True)
    quiet = {"log": lambda *_: None}
    run_grid(configs, splits, (0,), EIPS, specs, replace(grid, alphas=(1.0,)), tmp_path, **quiet)
    fit_1 = tmp_path / "runs/schnet/la/seed0/alpha_1/checkpoint_last.pt"
    stamp = fit_1.stat().st_mtime_ns
    from eiplab.workflows import plan_grid, plan_summary

    data = grid_data(splits, (0,), EIPS, RunStore(tmp_path))
    plan = plan_grid(specs, replace(grid, alphas=(1.0, 0.25)), tmp_path, data).set_index(["run", "fit"])
    assert plan.loc[("la", "alpha 1"), "status"] == "done" and plan.loc[("la", "alpha 0.25"), "status"] == "to do"
    assert plan.loc[("la", "alpha 0.25"), "estimate_s"] > 0  # timed by alpha 1's finished fit
    assert (plan.loc[[("la{low}", "run"), ("la{high}", "run")], "status"] == "depends").all()
    assert "1 of" in plan_summary(plan.reset_index()) and "3 confidence-group" in plan_summary(plan.reset_index())
    messages = []
    wider = run_grid(configs, splits, (0,), EIPS, specs, replace(grid, alphas=(1.0, 0.25)), tmp_path,
                     log=messages.append).set_index("tag")
    assert alphas_tried(wider.loc["la"].to_dict()) == [0.25, 1.0]
    assert fit_1.stat().st_mtime_ns == stamp  # alpha 1's finished fit is reused, only alpha 0.25 trains
    assert (tmp_path / "runs/schnet/la/seed0/alpha_0.25/checkpoint_last.pt").exists()
    assert any("redoing" in m and "la seed 0" in m for m in messages)
    chosen = wider.loc["la", "alpha"]
    for g in ("low", "medium", "high"):  # group runs follow the full run's (possibly new) choice
        assert wider.loc[f"la{{{g}}}", "alpha"] == chosen
    from eiplab.cli import write_tables

    assert write_tables(RunStore(tmp_path).results(), tmp_path / "tables") == ["runs", "table3", "table5", "alpha_sensitivity",
                                                                           "alpha_choice"]
    assert "<table" in (tmp_path / "tables/alpha_sensitivity.html").read_text()  # not overwritten by the figure
    assert (tmp_path / "tables/alpha_curves.html").exists()
    runs = pd.read_csv(tmp_path / "tables/runs.csv").set_index("tag")
    assert runs.loc["la", "alpha_grid"] == "0.25 1"  # the grid each alpha was chosen from is on record
    before = len(messages)
    again = run_grid(configs, splits, (0,), EIPS, specs, replace(grid, alphas=(0.25, 1.0)), tmp_path, log=messages.append)
    assert len(again) == len(specs) and messages[before:] == []  # same grid (in any order): nothing redone
    done = plan_grid(specs, replace(grid, alphas=(0.25, 1.0)), tmp_path, data)
    assert (done["status"] == "done").all() and plan_summary(done).startswith("nothing to train")
    # a group run whose full LA run now chooses another alpha trains a new fit (no resuming the old one)
    other = 1.0 if chosen == 0.25 else 0.25
    forced = run_grid(configs, splits, (0,), EIPS, specs, replace(grid, alphas=(other,)), tmp_path, **quiet).set_index("tag")
    for g in ("low", "medium", "high"):
        record = json.loads((tmp_path / f"runs/schnet/la{{{g}}}/seed0/alpha_{other:g}/run.json").read_text())
        assert forced.loc[f"la{{{g}}}", "alpha"] == record["alpha"] == other
        assert len(record["history"]) == grid.train.epochs


def test_parallel_grid_gives_the_serial_records(setting, tmp_path):
    """Two local Dask workers train the jobs side by side (alphas, groups after their LA choice)
    and the table rows equal the serial grid's; a second call finds nothing to do."""
    configs, splits, _, grid = setting
    grid = replace(grid, alphas=(0.5, 2.0))
    specs = specs_for(["schnet"], (0,), confidence=True)
    store = RunStore(tmp_path / "parallel")
    data = grid_data(splits, (0,), EIPS, store)
    jobs = needed(grid_jobs(specs, grid, store, data))
    assert jobs["schnet la{low} seed 0"].needs == ("schnet la seed 0",)
    assert set(jobs["schnet la seed 0"].needs) == {"schnet la seed 0 alpha 0.5", "schnet la seed 0 alpha 2"}
    classifier, backbone = jobs["schnet mp+la seed 0 alpha 2"].needs
    assert classifier == "schnet classifier[all] seed 0" and backbone.startswith("schnet pretrain eips-")
    serial = run_grid(configs, splits, (0,), EIPS, specs, grid, tmp_path / "serial", log=lambda *_: None)
    messages = []
    parallel = run_grid(configs, splits, (0,), EIPS, specs, grid, store.root, workers=2, log=messages.append)
    choices = sum(is_choice(job) for job in jobs.values())
    assert choices == 2  # la and mp+la each choose among their alphas; the choices are jobs, not fits
    assert messages[0] == (f"[grid] {len(jobs)} job(s) to do on 2 local Dask worker(s): {len(jobs) - choices} fit(s) "
                           f"to train, {choices} alpha choice(s)")
    done = [m for m in messages if m.startswith("[grid] done (")]
    assert len(done) == len(jobs) and done[-1].startswith(f"[grid] done ({len(jobs)}/{len(jobs)})")
    assert list(parallel["tag"]) == list(serial["tag"])
    for column in ("alpha", "n_aug", "test_" + keys.MAE_CONFIG, "val_" + keys.MAE_CONFIG):
        assert parallel[column].tolist() == pytest.approx(serial[column].tolist(), rel=1e-4, nan_ok=True)
    assert needed(grid_jobs(specs, grid, store, data)) == {}
    wider = needed(grid_jobs(specs, replace(grid, alphas=(0.5, 2.0, 1.0)), store, data))
    assert "schnet la seed 0 alpha 1" in wider and "schnet la seed 0 alpha 0.5" not in wider  # finished fits kept
    assert wider["schnet la{high} seed 0"].needs == ("schnet la seed 0",)  # groups wait for the new choice
    assert "schnet baseline seed 0" not in wider
    before = len(messages)
    run_grid(configs, splits, (0,), EIPS, specs, grid, store.root, workers=2, log=messages.append)
    assert messages[before:] == []  # nothing trained, no worker started


def test_mp_backbones_are_keyed_by_the_eips_they_were_pretrained_on(setting, tmp_path):
    """Table 7's subsets are ranked on each split's training data: a backbone pretrained on other
    EIPs is never reused; the same pool and EIPs reuse the stored one."""
    from eiplab.provenance import read_made_with
    from eiplab.strategies.subsets import restrict
    from eiplab.workflows import pretrained_backbone

    _, _, exp, grid = setting
    quiet = {"log": lambda *_: None}
    first = pretrained_backbone(tmp_path, "schnet", restrict(exp, [EIPS[0]]), grid, **quiet)
    second = pretrained_backbone(tmp_path, "schnet", restrict(exp, [EIPS[1]]), grid, **quiet)
    folders = sorted((tmp_path / "pretrain/schnet").iterdir())
    assert len(folders) == 2 and first.n_out == second.n_out == 1
    assert sorted(read_made_with(f)["eips"][0] for f in folders) == sorted(EIPS)
    stamps = [(f / BEST_MODEL_FILE).stat().st_mtime_ns for f in folders]
    pretrained_backbone(tmp_path, "schnet", restrict(exp, [EIPS[1]]), grid, **quiet)  # same EIPs: reused
    assert [(f / BEST_MODEL_FILE).stat().st_mtime_ns for f in folders] == stamps


def test_a_stored_selection_is_redone_when_tau_changes(setting, tmp_path):
    """The LA selection records how it was made; another tau retrains the classifier (and the LA
    run built on it is redone), the same tau reuses it untouched."""
    from eiplab.provenance import read_made_with
    from eiplab.workflows import pool_selection

    configs, splits, exp, grid = setting
    messages = []
    pool_selection(tmp_path, "schnet", 0, exp, grid, log=messages.append)
    folder = tmp_path / "la/schnet/all/seed0"
    stamp = (folder / "selection.csv").stat().st_mtime_ns
    pool_selection(tmp_path, "schnet", 0, exp, grid, log=messages.append)
    assert (folder / "selection.csv").stat().st_mtime_ns == stamp and not any("redoing" in m for m in messages)
    looser = replace(grid, tau=0.5)
    pool_selection(tmp_path, "schnet", 0, exp, looser, log=messages.append)
    assert any("classifier[all] seed 0" in m and "tau: 0.1 -> 0.5" in m and "redoing" in m for m in messages)
    assert read_made_with(folder)["tau"] == 0.5
    assert json.loads((folder / "classifier.json").read_text())["tau"] == 0.5
    specs = specs_for(["schnet"], (0,), ["la"])
    run_grid(configs, splits, (0,), EIPS, specs, replace(looser, alphas=(1.0,)), tmp_path, log=messages.append)
    before = len(messages)
    run_grid(configs, splits, (0,), EIPS, specs, replace(grid, alphas=(1.0,)), tmp_path, log=messages.append)
    redone = messages[before:]
    assert any("la seed 0: redoing" in m and "selection" in m for m in redone)  # the LA run follows its selection
    assert any("alpha 1: stored result made with other inputs" in m for m in redone)  # its fit is not resumed


def test_group_runs_use_the_grid_quantiles_and_classifiers_the_split_seed(setting, tmp_path):
    configs, _, _, grid = setting
    splits = paper_splits(configs, seeds=(1,))
    grid = replace(grid, alphas=(1.0,), quantiles=(0.2, 0.9))
    specs = specs_for(["schnet"], (1,), ["la"], confidence=True)
    results = run_grid(configs, splits, (1,), EIPS, specs, grid, tmp_path, log=lambda *_: None).set_index("tag")
    selection = pd.read_csv(tmp_path / "la/schnet/all/seed1/selection.csv", index_col=keys.CONFIG_ID)
    groups = confidence_groups(selection, (0.2, 0.9))
    for g in ("low", "medium", "high"):
        assert results.loc[f"la{{{g}}}", "n_aug"] == (groups == g).sum()
        assert results.loc[f"la{{{g}}}", "quantiles"] == [0.2, 0.9]
    classifier_run = json.loads((tmp_path / "la/schnet/all/seed1/classifier/run.json").read_text())
    assert classifier_run["seed"] == 1  # the classifier is seeded with its split, like every other fit
