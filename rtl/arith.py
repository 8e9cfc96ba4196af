"""Two small helpers shared by the RTL components: address widths and signed differences."""

from amaranth.hdl import Cat, Const, Value

__all__ = ["address_bits", "widened_signed"]


def address_bits(depth: int) -> int:
    """Bits of an address into ``depth`` words (at least 1)."""
    return max(1, (depth - 1).bit_length())


def widened_signed(value: Value) -> Value:
    """``value`` (unsigned) one bit wider and signed, so that differences keep their sign."""
    return Cat(value, Const(0, 1)).as_signed()
