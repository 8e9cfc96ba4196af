"""cocotb testbench of the accelerator simulation top (``cosim/sim_top.py``).

Runs inside the simulator. Python only awaits ``finished``: the wrapper resets the chip, the PMU
runs its command program (rails, clocks, banks, launches), the wrapper's own clock drives every
cycle, the wrapper loads the memories and writes the stats and dumps. Plusargs (besides the
wrapper's): ``+max_ticks=`` (timeout budget in wrapper clocks), ``+result=`` (a JSON file
receiving the simulation's wall time and the mismatches found), ``+expect=`` (a JSON file of what
the host expects, see :func:`check_expectation`: when given, the test fails on any difference).
"""

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.handle import HierarchyObject, LogicObject
from cocotb.triggers import RisingEdge, with_timeout

__all__ = ["AccelTopDut", "check_expectation", "output_digest", "run_program"]

#: The wrapper's clock period in ns (``always #1``).
CLOCK_PERIOD_NS = 2


class AccelTopDut(HierarchyObject):
    """The port awaited here, with its handle type; for type checking only (never instantiated)."""

    finished: LogicObject


def _plusarg(name: str) -> str:
    value = cocotb.plusargs.get(name)
    if value is None or isinstance(value, bool):
        raise ValueError(f"plusarg +{name}= must be given")
    return str(value)


def output_digest(tensor: np.ndarray) -> str:
    """SHA-256 of an int8 (C, H, W) tensor's shape and bytes (host and testbench alike)."""
    digest = hashlib.sha256(repr(tuple(tensor.shape)).encode())
    digest.update(np.ascontiguousarray(tensor, dtype=np.int8).tobytes())
    return digest.hexdigest()


def check_expectation(expect: dict[str, Any], stats: Path, dump_prefix: str) -> list[str]:
    """What the run wrote that differs from ``expect`` (empty: none).

    ``expect``: ``counters`` (the counter names of a stats line), ``ops`` (per descriptor the
    expected counter differences, by name, of the counters the host predicts) and ``outputs``
    (per observed tensor: descriptor, first dumped word, word offset, words, shape, digest).
    """
    # Imported here: the host's image format, needed only when there is something to check.
    from voltflow.cosim.images import from_words, read_readmemh

    names = expect["counters"]
    rows = [[int(x) for x in line.split()] for line in stats.read_text().splitlines()]
    found = []
    if len(rows) != len(expect["ops"]):
        found.append(f"{len(rows)} ops finished, expected {len(expect['ops'])}")
    previous = [0] * len(names)
    for k, (row, op) in enumerate(zip(rows, expect["ops"], strict=False)):
        delta = dict(
            zip(names, (a - b for a, b in zip(row[1:], previous, strict=True)), strict=True)
        )
        previous = row[1:]
        for name, value in op.items():
            if delta[name] != value:
                found.append(f"op {k}: {name} {delta[name]}, expected {value}")
    for name, out in expect["outputs"].items():
        path = Path(f"{dump_prefix}0_{out['op']}.hex")
        if not path.is_file():
            found.append(f"output {name}: no dump {path.name}")
            continue
        words = read_readmemh(path)[out["offset"] : out["offset"] + out["words"]]
        if output_digest(from_words(words, tuple(out["shape"]))) != out["digest"]:
            found.append(f"output {name} differs from the golden model")
    return found


@cocotb.test()
async def run_program(dut: AccelTopDut) -> None:
    """Run the PMU program to its end; then check what the host expects, if it said."""
    budget_ns = int(_plusarg("max_ticks")) * CLOCK_PERIOD_NS + 100
    wall = time.perf_counter()
    await with_timeout(RisingEdge(dut.finished), budget_ns, "ns")
    wall = time.perf_counter() - wall
    mismatches: list[str] = []
    expect = cocotb.plusargs.get("expect")
    if isinstance(expect, str):
        mismatches = check_expectation(
            json.loads(Path(expect).read_text()),
            Path(_plusarg("stats")),
            _plusarg("dump_prefix"),
        )
    result = cocotb.plusargs.get("result")
    if isinstance(result, str):
        with open(result, "w") as handle:
            json.dump({"sim_wall_s": wall, "mismatches": mismatches}, handle)
    assert not mismatches, "the RTL differs from the expectation: " + "; ".join(mismatches[:20])
