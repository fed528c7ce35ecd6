"""The workflows layer without training: the run store, the job graph, the plan, and the engine."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eiplab.engine import Job, JobError, Shared, run_jobs
from eiplab.models import ModelConfig
from eiplab.provenance import write_made_with
from eiplab.training import TrainSettings
from eiplab.workflows import (
    GridConfig,
    GridData,
    RunSpec,
    RunStore,
    SplitKey,
    grid_jobs,
    needed,
    plan_grid,
    plan_summary,
)
from eiplab.workflows.inputs import classifier_inputs, fit_inputs, run_inputs


def _grid_and_data(alphas=(1.0,), epochs=10, seeds=(0, 1, 2)):
    """A GridConfig with a SchNet config and GridData of hand-named splits (no data needed)."""
    grid = GridConfig("si", TrainSettings(epochs=epochs), {"schnet": ModelConfig("schnet")}, alphas=alphas)
    return grid, GridData({k: SplitKey(f"split{k}", "pool", ("A", "B")) for k in seeds})


def test_plan_reads_progress_and_speed_from_the_grid_folder(tmp_path):
    """An interrupted fit resumes from its checkpoint's epoch, timed by its own speed; a fit of
    a kind never timed in the folder is timed like a kind that trains on the same configs, or has
    no estimate; a finished run is done."""
    grid, data = _grid_and_data()
    store = RunStore(tmp_path)
    done = RunSpec("schnet", "baseline", 0)
    store.run_folder(done).mkdir(parents=True)
    store.write_result(done, {"model": "schnet", "tag": "baseline", "seed": 0})
    (store.run_folder(done) / "run.json").write_text(json.dumps({"history": [{}] * 10, "wall_time_s": 50.0}))
    write_made_with(store.run_folder(done), run_inputs(data.key(0), grid, done))
    resumed = store.run_folder(RunSpec("schnet", "baseline", 1))
    resumed.mkdir(parents=True)
    torch.save({"epoch": 3, "wall_time_s": 8.0, "stopped": False}, resumed / "checkpoint_last.pt")
    specs = [RunSpec("schnet", "baseline", k) for k in (0, 1, 2)] + [RunSpec("schnet", "mp", 0)]
    plan = plan_grid(specs, grid, store, data).set_index(["run", "seed"])
    assert plan.loc[("baseline", 0), "status"] == "done"
    row = plan.loc[("baseline", 1)]
    assert (row["status"], row["epochs_done"], row["epochs_left"]) == ("resumes", 4, 6)
    assert row["estimate_s"] == pytest.approx(6 * 8.0 / 4)  # its own 2 s per epoch
    assert plan.loc[("baseline", 2), "estimate_s"] == pytest.approx(10 * 5.0)  # the finished seed's 5 s per epoch
    assert plan.loc["pretrain", "status"].iloc[0] == "to do"  # the MP backbone, before its fine-tune
    # no finished MP fine-tune: timed like the baseline fits (same DFT training configs per epoch)
    assert plan.loc[("mp", 0), "estimate_s"] == pytest.approx(10 * 5.0)
    assert plan.loc[("mp", 0), "note"] == "timed like the baseline fits"
    assert np.isnan(plan.loc["pretrain", "estimate_s"].iloc[0])  # no pretraining of any kind timed here
    summary = plan_summary(plan.reset_index())
    assert summary.startswith("4 of 5 fits to train") and "1 fit(s) of a kind not yet timed" in summary


def test_plan_times_never_timed_kinds_by_a_probe(tmp_path):
    """With a probe, a fit of a kind the folder never timed gets probe x configs per epoch (LA
    counted with the whole pool); recorded speeds still come first, and the probe is asked only
    for fits that need it."""
    from eiplab.workflows.probe import PROBE_NOTE, VALIDATION_COST

    grid, data = _grid_and_data(seeds=(0,))
    store = RunStore(tmp_path)
    done = RunSpec("schnet", "baseline", 0)
    store.run_folder(done).mkdir(parents=True)
    (store.run_folder(done) / "run.json").write_text(json.dumps({"history": [{}] * 10, "wall_time_s": 50.0}))
    asked = []

    def probe(model):
        asked.append(model)
        return 0.01  # seconds per config

    sizes = {0: {"train": 100, "val": 30, "test": 50, "pool": 1000}}
    specs = [RunSpec("schnet", "baseline", 0), RunSpec("schnet", "la", 0), RunSpec("schnet", "mp", 0)]
    plan = plan_grid(specs, grid, store, data, probe=probe, sizes=sizes).set_index(["run", "fit"])
    per_epoch_la = 0.01 * (100 + 1000 + VALIDATION_COST * 30)
    assert plan.loc[("la", "alpha 1"), "estimate_s"] == pytest.approx(10 * per_epoch_la)
    assert PROBE_NOTE in plan.loc[("la", "alpha 1"), "note"]
    assert plan.loc[("classifier", "classifier"), "estimate_s"] == pytest.approx(10 * 0.01 * (100 + VALIDATION_COST * 30))
    assert plan.loc[("pretrain", "pretrain"), "estimate_s"] == pytest.approx(10 * 0.01 * 1000)
    assert plan.loc[("baseline", "run"), "estimate_s"] == pytest.approx(10 * 5.0)  # recorded: no probe
    assert plan.loc[("mp", "run"), "note"] == "timed like the baseline fits"
    assert set(asked) == {"schnet"}
    assert "by a probe of a few training steps" in plan_summary(plan.reset_index())
    asked.clear()
    plan_grid([RunSpec("schnet", "baseline", 0)], grid, store, data, probe=probe, sizes=sizes)
    assert asked == []  # every fit timed by the folder: nothing probed


def test_probe_times_real_training_steps():
    """The probe trains a real network for a few batches (energy, and energy + forces with a
    double backward) and returns positive, finite seconds per config."""
    from ase.build import bulk

    from eiplab.workflows.probe import probe_seconds_per_config

    configs = []
    for k in range(24):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.05, seed=k)
        configs.append(atoms)
    config = ModelConfig("schnet", width=16, n_layers=2, cutoff=4.0, n_gaussians=12)
    settings = TrainSettings(epochs=1, batch_size=4, device="cpu")
    for force_weight in (0.0, 10.0):
        seconds = probe_seconds_per_config(config, configs, settings, steps=3, force_weight=force_weight)
        assert 0 < seconds < float("inf")
    from torch._dynamo.utils import counters

    counters.clear()
    seconds = probe_seconds_per_config(config, configs, replace(settings, compile=True), steps=3)
    assert 0 < seconds < float("inf") and counters["stats"]["unique_graphs"] > 0  # timed as compiled fits run


def test_grid_plan_command_trains_nothing(tmp_path, capsys):
    from eiplab.cli import main

    assert main(["grid", "--profile", "quick", "--models", "schnet", "--strategies", "la", "--seeds", "0",
                 "--alphas", "0.5", "2", "--grid-dir", str(tmp_path), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "alpha 0.5" in out and "alpha 2" in out and "classifier" in out
    assert "3 of 3 fits to train" in out
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_plan_and_the_run_share_one_graph(tmp_path):
    """The jobs still needed come from one place (``grid_jobs``): a finished LA run whose alpha
    fit was deleted is not retrained (its groups only need its choice); an unfinished group run
    waits for the full run's choice, which waits for every alpha and the classifier; results made
    with other inputs are not finished."""
    grid, data = _grid_and_data(alphas=(0.5, 1.0), epochs=4, seeds=(0,))
    store = RunStore(tmp_path)
    la = RunSpec("schnet", "la", 0)
    fit = store.alpha_folder(la, 1.0)  # alpha 1's fit is there, alpha 0.5's was deleted
    fit.mkdir(parents=True)
    (fit / "run.json").write_text(json.dumps({"history": [{}] * 4, "wall_time_s": 8.0}))
    write_made_with(fit, fit_inputs(data.key(0), grid, la, 1.0))
    store.write_result(la, {"tag": "la", "alpha": 1.0, "alpha_table": [{"alpha": 0.5}, {"alpha": 1.0}]})
    write_made_with(store.run_folder(la), run_inputs(data.key(0), grid, la))
    clf = store.classifier_folder("schnet", "all", 0)
    clf.mkdir(parents=True)
    (clf / "selection.csv").write_text("config_id\n")
    write_made_with(clf, classifier_inputs(data.key(0), grid, "schnet", 0))
    specs = [la, RunSpec("schnet", "la", 0, group="low")]
    jobs = grid_jobs(specs, grid, store, data)
    assert not jobs["schnet la seed 0 alpha 0.5"].finished and jobs["schnet la seed 0"].finished
    assert list(needed(jobs)) == ["schnet la{low} seed 0"]  # the group run alone
    plan = plan_grid(specs, grid, store, data).set_index(["run", "fit"])
    assert plan.loc[("la", "alpha 0.5"), "status"] == "not needed"
    assert plan.loc[("la{low}", "run"), "status"] == "to do"
    assert plan_summary(plan.reset_index()).startswith("1 of 4 fits to train")
    # a wider alpha grid makes the full run stale: the new alpha, then the choice, then the group
    wider = needed(grid_jobs(specs, replace(grid, alphas=(0.5, 1.0, 2.0)), store, data))
    assert list(wider) == ["schnet la seed 0 alpha 0.5", "schnet la seed 0 alpha 2", "schnet la seed 0",
                           "schnet la{low} seed 0"]
    assert wider["schnet la{low} seed 0"].needs == ("schnet la seed 0",)
    # another tau: the classifier, every alpha fit and the run are redone
    looser = needed(grid_jobs(specs, replace(grid, tau=0.3), store, data))
    assert {"schnet classifier[all] seed 0", "schnet la seed 0 alpha 1", "schnet la seed 0"} <= set(looser)


def test_jobs_come_split_by_split(tmp_path):
    """A split's group run comes right after its LA run's choice and before the next split's
    jobs, whatever order the specs came in (an interrupted grid leaves whole splits finished)."""
    specs = [RunSpec("schnet", "la", 0), RunSpec("schnet", "la", 1),
             RunSpec("schnet", "la", 0, group="low"), RunSpec("schnet", "la", 1, group="low")]
    grid, data = _grid_and_data(alphas=(0.5,), seeds=(0, 1))
    order = list(needed(grid_jobs(specs, grid, RunStore(tmp_path), data)))
    assert order == ["schnet classifier[all] seed 0", "schnet la seed 0 alpha 0.5", "schnet la seed 0",
                     "schnet la{low} seed 0",
                     "schnet classifier[all] seed 1", "schnet la seed 1 alpha 0.5", "schnet la seed 1",
                     "schnet la{low} seed 1"]


def test_store_reads_what_it_wrote(tmp_path):
    store = RunStore(tmp_path)
    spec = RunSpec("schnet", "la", 2)
    store.write_result(spec, {"model": "schnet", "tag": "la", "seed": 2, "alpha": 0.5, "test_mae_config": 0.3})
    fit = store.alpha_folder(spec, 0.5)
    fit.mkdir(parents=True)
    (fit / "run.json").write_text(json.dumps({"history": [{"epoch": 0}]}))
    assert store.result(spec)["alpha"] == 0.5 and len(store.results()) == 1
    assert store.history("schnet", "la", 2) == [{"epoch": 0}]  # the chosen alpha's fit
    written = store.export(tmp_path / "records")
    assert sorted(p.name for p in written) == ["schnet-la-seed2.json", "schnet-la-seed2.run.json"]
    with pytest.raises(FileNotFoundError, match="has schnet baseline seed 0 run"):
        store.history("schnet", "baseline", 0)


def test_grid_jobs_stop_joblib_processes_after_a_job():
    """A grid job stops joblib's reusable loky processes (SOAP features) when it ends: idle loky
    processes would otherwise linger in a Dask worker."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    from eiplab.workflows.grid import _stop_joblib_workers

    assert Parallel(n_jobs=2, backend="loky")(delayed(abs)(-k) for k in range(4)) == [0, 1, 2, 3]
    executor = reusable_executor._executor
    processes = list(executor._processes.values())
    assert processes and all(p.is_alive() for p in processes)
    _stop_joblib_workers()
    assert executor._flags.shutdown and not any(p.is_alive() for p in processes)


