"""Job functions for test_executor.py, in a module of their own: a worker imports a job by name."""

import os
import subprocess
from pathlib import Path


def add(a: int, b: int) -> int:
    return a + b


def total(values: dict[str, list[int]], key: str) -> int:
    """Sums a shared value's entry (the job receives the value, not the handle)."""
    return sum(values[key])


def pid() -> int:
    return os.getpid()


def spawn_and_wait(pid_file: str) -> int:
    """Stands in for a job that runs a solver or simulator process (CBC, `voltflow cosim`):
    starts a long child, writes ``"<worker pid> <child pid>"``, and waits for it."""
    child = subprocess.Popen(["sleep", "600"])
    Path(pid_file).write_text(f"{os.getpid()} {child.pid}\n")
    return child.wait()
