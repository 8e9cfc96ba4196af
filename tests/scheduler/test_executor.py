"""The one executor (scheduler/executor.py): the process pool and Dask give the same rows, the
same progress and CSV rows as they finish, and Ctrl-C leaves no process and no half row on
either; a bad ``--cluster`` is one line naming the flag, the value and the fix.

The tests that fork the process pool run before the module's LocalCluster starts (a process with
Dask's threads should not fork). LocalCluster start-up costs a few seconds, so one serves the
module (through its tcp:// address, the path of a remote cluster); ``--cluster local`` starts
its own where that is what is tested.
"""

import csv
import io
import multiprocessing
import os
import re
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from voltflow.scheduler.chip import GatingPolicy, load_chip
from voltflow.scheduler.executor import ClusterError, check_cluster, open_executor
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, build_problem
from voltflow.scheduler.solve import Method
from voltflow.scheduler.sweep import COLUMNS, SweepInterrupted, SweepPoint, run_sweep

from tests.scheduler import executor_jobs as jobs
from voltflow.cli import main

RATES = (500.0, 1000.0, 2000.0, 3000.0)
#: Every method but the ILP (seconds per point; its CBC runs in test_solvers.py).
METHODS = tuple(m for m in Method if m is not Method.ILP)
#: Seconds within which an interrupted executor has ended everything.
STOP_S = 5.0


def _problems(network: str) -> tuple[dict[str, Problem], dict[str, str]]:
    chip = load_chip()
    net = load_network(network)
    problems = {
        p.value: build_problem(net, chip, ProblemOptions(policy=p))[0] for p in GatingPolicy
    }
    no_pg = {Method.NOMINAL, Method.GREEDY}
    instance_of = {
        m.value: (GatingPolicy.NO_PG if m in no_pg else GatingPolicy.RRAM_PG).value for m in Method
    }
    return problems, instance_of


def _sweep(cluster: str | None, workers: int | None = 2) -> tuple[list[SweepPoint], str]:
    problems, instance_of = _problems("ds_cnn")
    out = io.StringIO()
    points = run_sweep(
        problems, instance_of, RATES, METHODS, 3, 1.1, out, workers=workers, progress=None,
        cluster=cluster,
    )  # fmt: skip
    return points, out.getvalue()


def _rows(points: list[SweepPoint]) -> list[dict[str, object]]:
    """The rows without the solver's wall time (the one column that differs between runs)."""
    return [{k: v for k, v in p.row.items() if k != "solve_time_s"} for p in points]


def _csv_rows(text: str) -> list[list[str]]:
    """A sweep CSV's data rows without solve_time_s, sorted (rows come as they finish)."""
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    return sorted(row[:-1] for row in csv.reader(lines[1:]))


