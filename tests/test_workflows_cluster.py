"""The grid on Dask as a user's cluster would run it: a worker killed mid-fit, two grid commands
on one folder at once, and a separately started scheduler and worker reached by ``--scheduler``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_si import FAST_SI_EIPS, TINY_NET

from eiplab import keys
from eiplab.data import load_dataset, paper_splits
from eiplab.workflows import RunStore, grid_from_profile, run_grid, specs_for

pytest.importorskip("kimpy")
pytestmark = [pytest.mark.kim, pytest.mark.slow]

QUIET = {"log": lambda *_: None}
COLUMNS = ["tag", "seed", "alpha", "n_aug", "test_" + keys.MAE_CONFIG, "val_" + keys.MAE_CONFIG]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("EIPLAB_CACHE", str(cache))
    configs = load_dataset("si-pyxtal", limit=120, seed=3)
    splits = paper_splits(configs, seeds=(0,))
    grid = grid_from_profile("quick", configs, models=["schnet"], **TINY_NET)
    grid.train = replace(grid.train, progress=False)
    yield configs, splits, grid
    mp.undo()


def _spawned_workers() -> list:
    """This process's Dask worker processes (spawned interpreters)."""
    import psutil

    return [p for p in psutil.Process().children(recursive=True)
            if any("spawn" in part for part in p.cmdline())]


def test_a_worker_killed_mid_fit_resumes_with_nothing_lost_or_repeated(setting, tmp_path):
    configs, splits, grid = setting
    grid = replace(grid, train=replace(grid.train, epochs=400))
    specs = specs_for(["schnet"], (0,), ["baseline"])
    serial = run_grid(configs, splits, (0,), FAST_SI_EIPS, specs, grid, tmp_path / "serial", **QUIET)
    store = RunStore(tmp_path / "killed")
    checkpoint = store.run_folder(specs[0]) / "checkpoint_last.pt"
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(table=run_grid(
        configs, splits, (0,), FAST_SI_EIPS, specs, grid, store.root, workers=2, **QUIET)))
    thread.start()
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert thread.is_alive() and time.monotonic() < deadline, "the fit never wrote a checkpoint"
        time.sleep(0.05)
    epoch_at_kill = torch.load(checkpoint, weights_only=True)["epoch"]
    victims = _spawned_workers()
    assert victims, "no Dask worker process to kill"
    for process in victims:
        process.kill()  # SIGKILL: the nanny starts a new worker, the scheduler re-runs the job
    thread.join(timeout=600)
    assert not thread.is_alive() and "table" in outcome
    assert epoch_at_kill < grid.train.epochs - 1  # killed mid-fit
    history = json.loads((store.run_folder(specs[0]) / "run.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(grid.train.epochs))  # resumed: no epoch lost or repeated
    pd.testing.assert_frame_equal(outcome["table"][COLUMNS[:2] + COLUMNS[4:]], serial[COLUMNS[:2] + COLUMNS[4:]])


def _grid_command(grid_dir: Path, tables: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "eiplab.cli", "grid", "--profile", "quick", "--models", "schnet", "--strategies",
         "baseline", "la", "--seeds", "0", "--alphas", "1", "--grid-dir", str(grid_dir), "--tables", str(tables),
         "--eips", *FAST_SI_EIPS, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=grid_dir.parent)


def test_two_grid_commands_on_one_folder_train_each_fit_once(tmp_path):
    env = {**os.environ, "EIPLAB_CACHE": str(tmp_path / "cache")}
    grid_dir = tmp_path / "grid"
    first = _grid_command(grid_dir, tmp_path / "t1", env)
    second = _grid_command(grid_dir, tmp_path / "t2", env)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    both = "\n".join(outputs)
    for run in ("baseline", "la"):  # each run's result written once, by one of the two commands
        assert both.count(f"[grid] schnet {run} seed 0: test MAE") == 1, both
    assert both.count("[grid] classifier schnet seed 0") == 1
    one, two = (pd.read_csv(tmp_path / t / "runs.csv") for t in ("t1", "t2"))
    pd.testing.assert_frame_equal(one, two)
    assert len(RunStore(grid_dir).results()) == 2


def test_a_separately_started_scheduler_and_worker_run_the_grid(tmp_path):
    env = {**os.environ, "EIPLAB_CACHE": str(tmp_path / "cache")}
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                   str(scheduler_file), "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        command = _grid_command(tmp_path / "grid", tmp_path / "tables", env, "--scheduler", str(scheduler_file))
        output = command.communicate(timeout=900)[0]
        assert command.returncode == 0, output
        assert "job(s) to do on the Dask cluster" in output
        records = RunStore(tmp_path / "grid").results().set_index("tag")
        assert list(records.index) == ["baseline", "la"] and records["test_" + keys.MAE_CONFIG].notna().all()
        assert records.loc["la", "alpha"] == 1.0
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
