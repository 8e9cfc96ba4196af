"""The activity counters: cumulative event counts the energy model and the tests read."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import Counters
from voltflow.hw.widths import COUNTER_BITS

__all__ = ["COUNTERS", "SPARSITY_COUNTERS", "ActivityCounters"]

#: Counter names in output order, with what one count is (docs/rtl.md, "Counters").
COUNTERS: tuple[tuple[str, str], ...] = (
    ("cycles", "reference cycles while the program runs"),
    ("sys_ticks", "sys clock enables with an array engine busy"),
    ("feeder_ticks", "feeder clock enables with a feeder engine (gather, writer, vector) busy"),
    ("rram_ticks", "rram clock enables with the DMA busy"),
    ("sys_idle", "running reference cycles with no array engine busy"),
    ("feeder_idle", "running reference cycles with no feeder engine busy"),
    ("rram_idle", "running reference cycles with the DMA idle"),
    ("macs", "useful multiply-accumulates issued into the array"),
    ("spad_reads", "scratchpad words read (gather and vector unit)"),
    ("spad_writes", "scratchpad words written (output writer and vector unit)"),
    ("lane_words", "lane-buffer words written plus read"),
    ("wbuf_reads", "weight-buffer words read (weights and biases)"),
    ("wbuf_writes", "weight-buffer words written"),
    ("rram_reads", "RRAM words read"),
    ("dma_beats", "DMA beats"),
    ("steps", "pipeline-step barriers"),
    ("epochs", "epoch barriers"),
    # Last, so that a dense build's log lines keep their columns (array.sparsity; 0 without it).
    ("gated_macs", "operand pairs a PE met with a zero operand and did not multiply (gate)"),
    ("zero_detects", "operands checked for zero (gate: at the array's edge; skip: also blocks)"),
    ("skipped_steps", "reduction elements not streamed: their activations all zero (skip)"),
)


#: The counters only a build with ``array.sparsity`` increments (the last entries of COUNTERS).
SPARSITY_COUNTERS: tuple[str, ...] = ("gated_macs", "zero_detects", "skipped_steps")
assert tuple(name for name, _ in COUNTERS[-len(SPARSITY_COUNTERS) :]) == SPARSITY_COUNTERS


class ActivityCounters(wiring.Component):
    """One ``COUNTER_BITS`` accumulator per :data:`COUNTERS` entry: ``counts.<name>`` +=
    ``inc.<name>`` each cycle.

    ``clear`` resets every counter (a new run).
    """

    def __init__(self) -> None:
        names = [name for name, _ in COUNTERS]
        super().__init__(
            {
                "clear": In(1),
                "inc": In(Counters(names, bits=8)),
                "counts": Out(Counters(names, bits=COUNTER_BITS)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for name, _ in COUNTERS:
            value = getattr(self.counts, name)
            with m.If(self.clear):
                m.d.sync += value.eq(0)
            with m.Else():
                m.d.sync += value.eq(value + getattr(self.inc, name))
        return m