def _gone(pid: int) -> bool:
    """The process has ended (a zombie has ended too: only its exit status waits for a parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---- --cluster: checked, and every failure one line naming the flag, the value and the fix ------


@pytest.mark.parametrize(
    "text", ["local", "tcp://10.0.0.5:8786", "tcp://sched.example.org:1", "tcp://[::1]:8786"]
)
def test_cluster_addresses_that_are_accepted(text: str) -> None:
    assert check_cluster(text) == text


@pytest.mark.parametrize(
    "text", ["", "LOCAL", "10.0.0.5:8786", "tcp://host", "tcp://host:0", "tcp://host:65536",
             "tls://host:8786", "tcp://host:8786/x", "tcp://:8786"],
)  # fmt: skip
def test_malformed_cluster_addresses_are_refused(text: str) -> None:
    message = (
        "--cluster must be 'local' or the address of a Dask scheduler as tcp://HOST:PORT "
        f"(e.g. tcp://10.0.0.5:8786), not {text!r}"
    )
    with pytest.raises(ClusterError, match=f"^{re.escape(message)}$"):
        check_cluster(text)


def test_the_sweep_command_refuses_a_malformed_cluster_before_any_work(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sweep", "--net", "ds_cnn", "--fps", "100", "--cluster", "host:8786"])
    assert stop.value.code == 2
    assert "argument --cluster: --cluster must be 'local' or" in capsys.readouterr().err


def test_without_dask_the_cluster_flag_says_what_to_install(monkeypatch) -> None:
    import voltflow.scheduler

    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    monkeypatch.delitem(sys.modules, "voltflow.scheduler.dask_executor", raising=False)
    monkeypatch.delattr(voltflow.scheduler, "dask_executor", raising=False)
    message = (
        "--cluster local needs Dask, which is not installed (distributed is missing): "
        "pip install 'voltflow[cluster]'"
    )
    with pytest.raises(ClusterError, match=f"^{re.escape(message)}$"), open_executor("local"):
        pass


def test_an_unreachable_scheduler_is_one_line_after_the_timeout() -> None:
    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    message = (
        f"--cluster {address}: no Dask scheduler answered within 1 s; start one there with "
        "`dask scheduler` (it listens on port 8786), or check the address"
    )
    started = time.monotonic()
    with (
        pytest.raises(ClusterError, match=f"^{re.escape(message)}$"),
        open_executor(address, connect_timeout_s=1.0),
    ):
        pass
    assert time.monotonic() - started < 10


def test_workers_are_checked_and_not_given_for_a_remote_cluster() -> None:
    with (
        pytest.raises(ValueError, match=r"^workers must be a positive integer, not 0$"),
        open_executor(None, 0),
    ):
        pass
    message = (
        "--workers sizes the local pool or --cluster local; the cluster at tcp://h:8786 has "
        "the workers it was started with (drop --workers)"
    )
    with (
        pytest.raises(ValueError, match=f"^{re.escape(message)}$"),
        open_executor("tcp://h:8786", 4),
    ):
        pass


# ---- the process pool (before any Dask thread exists in this process) ---------------------------


def test_pool_shares_a_value_before_and_after_its_workers_start() -> None:
    with open_executor(None, 2) as executor:
        before = executor.share({"a": [1, 2, 3]})
        first = executor.submit(jobs.total, before, "a")
        after = executor.share({"b": [4, 5]})  # the workers run now: sent with each job
        futures = [first, executor.submit(jobs.total, after, "b")]
        assert {f.result() for f in executor.as_completed(futures)} == {6, 9}
        assert sorted(executor.map_unordered(jobs.add, [(i, i) for i in range(20)], 3)) == [
            2 * i for i in range(20)
        ]
    assert multiprocessing.active_children() == []


@pytest.fixture(scope="module")
def pool_sweep() -> tuple[list[SweepPoint], str]:
    return _sweep(None)


def test_pool_sweep_rows(pool_sweep) -> None:
    points, text = pool_sweep
    assert len(points) == len(RATES) * len(METHODS)
    assert [(p.fps, p.method) for p in points] == [(r, m) for r in RATES for m in METHODS]
    assert len(_csv_rows(text)) == len(points)


class _InterruptAtRow:
    """A progress stream that raises KeyboardInterrupt (Ctrl-C) when the bar shows row ``n``."""

    def __init__(self, n: int) -> None:
        self.mark = f"] {n}/"
        self.at: float | None = None

    def write(self, text: str) -> int:
        if self.mark in text:
            self.at = time.monotonic()
            raise KeyboardInterrupt
        return len(text)

    def flush(self) -> None:
        pass


def _interrupt_a_sweep(cluster: str | None, tmp_path: Path) -> None:
    """Ctrl-C after the first row while an ILP (CBC, 60 s limit) runs on the other worker: the
    sweep stops within seconds, the file holds the header and whole rows only, no child is
    left."""
    problems, instance_of = _problems("squeezenet")
    progress = _InterruptAtRow(1)
    path = tmp_path / "sweep.csv"
    with path.open("w") as out, pytest.raises(SweepInterrupted) as stop:
        run_sweep(
            problems, instance_of, (30.0, 40.0, 50.0), (Method.NOMINAL, Method.ILP), 3, 1.1,
            out, time_limit_s=60.0, workers=2, progress=progress, cluster=cluster,
        )  # fmt: skip
    assert progress.at is not None and time.monotonic() - progress.at < STOP_S
    assert stop.value.total == 6 and len(stop.value.points) == 1
    text = path.read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == list(COLUMNS) and len(rows) == 2
    assert all(len(row) == len(COLUMNS) for row in rows)
    assert multiprocessing.active_children() == []


def _interrupt_a_job_with_a_child(cluster: str | None, tmp_path: Path) -> None:
    """Ctrl-C while a job waits for a process it started: the worker and that process end."""
    pid_file = tmp_path / "pids"
    with pytest.raises(KeyboardInterrupt), open_executor(cluster, 2) as executor:
        executor.submit(jobs.spawn_and_wait, str(pid_file))
        assert next(executor.as_completed([executor.submit(jobs.add, 1, 2)])).result() == 3
        assert _wait_until(pid_file.exists, 30), "the long job did not start"
        interrupted = time.monotonic()
        raise KeyboardInterrupt
    assert time.monotonic() - interrupted < STOP_S
    worker, child = (int(x) for x in pid_file.read_text().split())
    assert worker != os.getpid()
    assert _wait_until(lambda: _gone(worker) and _gone(child), STOP_S), (worker, child)
    assert multiprocessing.active_children() == []


def test_ctrl_c_in_a_pool_sweep_leaves_whole_rows_and_no_process(tmp_path) -> None:
    _interrupt_a_sweep(None, tmp_path)


def test_ctrl_c_ends_the_pools_workers_and_the_processes_they_started(tmp_path) -> None:
    _interrupt_a_job_with_a_child(None, tmp_path)


# ---- Dask from here on ---------------------------------------------------------------------------


def test_voltflow_sweep_on_a_local_cluster_writes_the_pools_rows(tmp_path, capsys) -> None:
    """`voltflow sweep --cluster local` (a LocalCluster of its own) against the pool, both
    through the command, row for row; the progress line names the executor."""
    files = {}
    for name, flags in (("pool", []), ("cluster", ["--cluster", "local"])):
        files[name] = tmp_path / f"{name}.csv"
        argv = ["sweep", "--net", "ds_cnn", "--fps", "1000,3000", "--methods", "dp,nominal,greedy"]
        assert main([*argv, "--workers", "2", *flags, "-o", str(files[name])]) == 0
        err = capsys.readouterr().err
        where = "Dask LocalCluster, 2 workers" if flags else "process pool, 2 workers"
        assert f"sweep: 6 points on {where}\n" in err
        assert "sweep [##############################] 6/6" in err
    pool, cluster = (_csv_rows(files[n].read_text()) for n in ("pool", "cluster"))
    assert pool == cluster and len(pool) == 6


def test_ctrl_c_in_a_local_cluster_sweep_leaves_whole_rows_and_no_process(tmp_path) -> None:
    _interrupt_a_sweep("local", tmp_path)


def test_ctrl_c_ends_the_local_clusters_workers_and_the_processes_they_started(tmp_path) -> None:
    _interrupt_a_job_with_a_child("local", tmp_path)


# ---- one LocalCluster for the module, reached as a remote cluster is -----------------------------


@pytest.fixture(scope="module")
def cluster_address(pool_sweep) -> Iterator[str]:
    """A two-worker LocalCluster's scheduler address (after the pool's fixture: no fork later)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster.scheduler_address


