"""Label augmentation and pretraining building blocks: Tukey loss, classifier labels, masks,
the augmented loss, target standardisation."""

import numpy as np
import pytest
import torch

from eiplab.strategies.augment import AugmentedLoss
from eiplab.strategies.labels import best_eip_labels
from eiplab.strategies.pretrain import masked_mse, valid_mask
from eiplab.strategies.tukey import TUKEY_C, robust_scale, tukey_biweight

C = TUKEY_C


def rho(r):  # hand-written Tukey biweight
    return C**2 / 6 * (1 - (1 - (r / C) ** 2) ** 3) if abs(r) <= C else C**2 / 6


def drho(r):
    return r * (1 - (r / C) ** 2) ** 2 if abs(r) <= C else 0.0


def test_tukey_values_and_gradients_by_hand():
    r = torch.tensor([0.0, 1.0, -2.0, 4.0, 100.0], dtype=torch.float64, requires_grad=True)
    loss = tukey_biweight(r, scale=torch.tensor(1.0, dtype=torch.float64))
    expected = np.mean([rho(v) for v in (0.0, 1.0, -2.0, 4.0, 100.0)])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(r.grad.numpy(), [drho(v) / 5 for v in (0.0, 1.0, -2.0, 4.0, 100.0)], rtol=1e-12)
    assert r.grad[-1] == 0.0  # a gross outlier pulls nothing
    assert rho(100.0) == pytest.approx(C**2 / 6)


def test_tukey_with_mad_scale():
    r = torch.tensor([0.1, -0.2, 0.3, 0.05, 5.0], dtype=torch.float64)
    s = 1.4826 * np.median(np.abs(r.numpy()))
    assert robust_scale(r).item() == pytest.approx(s)
    expected = np.mean([rho(v / s) for v in r.numpy()])
    assert tukey_biweight(r).item() == pytest.approx(expected, rel=1e-12)


def test_tukey_scale_takes_the_lower_middle_value_for_an_even_batch():
    """Pinned decision (see robust_scale): torch.median, the lower of the two middle |residuals|
    of an even batch, not their mean (1.4826 * 2, not 1.4826 * 2.5, here)."""
    r = torch.tensor([-4.0, 1.0, 3.0, -2.0], dtype=torch.float64)
    assert robust_scale(r).item() == pytest.approx(1.4826 * 2.0)
    assert robust_scale(r[:3]).item() == pytest.approx(1.4826 * 3.0)  # odd: the middle value


def test_tukey_scale_floor_and_detached():
    r = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    assert robust_scale(r, eps=1e-3).item() == pytest.approx(1e-3)
    assert not robust_scale(r).requires_grad
    assert tukey_biweight(r).item() == 0.0
    assert tukey_biweight(torch.zeros(0)).item() == 0.0


def test_best_eip_labels_hand_built():
    dft = np.array([-10.0, -10.0, -20.0, -5.0, -8.0])
    n = np.array([2, 2, 4, 1, 2])
    eip = np.array(
        [
            [-10.05, -10.5, -9.0],  # EIP 0 best, 0.025 eV/atom
            [-11.0, -9.9, np.nan],  # EIP 1 best (0.05 eV/atom); NaN ignored
            [-22.0, -18.0, -21.0],  # best error 0.25 eV/atom > tau -> none
            [np.inf, np.nan, -5.05],  # inf/NaN never best -> EIP 2
            [np.nan, np.nan, np.nan],  # nothing valid -> none
        ]
    )
    np.testing.assert_array_equal(best_eip_labels(eip, dft, n, tau=0.1), [0, 1, 3, 2, 3])
    np.testing.assert_array_equal(best_eip_labels(eip, dft, n, tau=0.3)[2], 2)  # -21: 0.25 eV/atom
    with pytest.raises(ValueError):
        best_eip_labels(eip[:, 0], dft, n)


