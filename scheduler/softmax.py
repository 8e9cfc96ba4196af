"""The integer softmax of the attention's probabilities: its constants and its reference rule.

One place for the numbers that the RTL's softmax unit (``rtl/softmax_unit.py``), the golden
model (``cosim/golden.py``) and the cost model (``scheduler/dataflow.py``) share; the rule is
docs/arithmetic.md, "Softmax".
"""

from typing import Final

__all__ = [
    "EXP_FRACTION_BITS",
    "EXP_TABLE",
    "EXP_TABLE_BITS",
    "PROB_MAX",
    "PROB_ROUND_SHIFT",
    "PROB_SCALE",
    "RECIPROCAL_SHIFT",
    "SOFTMAX_DIVIDE_TICKS",
    "SOFTMAX_ROW_TICKS_EXTRA",
    "SUM_BITS",
    "exp_table",
]

#: Fraction bits of log2(1/e) that index the exponential table.
EXP_FRACTION_BITS: Final = 4
#: Width of a table entry: 2^15 is exp(0).
EXP_TABLE_BITS: Final = 16


def exp_table() -> tuple[int, ...]:
    """``round(2^15 * 2^(-r / 16))`` for r = 0 .. 15 (integers, computed exactly once)."""
    steps = 1 << EXP_FRACTION_BITS
    return tuple(int(2 ** (EXP_TABLE_BITS - 1) * 2 ** (-r / steps) + 0.5) for r in range(steps))


EXP_TABLE: Final = exp_table()
#: The row sum of e is below 2^SUM_BITS (at most 4095 keys of 2^15 each).
SUM_BITS: Final = 28
#: rcp = floor(2^RECIPROCAL_SHIFT / sum).
RECIPROCAL_SHIFT: Final = 31
#: Quotient bits of the reciprocal (sum >= 2^15, so rcp <= 2^16): one division tick each.
SOFTMAX_DIVIDE_TICKS: Final = RECIPROCAL_SHIFT - (EXP_TABLE_BITS - 1) + 1
#: p = min(PROB_MAX, (e * rcp + 2^(PROB_ROUND_SHIFT - 1)) >> PROB_ROUND_SHIFT).
PROB_ROUND_SHIFT: Final = 24
PROB_MAX: Final = 127
#: The probabilities' scale: p / PROB_SCALE approximates the softmax.
PROB_SCALE: Final = 1 << (RECIPROCAL_SHIFT - PROB_ROUND_SHIFT)
#: Ticks of a row beyond its 3 NB reads: the last exp fold and the division.
SOFTMAX_ROW_TICKS_EXTRA: Final = 1 + SOFTMAX_DIVIDE_TICKS
