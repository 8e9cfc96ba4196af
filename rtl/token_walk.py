"""The pixel of token i of a patch position: a walker that steps one token per enable."""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.widths import ADDR_BITS

__all__ = ["TokenWalk"]


class TokenWalk(wiring.Component):
    """Token ``i`` of a position is the pixel ``(i div tok_w) * tok_step + (i mod tok_w) * pw``
    (docs/attention.md, "Tokens"); ``pixel`` is that offset for the walker's current token.

    ``restart`` goes back to token 0; ``step`` moves to the next token; ``save`` remembers the
    current token (with ``step`` in the same cycle: the next one) and ``restore`` returns to the
    remembered one (``restart`` wins over ``restore``, ``restore`` over ``step``; ``restart``
    also remembers token 0).
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "tok_w": In(12),
                "tok_step": In(24),
                "pw": In(8),
                "restart": In(1),
                "step": In(1),
                "save": In(1),
                "restore": In(1),
                "pixel": Out(ADDR_BITS),
            }
        )

    def follow(self, m: Module, desc: Value) -> None:
        """Take the token layout (``tok_w``, ``tok_step``, ``pw``) from a layer descriptor."""
        m.d.comb += [
            self.tok_w.eq(desc.tok_w),
            self.tok_step.eq(desc.tok_step),
            self.pw.eq(desc.pw),
        ]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        tx = Signal(12)
        row = Signal(ADDR_BITS)
        saved_tx = Signal(12)
        saved_row = Signal(ADDR_BITS)
        saved_pixel = Signal(ADDR_BITS)
        next_tx = Signal(12)
        next_row = Signal(ADDR_BITS)
        next_pixel = Signal(ADDR_BITS)
        # Computed only when a control is set: Verilator evaluates every comb wire on every clock
        # unless it is a conditional; the idle values (the current state) are not constants, so
        # it keeps the conditional (a constant would become a mask that computes both). With no
        # control set every register keeps its value anyway.
        moving = Signal()
        m.d.comb += moving.eq(self.restart | self.step | self.save | self.restore)
        state = (tx, row, self.pixel)
        saved = (saved_tx, saved_row, saved_pixel)
        stepped = (next_tx, next_row, next_pixel)
        with m.If(moving & (tx == self.tok_w - 1)):
            m.d.comb += [
                next_tx.eq(0),
                next_row.eq(row + self.tok_step),
                next_pixel.eq(row + self.tok_step),
            ]
        with m.Elif(moving):
            m.d.comb += [
                next_tx.eq(tx + 1),
                next_row.eq(row),
                next_pixel.eq(self.pixel + self.pw),
            ]
        with m.Else():
            m.d.comb += [after.eq(now) for now, after in zip(state, stepped, strict=True)]
        # Written as multiplexers, not an If/Elif chain: a caller that ties a control to 0 would
        # leave Yosys a priority case with overlapping patterns (Verilator's CASEOVERLAP).
        with m.If(moving):
            for now, kept, after in zip(state, saved, stepped, strict=True):
                moved = Mux(self.step, after, now)
                m.d.sync += now.eq(Mux(self.restart, 0, Mux(self.restore, kept, moved)))
                m.d.sync += kept.eq(Mux(self.restart, 0, Mux(self.save, moved, kept)))
        return m