# --- the engine ----------------------------------------------------------------------------------
def _add(a, b, extra=0):
    return a + b + extra


def _fail(name):
    raise RuntimeError(f"{name} broke")


def test_engine_runs_jobs_after_their_needs_in_order():
    order = []
    jobs = [Job("c", _add, (1, 2), needs=("a",)), Job("a", _add, (Shared("ten"), 1)), Job("b", _add, (2, 2),
                                                                                       kwargs={"extra": Shared("ten")})]
    results = run_jobs(jobs, lambda job, result: order.append((job.name, result)), shared={"ten": 10}, progress=False)
    assert results == {"a": 11, "b": 14, "c": 3}
    assert order == [("a", 11), ("c", 3), ("b", 14)]  # the first ready job in list order: c right after a
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("x", _add, (1, 1)), Job("x", _add, (1, 1))], progress=False)
    with pytest.raises(ValueError, match="wait on each other"):
        run_jobs([Job("x", _add, (1, 1), needs=("y",)), Job("y", _add, (1, 1), needs=("x",))], progress=False)


def test_engine_names_the_failing_job_and_keeps_the_finished_ones():
    kept = []
    with pytest.raises(JobError, match="job 'bad' failed: RuntimeError: bad broke") as err:
        run_jobs([Job("good", _add, (1, 1)), Job("bad", _fail, ("bad",)), Job("later", _add, (1, 1))],
                 lambda job, result: kept.append(job.name), progress=False)
    assert err.value.job == "bad" and kept == ["good"]