def test_valid_mask_and_masked_mse():
    e = np.array([[-10.0, np.nan], [np.inf, -3.0], [-1000.0, -4.0]])
    mask = valid_mask(e, np.array([2, 1, 2]), max_abs_per_atom=200.0)
    np.testing.assert_array_equal(mask, [[True, False], [False, True], [False, True]])

    class B(dict):
        pass

    batch = B(y=torch.tensor([[1.0, 99.0], [2.0, 0.0]]), target_mask=torch.tensor([[True, False], [False, True]]))
    pred = torch.tensor([[2.0, 0.0], [50.0, 1.0]], requires_grad=True)
    loss = masked_mse(pred, batch)
    assert loss.item() == pytest.approx((1.0 + 1.0) / 2)
    loss.backward()
    assert pred.grad[0, 1] == 0 and pred.grad[1, 0] == 0  # invalid targets get no gradient


def test_augmented_loss_combines_terms():
    class B(dict):
        pass

    batch = B(
        y=torch.tensor([-10.0, -20.0, -5.0, -6.0], dtype=torch.float64),
        is_eip=torch.tensor([False, False, True, True]),
        n_atoms=torch.tensor([2, 4, 1, 1]),
    )
    pred = torch.tensor([[-10.5], [-19.0], [-5.1], [-4.0]], dtype=torch.float64)
    loss = AugmentedLoss(weight=0.5, tukey=True)(pred, batch)
    mse = (0.25 + 1.0) / 2
    res = torch.tensor([-0.1, 2.0], dtype=torch.float64)
    assert loss.item() == pytest.approx(mse + 0.5 * tukey_biweight(res).item())
    plain = AugmentedLoss(weight=0.5, tukey=False)(pred, batch)
    assert plain.item() == pytest.approx(mse + 0.5 * (0.01 + 4.0) / 2)
    only_dft = AugmentedLoss(weight=0.5)(pred[:2], B(y=batch["y"][:2], is_eip=batch["is_eip"][:2], n_atoms=batch["n_atoms"][:2]))
    assert only_dft.item() == pytest.approx(mse)


def _grid_and_data(alphas=(1.0,), epochs=10, seeds=(0, 1, 2)):
    """A GridConfig with a SchNet config and GridData of hand-named splits (no data needed)."""
    from eiplab.models import ModelConfig
    from eiplab.strategies.grid import GridConfig, GridData, SplitKey
    from eiplab.training import TrainSettings

    grid = GridConfig("si", TrainSettings(epochs=epochs), {"schnet": ModelConfig("schnet")}, alphas=alphas)
    return grid, GridData({k: SplitKey(f"split{k}", "pool", ("A", "B")) for k in seeds})


def _made(folder, inputs):
    """Record ``inputs`` as what made the result stored in ``folder``."""
    from eiplab.provenance import write_made_with

    write_made_with(folder, inputs)


def test_plan_reads_progress_and_speed_from_the_grid_folder(tmp_path):
    """An interrupted fit resumes from its checkpoint's epoch, timed by its own speed; a fit of
    a kind never timed in the folder has no estimate; a finished run is done."""
    import json

    from eiplab.strategies.grid import RunSpec, run_inputs
    from eiplab.strategies.plan import plan_grid, plan_summary

    grid, data = _grid_and_data()
    runs = tmp_path / "runs/schnet"
    (runs / "baseline/seed0").mkdir(parents=True)
    (runs / "baseline/seed0/result.json").write_text(json.dumps({"model": "schnet", "tag": "baseline", "seed": 0}))
    (runs / "baseline/seed0/run.json").write_text(json.dumps({"history": [{}] * 10, "wall_time_s": 50.0}))
    _made(runs / "baseline/seed0", run_inputs(data.key(0), grid, RunSpec("schnet", "baseline", 0)))
    (runs / "baseline/seed1").mkdir(parents=True)
    torch.save({"epoch": 3, "wall_time_s": 8.0, "stopped": False}, runs / "baseline/seed1/checkpoint_last.pt")
    specs = [RunSpec("schnet", "baseline", k) for k in (0, 1, 2)] + [RunSpec("schnet", "mp", 0)]
    plan = plan_grid(specs, grid, tmp_path, data).set_index(["run", "seed"])
    assert plan.loc[("baseline", 0), "status"] == "done"
    row = plan.loc[("baseline", 1)]
    assert (row["status"], row["epochs_done"], row["epochs_left"]) == ("resumes", 4, 6)
    assert row["estimate_s"] == pytest.approx(6 * 8.0 / 4)  # its own 2 s per epoch
    assert plan.loc[("baseline", 2), "estimate_s"] == pytest.approx(10 * 5.0)  # the finished seed's 5 s per epoch
    assert plan.loc["pretrain", "status"].iloc[0] == "to do"  # the MP backbone, before its fine-tune
    assert np.isnan(plan.loc[("mp", 0), "estimate_s"])  # no finished MP fine-tune to time it by
    summary = plan_summary(plan.reset_index())
    assert summary.startswith("4 of 5 fits to train") and "2 fit(s) of a kind not yet timed" in summary


