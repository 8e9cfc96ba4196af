"""The Dask backend of scheduler/executor.py: a ``LocalCluster`` on this machine, or a client of a
running ``dask scheduler``. Imported only when ``--cluster`` is given (Dask is an optional extra).
"""

import asyncio
import importlib
import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from distributed import Client, LocalCluster, Nanny, wait
from distributed.diagnostics.plugin import WorkerPlugin
from voltflow.scheduler.executor import ClusterError, Executor, JobFuture, Shared, _kill_groups

__all__ = ["DaskExecutor", "connect", "start_local"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds a LocalCluster worker gets to stop by itself before it is killed: when interrupted
#: (inside a job, it is killed), and at a normal close (it is idle).
_STOP_GRACE_S = 1.0
_CLOSE_TIMEOUT_S = 10.0


class _LocalWorkerSetup(WorkerPlugin):
    """Runs in every worker of our LocalCluster (also one the nanny restarts): the same process
    set-up as the pool's workers (own process group, temporary files in the executor's folder)."""

    idempotent = True

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp

    def setup(self, worker: Any) -> None:
        os.setpgrp()
        os.environ["TMPDIR"] = self.tmp
        tempfile.tempdir = self.tmp


class DaskExecutor(Executor):
    """A Dask client; with ``cluster``, the LocalCluster it owns and ends."""

    def __init__(
        self,
        client: Client,
        description: str,
        workers: int,
        cluster: LocalCluster | None = None,
        tmp: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self.client = client
        self.description = description
        self.workers = workers
        self.local = cluster is not None
        self._cluster = cluster
        self._tmp = tmp
        self._futures: list[Any] = []

    def share(self, value: T) -> Shared[T]:
        # A Dask future given as an argument reaches the job as its value; broadcast: every
        # worker holds a copy before the first job needs it. In a list, so that a dict is sent
        # as one value under a random key (a dict's items would be scattered under its keys).
        (future,) = self.client.scatter([value], broadcast=True, hash=False)
        self._futures.append(future)
        return future

    def submit(self, fn: Callable[..., R], /, *args: Any) -> JobFuture[R]:
        future = self.client.submit(fn, *args, pure=False)  # every submit runs, even if alike
        self._futures.append(future)
        return future

    def wait_any(self, futures: Iterable[JobFuture[R]]) -> set[JobFuture[R]]:
        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done)

    def cancel_all(self) -> None:
        if self._futures:
            self.client.cancel(self._futures)

    def close(self, interrupted: bool) -> None:
        try:
            self.cancel_all()  # interrupted: the jobs not started; else: releases shared data
            self._futures.clear()
            if self._cluster is not None:
                nannies = [n for n in self._cluster.workers.values() if isinstance(n, Nanny)]
                groups = [n.pid for n in nannies]
                # The workers first (interrupted: killed if still inside a job after a grace
                # period), then the scheduler: no worker is left talking to a closed scheduler.
                grace = _STOP_GRACE_S if interrupted else _CLOSE_TIMEOUT_S
                self._cluster.sync(_stop_nannies, nannies, grace)
                self.client.close()
                self._cluster.close()
                _kill_groups(groups)  # what the workers' jobs started (CBC, simulators)
            else:  # a remote cluster's jobs that already run finish there; we only leave
                self.client.close()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()


async def _stop_nannies(nannies: Sequence[Nanny], grace_s: float) -> None:
    await asyncio.gather(*(n.close(timeout=grace_s, reason="voltflow-close") for n in nannies))


def start_local(workers: int) -> DaskExecutor:
    """A LocalCluster of ``workers`` single-threaded worker processes on this machine."""
    tmp = tempfile.TemporaryDirectory(prefix="voltflow-cluster-")
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,  # one job per process, as in the pool (the solvers are not
        processes=True,  # thread-safe, and the GIL would serialise them anyway)
        # The scheduler's web server (dashboard, if bokeh is installed) on a free loopback port:
        # never on another interface, never clashing with another cluster's default 8787.
        dashboard_address="127.0.0.1:0",
        local_directory=tmp.name,
        silence_logs=logging.ERROR,  # voltflow reports progress and errors itself
    )
    try:
        client = Client(cluster)
        client.register_plugin(_LocalWorkerSetup(tmp.name), name="voltflow-local-worker")
    except BaseException:
        cluster.close()
        tmp.cleanup()
        raise
    description = f"Dask LocalCluster, {workers} worker" + "s" * (workers != 1)
    return DaskExecutor(client, description, workers, cluster, tmp)


def _environment_check(imports: Sequence[str]) -> str:
    """On the scheduler or a worker: its voltflow version, after importing ``imports`` (raises
    if one fails)."""
    for name in imports:
        importlib.import_module(name)
    return importlib.metadata.version("voltflow")


def _fix(place: str, address: str, error: BaseException, version: str) -> str:
    """What to do about a scheduler or worker that cannot import what the jobs need."""
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if missing is not None and missing.split(".")[0] != "voltflow":
        command = "dask scheduler" if place == "the scheduler" else f"dask worker {address}"
        return (
            f"start it with the voltflow checkout on PYTHONPATH "
            f"(`PYTHONPATH=/path/to/voltflow {command}`; docs/scale.md)"
        )
    return f"install voltflow {version} there (docs/scale.md)"


def connect(address: str, imports: Sequence[str], timeout_s: float) -> DaskExecutor:
    """A client of the scheduler at ``address``, checked: it answers, has workers, and the
    scheduler (which unpickles the jobs too) and every worker run this voltflow version and
    import ``imports``."""
    flag = f"--cluster {address}"
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError):
        raise ClusterError(
            f"{flag}: no Dask scheduler answered within {timeout_s:g} s; start one there with "
            "`dask scheduler` (it listens on port 8786), or check the address"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except TimeoutError:
            raise ClusterError(
                f"{flag}: the scheduler has no worker after {timeout_s:g} s; start one on each "
                f"machine with `dask worker {address}`"
            ) from None
        mine = importlib.metadata.version("voltflow")
        try:
            on_scheduler: object = client.run_on_scheduler(_environment_check, tuple(imports))
        except Exception as exc:
            on_scheduler = exc
        answers = client.run(_environment_check, tuple(imports), on_error="return")
        places = [("the scheduler", on_scheduler)]
        places += [(f"worker {worker}", answer) for worker, answer in sorted(answers.items())]
        for place, answer in places:
            if isinstance(answer, BaseException):
                raise ClusterError(
                    f"{flag}: {place} cannot run voltflow's jobs ({type(answer).__name__}: "
                    f"{answer}); {_fix(place, address, answer, mine)}"
                )
            if answer != mine:
                raise ClusterError(
                    f"{flag}: {place} has voltflow {answer}, this machine {mine}; install the "
                    "same version on the scheduler and every worker"
                )
    except BaseException:
        client.close()
        raise
    count = len(answers)
    plural = "s" * (count != 1)
    return DaskExecutor(client, f"Dask cluster {address}, {count} worker{plural}", count)