@pytest.mark.slow
def test_engine_on_two_local_dask_workers_gives_the_serial_results():
    jobs = [Job(f"j{k}", _add, (k, Shared("base")), needs=(f"j{k - 1}",) if k % 3 else ()) for k in range(9)]
    serial = run_jobs(jobs, shared={"base": 100}, progress=False)
    seen = []
    parallel = run_jobs(jobs, lambda job, result: seen.append(job.name), workers=2, shared={"base": 100},
                        progress=False)
    assert parallel == serial and sorted(seen) == sorted(serial)
    with pytest.raises(JobError, match="job 'bad' failed on a Dask worker"):
        run_jobs([Job("bad", _fail, ("bad",))], workers=2, progress=False)


@pytest.mark.slow
def test_sharing_a_large_object_with_dask_workers_raises_no_large_graph_warning():
    """A shared dataset travels in a task by design; Dask's "Sending large graph" warning about it
    would only alarm users (the threshold is lowered so a small object stands in for a dataset)."""
    import warnings

    import dask
    import distributed  # noqa: F401  (loads the distributed.* config defaults)

    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1kB"}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_jobs([Job("n", len, (Shared("blob"),))], workers=2, shared={"blob": b"x" * 200_000},
                          progress=False)
    assert result == {"n": 200_000}
    assert not [w for w in caught if "large graph" in str(w.message)]