def test_grid_plan_command_trains_nothing(tmp_path, capsys):
    from eiplab.cli import main

    assert main(["grid", "--profile", "quick", "--models", "schnet", "--strategies", "la", "--seeds", "0",
                 "--alphas", "0.5", "2", "--grid-dir", str(tmp_path), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "alpha 0.5" in out and "alpha 2" in out and "classifier" in out
    assert "3 of 3 fits to train" in out
    assert not any(tmp_path.iterdir())  # nothing written


def test_workers_and_plan_share_one_list_of_fits(tmp_path):
    """The fits still needed come from one place (``grid_fits``): a finished LA run whose alpha
    fit was deleted is not retrained (its groups only need its choice); an unfinished group run
    waits for the full run's choice, which waits for every alpha and the classifier."""
    import json
    from dataclasses import replace

    from eiplab.strategies.fits import grid_fits, needed
    from eiplab.strategies.grid import RunSpec, classifier_inputs, fit_inputs, run_inputs
    from eiplab.strategies.parallel import grid_tasks
    from eiplab.strategies.plan import plan_grid, plan_summary

    grid, data = _grid_and_data(alphas=(0.5, 1.0), epochs=4, seeds=(0,))
    la = tmp_path / "runs/schnet/la/seed0"
    (la / "alpha_1").mkdir(parents=True)  # alpha 1's fit is there, alpha 0.5's was deleted
    (la / "alpha_1/run.json").write_text(json.dumps({"history": [{}] * 4, "wall_time_s": 8.0}))
    _made(la / "alpha_1", fit_inputs(data.key(0), grid, RunSpec("schnet", "la", 0), 1.0))
    table = [{"alpha": 0.5}, {"alpha": 1.0}]
    (la / "result.json").write_text(json.dumps({"tag": "la", "alpha": 1.0, "alpha_table": table}))
    _made(la, run_inputs(data.key(0), grid, RunSpec("schnet", "la", 0)))
    (tmp_path / "la/schnet/all/seed0").mkdir(parents=True)
    (tmp_path / "la/schnet/all/seed0/selection.csv").write_text("config_id\n")
    _made(tmp_path / "la/schnet/all/seed0", classifier_inputs(data.key(0), grid, "schnet", 0))
    specs = [RunSpec("schnet", "la", 0), RunSpec("schnet", "la", 0, group="low")]
    fits = grid_fits(specs, grid, tmp_path, data)
    assert not fits["schnet la seed 0 alpha 0.5"].finished and fits["schnet la seed 0"].finished
    assert list(needed(fits)) == ["schnet la{low} seed 0"]  # the group run alone
    assert list(grid_tasks(specs, grid, tmp_path, data)) == ["schnet la{low} seed 0"]
    plan = plan_grid(specs, grid, tmp_path, data).set_index(["run", "fit"])
    assert plan.loc[("la", "alpha 0.5"), "status"] == "not needed"
    assert plan.loc[("la{low}", "run"), "status"] == "to do"
    assert plan_summary(plan.reset_index()).startswith("1 of 4 fits to train")
    # a wider alpha grid makes the full run stale: the new alpha, then the choice, then the group
    wider = needed(grid_fits(specs, replace(grid, alphas=(0.5, 1.0, 2.0)), tmp_path, data))
    assert list(wider) == ["schnet la seed 0 alpha 0.5", "schnet la seed 0 alpha 2", "schnet la seed 0",
                           "schnet la{low} seed 0"]
    assert wider["schnet la{low} seed 0"].needs == ("schnet la seed 0",)


def test_plan_wall_estimate_follows_the_workers_schedule():
    """Two independent 1 h fits and a 1 h fit needing the first: 3 h in one process, 2 h on two
    workers (the dependent fit waits for its need, not for the other fit); done fits cost nothing."""
    import pandas as pd

    from eiplab.strategies.plan import plan_summary, time_left, wall_estimate_s

    rows = [("a", "to do", ()), ("b", "resumes", ()), ("c", "to do", ("a", "done-fit")), ("done-fit", "done", ())]
    plan = pd.DataFrame([{"name": n, "status": st, "needs": needs, "estimate_s": 0.0 if st == "done" else 3600.0,
                          "epochs_left": 10} for n, st, needs in rows])
    assert wall_estimate_s(plan, 1) == 3 * 3600 and wall_estimate_s(plan, 2) == 2 * 3600
    assert wall_estimate_s(plan, 8) == 2 * 3600  # the chain a -> c bounds it
    assert "(about 2.0 h on 2 workers)" in plan_summary(plan, workers=2)
    assert "workers" not in plan_summary(plan)
    assert time_left(plan, 2) == "3 fit(s) left, about 2.0 h on 2 worker(s)"
    waits = pd.concat([plan, pd.DataFrame([{"name": "g", "status": "depends", "needs": ("c",), "estimate_s": 60.0,
                                            "epochs_left": 10}])], ignore_index=True)
    assert time_left(waits, 1).endswith("about 3.0 h on 1 worker(s); 1 group run(s) more if an LA run's alpha changes")
    assert time_left(plan[plan["status"] == "done"]) == "nothing left to train"
    only_waits = waits[waits["status"].isin(["done", "depends"])]
    assert time_left(only_waits, 2) == "no fit surely left; 1 group run(s) more if an LA run's alpha changes"
    untimed = plan.assign(estimate_s=[3600.0, float("nan"), 3600.0, 0.0])
    assert time_left(untimed, 2) == "3 fit(s) left, about 2.0 h on 2 worker(s) plus 1 fit(s) of a kind not yet timed here"
    assert time_left(plan.assign(estimate_s=float("nan")), 2).startswith("3 fit(s) left (no time estimate")


def test_workers_take_the_first_ready_fit_in_order():
    """A free worker gets the first ready fit in grid order: split 0's choice runs as soon as its
    alphas are done, before split 1's alphas that were ready all along."""
    from eiplab.strategies.fits import GridTask
    from eiplab.strategies.grid import RunSpec
    from eiplab.strategies.parallel import next_tasks

    spec = RunSpec("schnet", "la", 0)
    names = {"a0": (), "a1": (), "choice0": ("a0", "a1"), "b0": (), "b1": (), "group0": ("choice0",)}
    tasks = {n: GridTask(n, "alpha", spec, needs=needs) for n, needs in names.items()}
    waiting = dict(tasks)
    assert next_tasks(waiting, set(), tasks, 2) == ["a0", "a1"]
    for n in ("a0", "a1"):
        del waiting[n]
    assert next_tasks(waiting, {"a0"}, tasks, 1) == ["b0"]  # the choice still waits for a1
    del waiting["b0"]
    assert next_tasks(waiting, {"a0", "a1"}, tasks, 1) == ["choice0"]  # before b1
    assert next_tasks(waiting, {"a0", "a1"}, tasks, 0) == []
    assert next_tasks({"x": GridTask("x", "run", spec, needs=("done-before",))}, set(), {"x"}, 1) == ["x"]


def test_grid_workers_stop_joblib_processes_after_a_task():
    """A grid worker stops joblib's reusable loky processes (SOAP jobs) after each task: a spawned
    worker joins its children at exit, so idle loky processes would hold the pool's shutdown."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    from eiplab.strategies.parallel import _stop_joblib_workers

    assert Parallel(n_jobs=2, backend="loky")(delayed(abs)(-k) for k in range(4)) == [0, 1, 2, 3]
    executor = reusable_executor._executor
    processes = list(executor._processes.values())
    assert processes and all(p.is_alive() for p in processes)
    _stop_joblib_workers()
    assert executor._flags.shutdown and not any(p.is_alive() for p in processes)


def test_fits_come_split_by_split(tmp_path):
    """A split's group run comes right after its LA run's choice and before the next split's
    fits, whatever order the specs came in (an interrupted grid leaves whole splits finished)."""
    from eiplab.strategies.fits import grid_fits, needed
    from eiplab.strategies.grid import RunSpec

    specs = [RunSpec("schnet", "la", 0), RunSpec("schnet", "la", 1),
             RunSpec("schnet", "la", 0, group="low"), RunSpec("schnet", "la", 1, group="low")]
    grid, data = _grid_and_data(alphas=(0.5,), seeds=(0, 1))
    order = list(needed(grid_fits(specs, grid, tmp_path, data)))
    assert order == ["schnet classifier[all] seed 0", "schnet la seed 0 alpha 0.5", "schnet la seed 0",
                     "schnet la{low} seed 0",
                     "schnet classifier[all] seed 1", "schnet la seed 1 alpha 0.5", "schnet la seed 1",
                     "schnet la{low} seed 1"]


def test_serial_grid_runs_split_by_split_and_keeps_the_spec_order(monkeypatch, tmp_path):
    """``run_grid`` trains split by split (one experiment prepared per split) and returns the
    rows in the order of the specs."""
    from eiplab.strategies import grid as grid_module
    from eiplab.strategies.grid import GridConfig, RunSpec, run_grid
    from eiplab.training import TrainSettings

    prepared, ran = [], []
    monkeypatch.setattr(grid_module, "prepare_experiment",
                        lambda configs, split, eip_ids, **_: prepared.append(split) or split)
    monkeypatch.setattr(grid_module, "run_one",
                        lambda spec, exp, grid, out, log: ran.append((spec.tag, spec.seed, exp))
                        or {"tag": spec.tag, "seed": spec.seed})
    monkeypatch.setattr(grid_module, "store_ranking", lambda out, seed, exp: ())
    specs = [RunSpec("schnet", "baseline", 0), RunSpec("schnet", "baseline", 1),
             RunSpec("schnet", "la", 0), RunSpec("schnet", "la", 1)]
    table = run_grid(None, ["split0", "split1"], (0, 1), [], specs, GridConfig("si", TrainSettings(), {}), tmp_path)
    assert ran == [("baseline", 0, "split0"), ("la", 0, "split0"), ("baseline", 1, "split1"), ("la", 1, "split1")]
    assert prepared == ["split0", "split1"]
    assert list(zip(table["tag"], table["seed"], strict=True)) == [("baseline", 0), ("baseline", 1), ("la", 0), ("la", 1)]


def test_mp_validation_metric_is_the_mean_over_eips():
    """Each EIP weighs the same in the MP checkpoint metric: an EIP masked on most configs does
    not count less (pooling all valid entries would give (1 + 1 + 1 + 3) / 4 = 1.5 here)."""
    from eiplab.strategies.pretrain import MASK, TargetScaler, eip_mae_metrics

    scaler = TargetScaler(["a", "b"], ["Si"], np.zeros((2, 1)), np.array([1.0, 1.0]))

    class Batch(dict):
        def to(self, device):
            return self

    data = Batch(y=torch.zeros(3, 2), **{MASK: torch.tensor([[True, True], [True, False], [True, False]])})

    def model(b):
        return torch.tensor([[1.0, 3.0], [1.0, 9.0], [1.0, 9.0]])  # EIP a off by 1 eV, b by 3 eV where valid

    model.eval = lambda: None
    assert eip_mae_metrics(scaler)(model, [data], "cpu")["val_eip_mae"] == pytest.approx((1.0 + 3.0) / 2)


def test_auto_tau_is_a_training_quantile_of_the_best_eip_error():
    """tau="auto": the 0.75 quantile of the best aligned EIP's error per atom over the given
    (training) configs; a failed EIP (NaN) never counts as best."""
    from eiplab.strategies.labels import auto_tau, best_eip_errors

    n = np.array([1, 2, 4, 1])
    dft = np.array([-5.0, -10.0, -20.0, -5.0])
    eip = np.array([[-5.1, np.nan], [-10.0, -10.4], [-20.8, -20.4], [np.nan, np.nan]])
    errors = best_eip_errors(eip, dft, n)
    np.testing.assert_allclose(errors, [0.1, 0.0, 0.1, np.inf])
    assert auto_tau(eip, dft, n) == pytest.approx(np.quantile([0.1, 0.0, 0.1], 0.75))
    with pytest.raises(ValueError, match="at least one EIP"):
        auto_tau(eip[3:], dft[3:], n[3:])
