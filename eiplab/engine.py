"""The one engine for eiplab's parallel work: Dask (``dask.distributed``).

EIP labelling (chunks of configs), DFT labelling (one config each) and the strategy grid (one
fit each) are lists of :class:`Job` s -- a name, a function, its arguments and the jobs it needs
-- handed to :func:`run_jobs`:

- ``workers=1`` and no scheduler: in this process, in order (no Dask at all);
- ``workers=N``: a ``LocalCluster`` of N worker processes (one thread each by default), started
  on first use and kept for the rest of the process (so labelling, then a grid's fits, reuse the
  same warm workers; :func:`close_local_clusters` or the end of the process closes it);
- ``scheduler="tcp://host:8786"`` (or the path of a scheduler file): an existing cluster, e.g.
  dask-jobqueue on SLURM, and the same jobs run there.

A job is submitted once every job it needs has finished, first ready first in the list's order,
and at most ``in_flight`` at a time (default: the cluster's threads), so a long list does not
flood the scheduler and the order of the list is the order of the work. Each result comes back
to this process, where ``on_done(job, result)`` stores it at once (labelling cache, DFT store):
an interrupted run keeps everything finished. A worker that dies mid-job has the job re-run on
another worker (Dask's retry; the grid's fits resume from their checkpoints). The first failing
job stops the run: pending jobs are cancelled and the error names the job.

Low level, like :mod:`eiplab.atomic_io`: imports nothing of eiplab's method, so labelling, the
DFT runner and the workflows all use it without an import circle.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

SCHEDULER_ENV = "EIPLAB_SCHEDULER"  # a default scheduler address or file for every call


@dataclass(frozen=True)
class Shared:
    """Placeholder in a job's arguments for a large object sent to the workers once
    (``run_jobs(shared={name: object})``), not once per job."""

    name: str


@dataclass(frozen=True)
class Job:
    """One unit of work.

    Attributes:
        name: unique among the jobs of a call (it names the job in logs and errors).
        fn: a picklable (module-level) function.
        args: its positional arguments (:class:`Shared` placeholders are replaced).
        needs: names of jobs that must finish first (names not among the jobs count as done).
        kwargs: its keyword arguments.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class JobError(RuntimeError):
    """A job failed; ``job`` names it (the original exception is the ``__cause__``)."""

    def __init__(self, job: str, message: str):
        super().__init__(message)
        self.job = job


def scheduler_from_env(scheduler: str | None) -> str | None:
    """``scheduler``, or the ``EIPLAB_SCHEDULER`` environment variable when it is None."""
    return scheduler if scheduler is not None else (os.environ.get(SCHEDULER_ENV) or None)


_LOCAL: dict[tuple[int, int, int], tuple[Any, Any]] = {}  # (workers, threads, environment) -> (cluster, client)


def _environment() -> int:
    """A fingerprint of what worker processes inherit at start (``sys.path``, environment
    variables): a kept cluster whose workers started under another one is replaced. Dask's own
    scheduler appends its scratch folder (``.../dask-scratch-space/scheduler-*``, for uploaded
    files) to ``sys.path`` when it starts: left out, else every call would see a "changed"
    ``sys.path`` and restart the cluster it has just started (measured: labelling 0.6x instead
    of ~1.6x on 2 workers)."""
    import sys

    path = tuple(p for p in sys.path if "dask-scratch-space" not in p)
    return hash((path, tuple(sorted(os.environ.items()))))


def local_client(workers: int, threads: int = 1) -> Any:
    """The process's ``LocalCluster`` of ``workers`` processes x ``threads`` threads (no dashboard),
    started on first use and reused by later calls (its workers stay warm: imports and models
    loaded once); replaced when a worker count or threads differ, ``sys.path`` or the environment
    variables changed since its workers started (they would not see the change), or it stopped
    answering."""
    from distributed import Client, LocalCluster

    key = (workers, threads, _environment())
    if key in _LOCAL:
        cluster, client = _LOCAL[key]
        if client.status == "running" and len(client.nthreads()) == workers:
            return client
        close_local_clusters()
    close_local_clusters()  # at most one local cluster at a time: the cores are the same
    import dask

    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; glibc then returns freed memory
    # at once, and torch training (many small tensors) runs 1.5-2x slower (measured here: one
    # SchNet fit 3.2 s vs 1.9 s). Unset it (None), keep the one-thread BLAS/OpenMP settings.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None)
    client = Client(cluster)
    _LOCAL[key] = (cluster, client)
    if len(_LOCAL) == 1:
        atexit.register(close_local_clusters)
    return client


def close_local_clusters() -> None:
    """Close the local cluster(s) this process started (their worker processes end)."""
    while _LOCAL:
        _, (cluster, client) = _LOCAL.popitem()
        with contextlib.suppress(Exception):  # closing a cluster that already lost its workers
            client.close()
            cluster.close()


