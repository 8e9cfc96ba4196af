"""cocotb testbench for :class:`tests.rtl.smoke_counter.SmokeCounter`: ``done`` rises on the
exact cycle.

Runs inside the simulator (see ``tests/cosim/test_toolchain.py``). Python never touches the DUT per
cycle: the hardware counts alone while the testbench waits on ``RisingEdge(dut.done)``.

Plusargs: ``+limit=N`` (default 37) sets the limit; ``+expect_cycles=N`` overrides the latency the
testbench expects (the specification says ``limit``) and exists only so the harness can prove that
a wrong expectation is reported as a failure.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject, LogicArrayObject, LogicObject
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

CLOCK_PERIOD_NS = 10
DEFAULT_LIMIT = 37
#: Enabled cycles, then disabled cycles, in the pause test.
PAUSE_AFTER_CYCLES = 5
PAUSE_CYCLES = 9


class SmokeCounterDut(HierarchyObject):
    """The DUT's ports with their handle types, for type checking only (never instantiated)."""

    clk: LogicObject
    rst: LogicObject
    en: LogicObject
    limit: LogicArrayObject
    count: LogicArrayObject
    done: LogicObject


def _plusarg_int(name: str, default: int) -> int:
    value = cocotb.plusargs.get(name)
    return default if value is None or isinstance(value, bool) else int(value)


async def _start_and_reset(dut: SmokeCounterDut, limit: int) -> None:
    """Start the clock, load *limit* with counting disabled, and hold reset for two cycles."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.en.value = 0
    dut.limit.value = limit
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


async def _cycles_until_done(dut: SmokeCounterDut, start_ns: float, budget_cycles: int) -> int:
    """Wait (at most *budget_cycles*) for ``done`` to rise; return whole cycles since *start_ns*."""
    await with_timeout(RisingEdge(dut.done), budget_cycles * CLOCK_PERIOD_NS, "ns")
    elapsed_ns = get_sim_time("ns") - start_ns
    assert elapsed_ns % CLOCK_PERIOD_NS == 0, f"done rose off the clock edge, at +{elapsed_ns} ns"
    return int(elapsed_ns // CLOCK_PERIOD_NS)


@cocotb.test()
async def done_rises_exactly_at_limit(dut: SmokeCounterDut) -> None:
    """With ``en`` held high, ``done`` rises ``limit`` cycles after enabling, then holds."""
    limit = _plusarg_int("limit", DEFAULT_LIMIT)
    expected = _plusarg_int("expect_cycles", limit)
    await _start_and_reset(dut, limit)
    # Reset is released and counting enabled together: the next edge is the first counted one.
    dut.en.value = 1
    start_ns = get_sim_time("ns")

    cycles = await _cycles_until_done(dut, start_ns, budget_cycles=expected + 4)

    assert cycles == expected, f"done rose after {cycles} cycles, expected {expected}"
    await ReadOnly()
    assert dut.count.value == limit
    await ClockCycles(dut.clk, 3)
    await ReadOnly()
    assert dut.count.value == limit, "count must hold at the limit"
    assert dut.done.value == 1, "done must stay high at the limit"


@cocotb.test()
async def disabled_cycles_delay_done(dut: SmokeCounterDut) -> None:
    """Cycles with ``en`` low are not counted: they delay ``done`` by exactly their number."""
    limit = _plusarg_int("limit", DEFAULT_LIMIT)
    assert limit > PAUSE_AFTER_CYCLES, f"limit must exceed {PAUSE_AFTER_CYCLES}, not {limit}"
    await _start_and_reset(dut, limit)
    dut.en.value = 1
    start_ns = get_sim_time("ns")
    await ClockCycles(dut.clk, PAUSE_AFTER_CYCLES)
    dut.en.value = 0
    await ClockCycles(dut.clk, PAUSE_CYCLES)
    dut.en.value = 1

    cycles = await _cycles_until_done(dut, start_ns, budget_cycles=limit + PAUSE_CYCLES + 4)

    assert cycles == limit + PAUSE_CYCLES, (
        f"done rose after {cycles} cycles, expected {limit} counted + {PAUSE_CYCLES} paused"
    )
