"""One executor for every fan-out (sweeps, the figures' jobs, their RTL points): the local process
pool by default, or a Dask cluster named by ``--cluster local`` or ``--cluster tcp://HOST:PORT``.

The pool needs nothing; Dask is an optional extra (``pip install 'voltflow[cluster]'``), imported
only when a cluster is asked for (scheduler/dask_executor.py). Both backends take the same calls:
``submit`` a module-level function, ``share`` a large argument once per worker, collect results
with ``as_completed`` or ``map_unordered``; leaving the ``with`` block on an exception (Ctrl-C
included) cancels what has not run and ends the local workers with everything they started.
"""

import abc
import contextlib
import itertools
import multiprocessing
import os
import re
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from voltflow.scheduler.documents import short

__all__ = [
    "CONNECT_TIMEOUT_S",
    "LOCAL",
    "ClusterError",
    "Executor",
    "JobFuture",
    "Shared",
    "check_cluster",
    "open_executor",
]

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T_co = TypeVar("T_co", covariant=True)

#: ``--cluster local``: a Dask ``LocalCluster`` on this machine.
LOCAL = "local"
#: Seconds to wait for a Dask scheduler to answer, and for it to have a worker.
CONNECT_TIMEOUT_S = 10.0
#: What to install for ``--cluster`` (the extra in pyproject.toml).
INSTALL_HINT = "pip install 'voltflow[cluster]'"

# tcp://HOST:PORT with a host name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d+)")


class ClusterError(ValueError):
    """``--cluster`` cannot be used: malformed, Dask missing, or the scheduler unreachable.

    A ValueError, so the command line prints it as one line with exit status 2."""


def check_cluster(text: str) -> str:
    """``text`` if it names a cluster (``local`` or ``tcp://HOST:PORT``), else a ClusterError."""
    match = _ADDRESS.fullmatch(text) if isinstance(text, str) else None
    if text == LOCAL or (match is not None and 0 < int(match["port"]) < 65536):
        return text
    raise ClusterError(
        f"--cluster must be 'local' or the address of a Dask scheduler as tcp://HOST:PORT "
        f"(e.g. tcp://10.0.0.5:8786), not {short(text)}"
    )


class JobFuture(Protocol[R_co]):
    """What ``submit`` returns on either backend (a concurrent.futures or a Dask future)."""

    def result(self) -> R_co: ...

    def done(self) -> bool: ...

    def cancel(self) -> Any: ...


class Shared(Protocol[T_co]):
    """A value sent to each worker once (:meth:`Executor.share`): pass the handle to ``submit``
    in place of the value, and the job receives the value itself. Opaque: a Dask future, or the
    pool's token."""


@dataclass(frozen=True, slots=True)
class _PoolShared(Generic[T]):
    """The pool's handle: a key into the values the workers inherited, or the value itself."""

    token: str
    value: T | None = None  # carried with each job when the workers already ran at share()


class Executor(abc.ABC):
    """The calls both backends answer. Use it through :func:`open_executor`."""

    #: How many jobs run at once.
    workers: int
    #: One line for progress output: the backend and its size.
    description: str
    #: Whether the workers run on this machine (they are ours to stop and to clean up after).
    local: bool

    @abc.abstractmethod
    def share(self, value: T) -> Shared[T]:
        """Send ``value`` to every worker once; jobs given the handle receive ``value``."""

    @abc.abstractmethod
    def submit(self, fn: Callable[..., R], /, *args: Any) -> JobFuture[R]:
        """Run ``fn(*args)`` on a worker. ``fn`` must be a module-level function (a worker
        imports it by name), its arguments and result picklable."""

    @abc.abstractmethod
    def wait_any(self, futures: Iterable[JobFuture[R]]) -> set[JobFuture[R]]:
        """Block until at least one of ``futures`` is done; return the done ones."""

    @abc.abstractmethod
    def cancel_all(self) -> None:
        """Cancel every job that has not started (running ones finish or end at close)."""

    @abc.abstractmethod
    def close(self, interrupted: bool) -> None:
        """Release the workers; ``interrupted``: at once, ending local workers' processes."""

    def as_completed(self, futures: Iterable[JobFuture[R]]) -> Iterator[JobFuture[R]]:
        """``futures`` in the order they finish."""
        pending = set(futures)
        while pending:
            done = self.wait_any(pending)
            pending -= done
            yield from done

    def map_unordered(
        self, fn: Callable[..., R], jobs: Iterable[Sequence[Any]], in_flight: int | None = None
    ) -> Iterator[R]:
        """``fn(*job)`` for every job, yielded as each finishes; at most ``in_flight`` (default:
        four per worker) submitted at a time, so a long job list costs no memory up front and
        Ctrl-C has little to cancel."""
        limit = in_flight or 4 * self.workers
        queue = iter(jobs)
        pending = {self.submit(fn, *job) for job in itertools.islice(queue, limit)}
        while pending:
            done = self.wait_any(pending)
            pending -= done
            pending |= {self.submit(fn, *job) for job in itertools.islice(queue, len(done))}
            for future in done:
                yield future.result()