@contextlib.contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None, threads: int = 1) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` (an address such as ``tcp://host:8786`` or the
    path of a scheduler file; closed on exit), else to the process's local cluster of ``workers``
    processes with ``threads`` threads each (:func:`local_client`), or None when ``workers <= 1``
    and there is no scheduler (work runs in this process)."""
    scheduler = scheduler_from_env(scheduler)
    if scheduler is None and workers <= 1:
        yield None
        return
    if scheduler is None:
        yield local_client(workers, threads)
        return
    from distributed import Client

    kind = "scheduler_file" if os.path.exists(scheduler) else "address"
    with Client(**{kind: scheduler}) as client:
        yield client


def run_jobs(
    jobs: Sequence[Job],
    on_done: Callable[[Job, Any], None] | None = None,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    threads: int = 1,
    in_flight: int | None = None,
    shared: Mapping[str, Any] | None = None,
    progress: bool = True,
    desc: str = "jobs",
    unit: str = "job",
    log: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Run every job after the jobs it needs; returns ``{name: result}``.

    Args:
        jobs: the work, in the order it should preferably run.
        on_done: called in this process with each finished job and its result, in completion
            order (store results here: a later interrupt keeps them).
        workers, scheduler, threads: where it runs (:func:`dask_client`); ignored when
            ``client`` is given.
        client: an open ``distributed.Client`` to use (not closed here).
        in_flight: jobs submitted at a time (default: the cluster's threads; more keeps workers
            busy between short jobs, at the price of the order when the jobs are long).
        shared: large objects the jobs' :class:`Shared` arguments refer to, sent to every
            worker once.
        progress: a tqdm bar of jobs done / left.
        desc, unit: the bar's label and unit.
        log: called with one line per finished job ("done (k/n): name in s").

    Raises:
        JobError: a job raised (pending jobs are cancelled first; finished ones were handed to
            ``on_done``).
        ValueError: duplicate job names, or jobs that wait on each other.
    """
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
    results: dict[str, Any] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress or not jobs)
    started = time.perf_counter()

    def finished(job: Job, result: Any, seconds: float) -> None:
        results[job.name] = result
        if on_done is not None:
            on_done(job, result)
        bar.update(1)
        if log is not None:
            log(f"done ({len(results)}/{len(jobs)}): {job.name} in {seconds / 60:.1f} min")

    try:
        if client is not None:
            _run_dask(jobs, client, finished, in_flight, shared or {})
        else:
            with dask_client(workers, scheduler, threads) as own:
                if own is None:
                    _run_here(jobs, finished, shared or {})
                else:
                    _run_dask(jobs, own, finished, in_flight, shared or {})
    finally:
        bar.close()
    if log is not None and jobs:
        log(f"{len(jobs)} job(s) in {(time.perf_counter() - started) / 60:.1f} min")
    return results


def _ready(waiting: list[Job], done: set[str], names: set[str]) -> list[Job]:
    """The waiting jobs whose needs are done (or not among the jobs), in list order."""
    return [job for job in waiting if all(need in done or need not in names for need in job.needs)]


def _resolve(value: Any, shared: Mapping[str, Any]) -> Any:
    return shared[value.name] if isinstance(value, Shared) else value


def _call(job: Job, shared: Mapping[str, Any]) -> Any:
    args = tuple(_resolve(a, shared) for a in job.args)
    kwargs = {k: _resolve(v, shared) for k, v in job.kwargs.items()}
    return job.fn(*args, **kwargs)


def _run_here(jobs: Sequence[Job], finished: Callable[[Job, Any, float], None], shared: Mapping[str, Any]) -> None:
    names, done, waiting = {job.name for job in jobs}, set(), list(jobs)
    while waiting:
        ready = _ready(waiting, done, names)
        if not ready:
            raise ValueError(f"jobs wait on each other: {[job.name for job in waiting]}")
        job = ready[0]
        waiting.remove(job)
        t0 = time.perf_counter()
        try:
            result = _call(job, shared)
        except Exception as e:
            raise JobError(job.name, f"job '{job.name}' failed: {type(e).__name__}: {e}") from e
        done.add(job.name)
        finished(job, result, time.perf_counter() - t0)


def _shared(value: Any) -> Any:
    """Worker side: a shared object, as the result of a task that can be recomputed."""
    return value


def _timed(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> tuple[Any, float]:
    """Worker side: the result and the seconds it took."""
    t0 = time.perf_counter()
    return fn(*args, **kwargs), time.perf_counter() - t0


def _run_dask(jobs: Sequence[Job], client: Any, finished: Callable[[Job, Any, float], None], in_flight: int | None,
              shared: Mapping[str, Any]) -> None:
    from distributed import as_completed, wait

    limit = in_flight or max(sum(client.nthreads().values()), 1)
    # a task holding each shared object (not client.scatter): if every worker holding it dies, the
    # scheduler recomputes it from the task, so jobs needing it can still be re-run elsewhere
    # (a dataset in such a task makes Dask warn "Sending large graph"; here that is by design, sent
    # once per call, so the warning would only alarm users)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        remote = {name: client.submit(_shared, value, key=f"eiplab-shared-{name}-{time.time_ns()}", pure=False)
                  for name, value in shared.items()}
    if remote and len(client.nthreads()) > 1:
        # on every worker up front: else Dask runs the jobs where the data is, one worker at a time
        wait(list(remote.values()))
        client.replicate(list(remote.values()))
    names, done, waiting = {job.name for job in jobs}, set(), list(jobs)
    running: dict[Any, Job] = {}
    stream = as_completed()
    try:
        while waiting or running:
            for job in _ready(waiting, done, names)[: max(limit - len(running), 0)]:
                waiting.remove(job)
                args = tuple(_resolve(a, remote) for a in job.args)
                kwargs = {k: _resolve(v, remote) for k, v in job.kwargs.items()}
                future = client.submit(_timed, job.fn, args, kwargs, key=f"eiplab-{job.name}-{time.time_ns()}",
                                       pure=False)
                running[future] = job
                stream.add(future)
            if not running:
                raise ValueError(f"jobs wait on each other: {[job.name for job in waiting]}")
            future = next(stream)
            job = running.pop(future)
            try:
                result, seconds = future.result()
            except Exception as e:
                raise JobError(job.name, f"job '{job.name}' failed on a Dask worker: {type(e).__name__}: {e}; "
                                         "finished jobs are kept, run the same call again to resume") from e
            done.add(job.name)
            finished(job, result, seconds)
    except BaseException:
        for future in running:
            future.cancel()
        raise
