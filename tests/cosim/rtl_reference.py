"""Recorded simulation results of the CI networks, to prove a rewiring of the RTL changed nothing
simulated: per-op cycles and every activity counter, the PMU counters, launches and snapshots,
and a digest of every observed output tensor, compared for exact equality.

The file ``tests/data/rtl_reference_results.json`` was written by running the cosim tests with
``VOLTFLOW_RECORD_RTL_REFERENCE=1`` on the RTL before it was rewired by signatures; only a
deliberate change of the simulated behaviour (and its own review) may re-record it.
"""

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.rtl.activity_counters import SPARSITY_COUNTERS

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "rtl_reference_results.json"
RECORD = os.environ.get("VOLTFLOW_RECORD_RTL_REFERENCE") == "1"


def digest(arrays: Mapping[Any, np.ndarray]) -> dict[str, str]:
    """SHA-256 of every array's shape, dtype and bytes, keyed by the key's text."""
    out = {}
    for key, value in arrays.items():
        h = hashlib.sha256(f"{value.shape} {value.dtype}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
        out[str(key)] = h.hexdigest()
    return dict(sorted(out.items()))


def dense_columns(rows: list[list[int]]) -> list[list[int]]:
    """Log rows whose last columns are the sparsity counters (``rtl.activity_counters``), which
    the recorded runs predate, without them; they must be 0 (a dense build)."""
    n = len(SPARSITY_COUNTERS)
    assert all(not any(row[-n:]) for row in rows), "a dense build counted sparsity events"
    return [row[:-n] for row in rows]


def dense_counters(counters: Mapping[str, int]) -> dict[str, int]:
    """``counters`` without the sparsity counters (0 in a dense build)."""
    assert not any(counters[name] for name in SPARSITY_COUNTERS)
    return {k: v for k, v in counters.items() if k not in SPARSITY_COUNTERS}


#: Snapshot events the recorded runs predate: ``B`` (SET_PERIOD, where the prologue ends) and ``C``
#: (a supply change while ops run: look-ahead programs only).
NEWER_EVENTS = ("B", "C")


def recorded_snapshots(snapshots: Sequence[Any]) -> list[list[Any]]:
    """The snapshots (``cosim.pmu_run.Snapshot``) as recorded: event, cycle and PMU counters, the
    events the recordings predate left out."""
    return [[s.event, s.now, s.counters] for s in snapshots if s.event not in NEWER_EVENTS]


def check(key: str, record: dict[str, Any]) -> None:
    """Assert ``record`` equals the stored one of ``key`` (or store it when recording)."""
    record = json.loads(json.dumps(record))  # the JSON form: tuples become lists, keys text
    stored = json.loads(REFERENCE.read_text()) if REFERENCE.is_file() else {}
    if RECORD:
        stored[key] = record
        REFERENCE.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    assert key in stored, f"no reference recorded for {key}"
    expected = stored[key]
    for field in sorted(set(expected) | set(record)):
        assert record.get(field) == expected.get(field), (key, field)
