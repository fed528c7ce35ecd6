"""Wall time of a strategy grid: ``run_grid(workers=2)`` (a local Dask cluster of 2 worker
processes, 1 torch thread each) vs the serial grid in one process with 2 torch threads (the
baseline, same machine, same run).

Grid: SchNet at the paper's width (128) and depth (5 layers) on built-in si-pyxtal configs,
baseline + LA (2 alphas) on ``--splits`` splits, ``--epochs`` epochs each: the classifier, two LA
fits and a baseline fit per split, i.e. the independent fits ``--workers`` spreads. The EIP
labels are computed once before timing (both sides read the same cache); each side trains into
its own empty grid folder. Prints both wall times, the ratio serial / workers (target > 1 on a
2-core machine) and whether both chose the same alphas and reached the same test MAE.

Run: ``python benchmarks/bench_grid_workers.py [--limit 1500] [--epochs 3] [--splits 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1500, help="si-pyxtal configs drawn (seeded)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    os.environ["EIPLAB_CACHE"] = str(work / "cache")  # before eiplab reads it
    import torch

    from eiplab.data import load_dataset, paper_splits
    from eiplab.eips import models_for_dataset
    from eiplab.strategies import label_with_eips
    from eiplab.workflows import grid_from_profile, run_grid, specs_for

    configs = load_dataset("si-pyxtal", limit=args.limit, seed=0)
    seeds = tuple(range(args.splits))
    splits = paper_splits(configs, seeds=seeds)
    eips = [m.model_id for m in models_for_dataset(configs)]
    label_with_eips(configs, eips, n_jobs=2, progress=False)
    grid = grid_from_profile("paper", configs, models=["schnet"], alphas=(0.1, 1.0))
    grid.train = replace(grid.train, epochs=args.epochs, progress=False)
    specs = specs_for(["schnet"], seeds, ["baseline", "la"])
    quiet = {"log": lambda *_: None}

    torch.set_num_threads(args.workers)
    started = time.perf_counter()
    serial = run_grid(configs, splits, seeds, eips, specs, grid, work / "serial", n_jobs=2, threads=args.workers,
                      **quiet)
    t_serial = time.perf_counter() - started

    started = time.perf_counter()
    parallel = run_grid(configs, splits, seeds, eips, specs, grid, work / "workers", n_jobs=2,
                        workers=args.workers, threads=1, **quiet)
    t_workers = time.perf_counter() - started

    same_alpha = serial["alpha"].fillna(-1).tolist() == parallel["alpha"].fillna(-1).tolist()
    mae_gap = (serial["test_mae_config"] - parallel["test_mae_config"]).abs().max()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{len(configs)} configs, {args.splits} splits, {args.epochs} epochs, SchNet 128 x 5, fits per split: "
          "classifier + baseline + LA alphas 0.1, 1")
    print(f"serial, 1 process x {args.workers} torch threads: {t_serial:.1f} s")
    print(f"run_grid(workers={args.workers}) on a local Dask cluster, 1 torch thread each: {t_workers:.1f} s")
    print(f"ratio serial / workers: {t_serial / t_workers:.2f}x")
    print(f"same alphas chosen: {same_alpha}; largest test MAE difference: {mae_gap:.2e} eV")


if __name__ == "__main__":
    main()
