"""Widths and counts that both the PMU hardware and the accelerator RTL depend on.

Each number is defined here once; ``pmu/config.py`` and ``rtl/config.py`` re-export the ones
their users already import from there. The per-channel requantisation entry's widths belong to
the memory layout that the cost model sizes passes by, so they are defined in
``scheduler/dataflow.py`` and re-exported here for the RTL and the golden model.
"""

from voltflow.scheduler.chip import DOMAINS
from voltflow.scheduler.dataflow import CHANNEL_ENTRY_BITS, CHANNEL_M_BITS, CHANNEL_S_BITS

__all__ = [
    "ADDR_BITS",
    "CHANNEL_ENTRY_BITS",
    "CHANNEL_M_BITS",
    "CHANNEL_S_BITS",
    "CLOCK_DOMAINS",
    "COUNTER_BITS",
    "GROUP_BANKS",
    "SELECT_BITS",
    "TIME_BITS",
    "WORD_BITS",
    "WORD_LANES",
]

#: Word-address width of the scratchpad and RRAM ports (16 M words each; the SV wrapper's
#: memories are smaller and sized per chip).
ADDR_BITS = 24
#: Width of a scratchpad / RRAM / buffer word.
WORD_BITS = 64
#: int8 lanes of a word: the scratchpad write port's byte mask has one bit per lane.
WORD_LANES = WORD_BITS // 8
#: Width of every activity counter of the accelerator and of its cycle counter.
COUNTER_BITS = 48
#: Width of the reference-cycle clock and of every PMU time counter: a fuzz program may WAIT
#: 2^48 - 1 cycles many times, so 48 bits (the activity counters' width) could wrap.
TIME_BITS = 64
#: Banks per GATE/WAKE group (the ISA's 32-bit mask).
GROUP_BANKS = 32
#: Width of a bank index (the per-bank on-time read port's select) and of a count of banks.
SELECT_BITS = 16
#: The DVFS clock domains in the order of their buses' members (the chip's DOMAINS order).
CLOCK_DOMAINS: tuple[str, ...] = tuple(d.value for d in DOMAINS)