def test_the_local_cluster_stays_warm_between_calls():
    """A second call reuses the first call's worker processes (Dask's scheduler adds its scratch
    folder to sys.path when it starts; that must not count as a changed environment)."""
    import os

    from eiplab.engine import local_client

    first = set(local_client(2).run(os.getpid).values())
    run_jobs([Job("a", _add, (1, 2))], workers=2, progress=False)
    again = set(local_client(2).run(os.getpid).values())
    assert first == again


def test_the_import_graph_of_eiplab_has_no_circle():
    """Every import between eiplab's modules, at the top or inside functions, goes one way."""
    root = Path(__file__).resolve().parents[1] / "eiplab"
    modules = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            target = next((n for n in names if n in modules), None)
            if target is not None and target != module:
                edges[module].add(target)
    state: dict[str, int] = {}
    path_stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path_stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = path_stack[path_stack.index(t):] + [t]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if t not in state:
                visit(t)
        path_stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_strategies_hold_no_orchestration():
    root = Path(__file__).resolve().parents[1] / "eiplab" / "strategies"
    text = "\n".join(p.read_text() for p in root.glob("*.py"))
    for word in ("ProcessPoolExecutor", "multiprocessing", "distributed", "RunStore", "made_with", "glob("):
        assert word not in text, f"strategies/ mentions {word!r}: orchestration belongs in eiplab.workflows"


def test_records_are_read_from_a_grid_folder_or_exported_records(tmp_path):
    from eiplab.workflows import load_records

    store = RunStore(tmp_path / "grid")
    store.write_result(RunSpec("schnet", "baseline", 0), {"model": "schnet", "tag": "baseline", "seed": 0})
    assert len(load_records(tmp_path / "grid")) == 1
    store.export(tmp_path / "records")
    pd.testing.assert_frame_equal(load_records(tmp_path / "records"), load_records(tmp_path / "grid"))
    with pytest.raises(FileNotFoundError, match="no run records"):
        load_records(tmp_path / "grid" / "runs")


def test_gpu_checks_fail_fast_without_cuda(tmp_path):
    """The prepared GPU script stops at once, saying why, on a machine without CUDA."""
    import subprocess
    import sys

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run its checks")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_checks.sh"
    proc = subprocess.run(["bash", str(script), str(tmp_path / "out.json")], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert proc.returncode != 0
    assert "no CUDA device is visible" in proc.stderr + proc.stdout
    assert not (tmp_path / "out.json").exists()


def test_cli_refuses_bad_settings_with_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    from eiplab.cli import TRACEBACK_ENV, main

    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    args = ["grid", "--profile", "quick", "--models", "soapnet", "--force-weight", "10", "--grid-dir", str(tmp_path),
            "--plan"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "eiplab grid: error (ValueError):" in err and "SOAP features" in err and "Traceback" not in err
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(ValueError, match="SOAP features"):
        main(args)
