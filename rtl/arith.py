"""Small helpers shared by the RTL components: address widths, signed differences, head lanes."""

from amaranth.hdl import Cat, Const, Value

__all__ = ["address_bits", "head_lanes", "widened_signed"]


def address_bits(depth: int) -> int:
    """Bits of an address into ``depth`` words (at least 1)."""
    return max(1, (depth - 1).bit_length())


def widened_signed(value: Value) -> Value:
    """``value`` (unsigned) one bit wider and signed, so that differences keep their sign."""
    return Cat(value, Const(0, 1)).as_signed()


def head_lanes(block: Value, lane_lo: Value, head_ch: Value, lanes: int) -> Value:
    """The lanes of block ``block`` (counted from a head's first block) that belong to the head:
    lane ``l`` does iff ``0 <= block * lanes + l - lane_lo < head_ch`` (docs/attention.md,
    "Lanes of a head"). One bit per lane."""
    first = widened_signed(block * lanes) - widened_signed(lane_lo)  # channel of lane 0
    bits = []
    for lane in range(lanes):
        channel = first + lane
        bits.append((channel >= 0) & (channel < widened_signed(head_ch)))
    return Cat(*bits)
