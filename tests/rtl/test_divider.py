"""The fractional divider in Amaranth's simulator: tick n after a restart at ceil(n 2^B / inc)."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from voltflow.rtl.divider import FractionalDivider
from voltflow.scheduler.chip import ticks_to_ref_cycles


@pytest.mark.parametrize("inc", [1000, 40960, 8192, 65535, 32768])
def test_ticks_come_at_the_ceil_formula_and_restart(inc: int) -> None:
    bits = 16
    dut = FractionalDivider(phase_bits=bits)
    seen: list[int] = []

    async def bench(ctx) -> None:
        ctx.set(dut.inc, inc)
        for run_length in (40, 25):  # two runs: the second starts after a restart
            ctx.set(dut.run, 1)
            ticks = []
            for cycle in range(1, run_length + 1):
                if ctx.get(dut.tick):
                    ticks.append(cycle)
                await ctx.tick()
            seen.append(tuple(ticks))
            ctx.set(dut.run, 0)
            await ctx.tick()  # one idle cycle clears the phase

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for ticks, length in zip(seen, (40, 25), strict=True):
        expected = [
            int(c)
            for c in ticks_to_ref_cycles(np.arange(1, 200), np.array(inc), bits)
            if c <= length
        ]
        assert list(ticks) == expected