@contextlib.contextmanager
def open_executor(
    cluster: str | None = None,
    workers: int | None = None,
    *,
    imports: Sequence[str] = (),
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Iterator[Executor]:
    """The executor for ``--cluster`` (None: the local process pool) with ``workers`` workers
    (default: one per core; a ``tcp://`` cluster has the workers it was started with).

    ``imports``: modules the jobs' functions live in besides voltflow (e.g. ``"bench"``); the
    scheduler and the workers of a remote cluster are checked to import them, and to have this
    voltflow version, before any job is sent. Leaving the block on an exception cancels the jobs
    not started and, for local workers, ends them and every process they started (solvers,
    simulators).

    Raises
    ------
    ClusterError
        ``cluster`` is malformed, Dask is not installed, the scheduler does not answer within
        ``connect_timeout_s`` or has no worker, or the scheduler or a worker lacks a module or
        has another voltflow version.
    ValueError
        ``workers`` is not a positive integer, or is given for a ``tcp://`` cluster.
    """
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer, not {short(workers)}")
    if cluster is None:
        executor: Executor = _ProcessPool(workers or os.cpu_count() or 1)
    else:
        check_cluster(cluster)
        if cluster != LOCAL and workers is not None:
            raise ValueError(
                f"--workers sizes the local pool or --cluster local; the cluster at {cluster} "
                "has the workers it was started with (drop --workers)"
            )
        try:
            from voltflow.scheduler import dask_executor
        except ImportError as exc:
            raise ClusterError(
                f"--cluster {cluster} needs Dask, which is not installed ({exc.name} is "
                f"missing): {INSTALL_HINT}"
            ) from None
        if cluster == LOCAL:
            executor = dask_executor.start_local(workers or os.cpu_count() or 1)
        else:
            executor = dask_executor.connect(cluster, imports, connect_timeout_s)
    try:
        yield executor
    except BaseException:
        executor.close(interrupted=True)
        raise
    executor.close(interrupted=False)


# ---- the local process pool ------------------------------------------------------------------

#: Values shared before the pool's workers fork: they inherit this dict (token -> value).
_SHARED: dict[str, object] = {}
_tokens = itertools.count()


def _pool_worker_start(tmp: str) -> None:
    # A worker is its own process group: the terminal's Ctrl-C reaches the parent only, and the
    # parent ends the worker and whatever its group still holds (CBC, a simulator) with one
    # SIGKILL per group, which no C code (HiGHS) can hold off. Temporary files of the solvers
    # live in the executor's own folder, removed with it.
    os.setpgrp()
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp


def _pool_call(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    """Run ``fn`` in a pool worker with every shared argument replaced by its value."""
    values = [_SHARED.get(a.token, a.value) if isinstance(a, _PoolShared) else a for a in args]
    return fn(*values)


class _ProcessPool(Executor):
    """``concurrent.futures.ProcessPoolExecutor`` with fork workers, each its own process group.

    The workers start at the first ``submit``, so what was shared before it reaches them by
    fork, not by pickling."""

    local = True

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"process pool, {workers} worker" + "s" * (workers != 1)
        self._tmp = tempfile.TemporaryDirectory(prefix="voltflow-pool-")
        self._before = set(multiprocessing.active_children())
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[Any]] = []
        self._tokens: list[str] = []

    def share(self, value: T) -> Shared[T]:
        token = f"{os.getpid()}-{next(_tokens)}"
        if self._pool is not None:  # the workers run already: the value goes with each job
            return _PoolShared(token, value)
        _SHARED[token] = value
        self._tokens.append(token)
        return _PoolShared(token)

    def submit(self, fn: Callable[..., R], /, *args: Any) -> JobFuture[R]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_pool_worker_start,
                initargs=(self._tmp.name,),
            )
        future = self._pool.submit(_pool_call, fn, args)
        self._futures.append(future)
        return future

    def wait_any(self, futures: Iterable[JobFuture[R]]) -> set[JobFuture[R]]:
        own = cast("set[Future[R]]", set(futures))  # what this pool's submit returned
        done, _ = wait(own, return_when=FIRST_COMPLETED)
        finished: set[JobFuture[R]] = set(done)
        return finished

    def cancel_all(self) -> None:
        for future in self._futures:
            future.cancel()

    def close(self, interrupted: bool) -> None:
        try:
            if self._pool is not None:
                if interrupted:
                    self.cancel_all()
                    started = set(multiprocessing.active_children()) - self._before
                    _kill_groups(p.pid for p in started)
                self._pool.shutdown(wait=True, cancel_futures=interrupted)
        finally:
            for token in self._tokens:
                _SHARED.pop(token, None)
            self._tmp.cleanup()


def _kill_groups(pids: Iterable[int | None]) -> None:
    """SIGKILL each worker's process group (the worker and every process it started), and the
    worker itself in case it had not made its group yet."""
    for pid in pids:
        if pid:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
