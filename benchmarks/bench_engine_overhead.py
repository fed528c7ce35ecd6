"""The engine's cost per job: what a job must be worth before spreading it over Dask workers pays.

Runs ``--jobs`` trivial jobs (each returns its argument) through :func:`eiplab.engine.run_jobs`
in this process (the baseline: no Dask) and on a local Dask cluster of ``--workers`` processes,
and prints the cluster's start-up time and the overhead per job in milliseconds (wall time over
the jobs, start-up excluded), plus the same with jobs that need the previous one (a chain, so
none run side by side). Guidance: a job of a few hundred ms or more (an EIP-label chunk of 64
configs, one DFT config, one fit) hides this overhead.

Usage: python benchmarks/bench_engine_overhead.py [--jobs 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

from eiplab.engine import Job, dask_client, run_jobs


def _echo(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    independent = [Job(f"j{k}", _echo, (k,)) for k in range(args.jobs)]
    chain = [Job(f"c{k}", _echo, (k,), needs=(f"c{k - 1}",) if k else ()) for k in range(args.jobs)]

    t0 = time.perf_counter()
    run_jobs(independent, progress=False)
    here = time.perf_counter() - t0
    t0 = time.perf_counter()
    with dask_client(workers=args.workers) as client:
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        run_jobs(independent, client=client, progress=False)
        spread = time.perf_counter() - t1
        t1 = time.perf_counter()
        run_jobs(chain, client=client, progress=False)
        chained = time.perf_counter() - t1
    print(f"{args.jobs} trivial jobs; local Dask cluster of {args.workers} worker process(es)")
    print(f"in this process (no Dask, the baseline): {1000 * here / args.jobs:.3f} ms per job")
    print(f"cluster start-up: {startup:.2f} s")
    print(f"on the cluster, independent jobs: {1000 * spread / args.jobs:.2f} ms per job "
          f"({spread / max(here, 1e-9):.0f}x the in-process cost)")
    print(f"on the cluster, a chain (each job waits for the previous): {1000 * chained / args.jobs:.2f} ms per job")


if __name__ == "__main__":
    main()
