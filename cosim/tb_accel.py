"""cocotb testbench of the accelerator simulation top (``cosim/sim_top.py``).

Runs inside the simulator. Python only awaits ``finished``: the wrapper resets the chip, the PMU
runs its command program (rails, clocks, banks, launches), the wrapper's own clock drives every
cycle, the wrapper loads the memories and writes the stats and dumps. Plusargs (besides the
wrapper's): ``+max_ticks=`` (timeout budget in wrapper clocks), ``+result=`` (a JSON file
receiving the simulation's wall time).
"""

import json
import time

import cocotb
from cocotb.handle import HierarchyObject, LogicObject
from cocotb.triggers import RisingEdge, with_timeout

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


@cocotb.test()
async def run_program(dut: AccelTopDut) -> None:
    """Run the PMU program to its end; the wrapper records everything else."""
    budget_ns = int(_plusarg("max_ticks")) * CLOCK_PERIOD_NS + 100
    wall = time.perf_counter()
    await with_timeout(RisingEdge(dut.finished), budget_ns, "ns")
    wall = time.perf_counter() - wall
    result = cocotb.plusargs.get("result")
    if isinstance(result, str):
        with open(result, "w") as handle:
            json.dump({"sim_wall_s": wall}, handle)