def test_a_sweep_on_a_cluster_gives_the_pools_rows(pool_sweep, cluster_address) -> None:
    pool_points, pool_text = pool_sweep
    points, text = _sweep(cluster_address, workers=None)
    assert _rows(points) == _rows(pool_points)
    assert _csv_rows(text) == _csv_rows(pool_text)


def test_a_remote_cluster_is_checked_and_described(cluster_address) -> None:
    with open_executor(cluster_address) as executor:
        assert executor.description == f"Dask cluster {cluster_address}, 2 workers"
        assert executor.workers == 2 and not executor.local
        shared = executor.share({"a": [1, 2, 3]})
        futures = [executor.submit(jobs.total, shared, "a") for _ in range(4)]
        assert [f.result() for f in executor.as_completed(futures)] == [6] * 4


def test_a_scheduler_or_worker_without_a_module_the_jobs_need_is_named(
    cluster_address, monkeypatch
) -> None:
    """The module fixture's scheduler runs in this process, its workers in their own."""
    fix = (
        r"; start it with the voltflow checkout on PYTHONPATH \(`PYTHONPATH=/path/to/voltflow dask"
    )
    pattern = (
        rf"^--cluster {re.escape(cluster_address)}: the scheduler cannot run voltflow's jobs "
        rf"\(ModuleNotFoundError: No module named 'no_such_module'\){fix} scheduler`; "
        r"docs/scale.md\)$"
    )
    with (
        pytest.raises(ClusterError, match=pattern),
        open_executor(cluster_address, imports=("no_such_module",)),
    ):
        pass
    monkeypatch.setitem(sys.modules, "only_here", types.ModuleType("only_here"))
    pattern = (
        rf"^--cluster {re.escape(cluster_address)}: worker tcp://127\.0\.0\.1:\d+ cannot run "
        r"voltflow's jobs \(ModuleNotFoundError: No module named 'only_here'\)"
        rf"{fix} worker {re.escape(cluster_address)}`; docs/scale.md\)$"
    )
    with (
        pytest.raises(ClusterError, match=pattern),
        open_executor(cluster_address, imports=("only_here",)),
    ):
        pass


def test_a_worker_with_another_voltflow_version_is_named(cluster_address, monkeypatch) -> None:
    import importlib.metadata

    theirs = importlib.metadata.version("voltflow")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")  # this process only
    pattern = (
        rf"^--cluster {re.escape(cluster_address)}: worker tcp://127\.0\.0\.1:\d+ has voltflow "
        rf"{re.escape(theirs)}, this machine 9\.9\.9; install the same version on the scheduler "
        r"and every worker$"
    )
    with pytest.raises(ClusterError, match=pattern), open_executor(cluster_address):
        pass


def test_a_scheduler_without_workers_says_how_to_start_one() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=True, dashboard_address="127.0.0.1:0") as empty:
        address = empty.scheduler_address
        message = (
            f"--cluster {address}: the scheduler has no worker after 1 s; start one on each "
            f"machine with `dask worker {address}`"
        )
        with (
            pytest.raises(ClusterError, match=f"^{re.escape(message)}$"),
            open_executor(address, connect_timeout_s=1.0),
        ):
            pass
