"""Clock gating: a block whose registers only change under an enable gets its own gated clock.

A block written as ``with m.If(enable): m.d.sync += ...`` and the same block on a clock domain
gated by ``enable`` are the same circuit cycle for cycle; the second is what silicon does (an
integrated clock-gating cell in front of the block's flip-flops) and what a simulator can skip:
Verilator evaluates a gated domain's next-state logic only on the edges its clock has, while the
enable form has it evaluated every reference cycle, enabled or not (docs/rtl.md, "Clock
gating"). :func:`gated_domain` builds such a domain so that it is exactly equivalent to the
enable form under the chip's synchronous reset, edge for edge:

- The enable is sampled on the reference clock's falling edge, the glitch-free gate of a
  latch-based ICG cell: the gated clock rises with the reference clock exactly when ``enable``
  was high in the cycle before, as a clock enable would let the registers load.
- The chip's reset is synchronous: a register is reset on every rising edge while ``rst`` was
  high in the cycle before, enabled or not. The gated domain's reset is asynchronous, asserted
  by ``rst`` registered on the rising edge (so it lands on the first such edge, not earlier) and
  released by ``rst`` registered on the falling edge (so it is gone before the first rising edge
  after the reset, not later). Between those, the registers hold their reset values, as the
  synchronous reset would have them.

The caller must make sure that ``enable`` covers every change: a register of the domain may only
change on an edge that follows a cycle with ``enable`` high (or with the reset).
"""

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal, Value

__all__ = ["gated_domain"]


def gated_domain(m: Module, name: str, enable: Value) -> str:
    """Add to ``m`` a clock domain ``name`` (local to ``m`` and its submodules): the ``sync``
    clock gated by ``enable``, reset with ``sync``'s reset on the same edges. Returns ``name``,
    for ``m.d[name]`` and ``write_port(domain=name)``."""
    sample = f"{name}_sample"
    m.domains += ClockDomain(sample, clk_edge="neg", reset_less=True, local=True)
    m.domains += ClockDomain(name, async_reset=True, local=True)
    gate = Signal(name=f"{name}_gate")
    reset_rise = Signal(init=1, reset_less=True, name=f"{name}_reset_rise")
    reset_fall = Signal(init=1, reset_less=True, name=f"{name}_reset_fall")
    m.d.sync += reset_rise.eq(ResetSignal())
    m.d[sample] += [gate.eq(enable), reset_fall.eq(ResetSignal())]
    m.d.comb += [
        ClockSignal(sample).eq(ClockSignal()),
        ClockSignal(name).eq(ClockSignal() & gate),
        ResetSignal(name).eq(reset_rise & reset_fall),
    ]
    return name
