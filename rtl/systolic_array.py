"""The R x C output-stationary systolic array with skewed operands and in-band tile markers."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.clock_gating import gated_domain

__all__ = ["Operand", "SystolicArray"]


class Operand(data.Struct):
    """An activation travelling along a row, with the tile markers that travel with it."""

    a: signed(8)
    valid: 1  # a real operand pair: multiply-accumulate
    first: 1  # first operand of a tile: move the accumulator to the output register
    drain: 1  # the output register then holds a finished tile: drain it
    last: 1  # the marker of an epoch's flush


class SystolicArray(wiring.Component):
    """Output-stationary int8 x int8 -> int32 array.

    Row r's operand stream (``a_in[r]`` with the shared flags) is delayed r ticks and column c's
    weight stream (``w_in[c]``) c ticks before entering; inside, activations move right and
    weights down one PE per tick, so PE (r, c) sees element k at tick k + r + c. A ``first``
    marker makes each PE copy its accumulator to its output register and restart; when the marker
    leaves row r's last PE the row's output registers hold the finished tile (``row_drain[r]``).
    PE (i, i)'s register is final when the marker leaves it (``diag_drain[i]``, depthwise).
    Everything advances only on ``tick`` (the sys domain's clock enable).

    Attributes
    ----------
    tick : In(1)
    a_in : In(signed(8)) x rows  row r's activation (before its skew)
    valid, first, drain, last : In(1)  markers of this tick's elements (see :class:`Operand`)
    w_in : In(signed(8)) x cols
    row_drain : Out(rows)  one-hot: row r's results are readable on ``row_acc`` this tick
    row_acc : Out(signed(32)) x cols  the output registers of the draining row
    diag_drain : Out(cols)  PE (i, i)'s result is readable on ``diag_acc[i]`` this tick
    diag_acc : Out(signed(32)) x cols
    last_exit : Out(1)  the flush marker leaves PE (R-1, C-1) this tick
    a_nz : Out(rows)  ``gate``: row r's operand entering this tick is not zero (its detector)
    w_nz : Out(cols)  ``gate``: column c's operand entering this tick is not zero

    With ``gate`` (chip ``array.sparsity: gate``, docs/sparsity.md) each operand is zero-detected
    once, where it enters (before its skew), and its flag travels with it; a PE multiplies and
    accumulates only a valid pair whose flags are both set, and otherwise holds its accumulator
    (a zero product changes nothing, so the results are the same).
    """

    def __init__(self, *, rows: int, cols: int, gate: bool = False) -> None:
        self.rows, self.cols, self.gate = rows, cols, gate
        super().__init__(
            {
                "tick": In(1),
                "a_in": In(signed(8)).array(rows),
                "valid": In(1),
                "first": In(1),
                "drain": In(1),
                "last": In(1),
                "w_in": In(signed(8)).array(cols),
                "row_drain": Out(rows),
                "row_acc": Out(signed(32)).array(cols),
                "diag_drain": Out(cols),
                "diag_acc": Out(signed(32)).array(cols),
                "last_exit": Out(1),
                "a_nz": Out(rows),
                "w_nz": Out(cols),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        rows, cols = self.rows, self.cols
        # Every register advances only on ``tick``: the array runs on its own clock, gated by
        # it (hw.clock_gating), so an idle array costs the simulation nothing.
        gated_domain(m, "pe", self.tick)

        # Skew: row r's stream delayed r ticks, column c's c ticks.
        row_in = []
        for r in range(rows):
            src = Signal(Operand, name=f"row{r}_src")
            m.d.comb += [
                src.a.eq(self.a_in[r]),
                src.valid.eq(self.valid),
                src.first.eq(self.first),
                src.drain.eq(self.drain),
                src.last.eq(self.last),
            ]
            for d in range(r):
                nxt = Signal(Operand, name=f"row{r}_skew{d}")
                m.d.pe += nxt.eq(src)
                src = nxt
            row_in.append(src)
        col_in = []
        for c in range(cols):
            src = Signal(signed(8), name=f"col{c}_src")
            m.d.comb += src.eq(self.w_in[c])
            for d in range(c):
                nxt = Signal(signed(8), name=f"col{c}_skew{d}")
                m.d.pe += nxt.eq(src)
                src = nxt
            col_in.append(src)

        h = [[Signal(Operand, name=f"h_{r}_{c}") for c in range(cols)] for r in range(rows)]
        v = [[Signal(signed(8), name=f"v_{r}_{c}") for c in range(cols)] for r in range(rows)]
        acc = [[Signal(signed(32), name=f"acc_{r}_{c}") for c in range(cols)] for r in range(rows)]
        out = [[Signal(signed(32), name=f"out_{r}_{c}") for c in range(cols)] for r in range(rows)]
        macs = self._gating(m, row_in, h) if self.gate else None
        for r in range(rows):
            for c in range(cols):
                a = row_in[r] if c == 0 else h[r][c - 1]
                w = col_in[c] if r == 0 else v[r - 1][c]
                prod = a.a * w
                mac = a.valid if macs is None else macs[r][c]
                m.d.pe += [h[r][c].eq(a), v[r][c].eq(w)]
                with m.If(a.first):
                    m.d.pe += out[r][c].eq(acc[r][c])
                    m.d.pe += acc[r][c].eq(Mux(mac, prod, 0))
                with m.Elif(mac):
                    m.d.pe += acc[r][c].eq(acc[r][c] + prod)

        for r in range(rows):
            exiting = h[r][cols - 1]
            m.d.comb += self.row_drain[r].eq(exiting.first & exiting.drain)
            with m.If(exiting.first & exiting.drain):
                for c in range(cols):
                    m.d.comb += self.row_acc[c].eq(out[r][c])
        for i in range(cols):
            m.d.comb += [
                self.diag_drain[i].eq(h[i][i].first & h[i][i].drain),
                self.diag_acc[i].eq(out[i][i]),
            ]
        corner = h[rows - 1][cols - 1]
        m.d.comb += self.last_exit.eq(corner.first & corner.last)
        return m

    def _gating(self, m: Module, row_in: list[Signal], h: list[list[Signal]]) -> list[list[Signal]]:
        """The zero flags: detected where an operand enters, skewed and passed on with it. Returns
        each PE's ``mac``: its pair this tick is valid and neither operand is zero."""
        rows, cols = self.rows, self.cols
        row_nz = []
        for r in range(rows):
            src = Signal(name=f"row{r}_nz_src")
            m.d.comb += [src.eq(self.a_in[r] != 0), self.a_nz[r].eq(src)]
            row_nz.append(self._skewed(m, src, r, f"row{r}_nz_skew"))
        col_nz = []
        for c in range(cols):
            src = Signal(name=f"col{c}_nz_src")
            m.d.comb += [src.eq(self.w_in[c] != 0), self.w_nz[c].eq(src)]
            col_nz.append(self._skewed(m, src, c, f"col{c}_nz_skew"))
        hz = [[Signal(name=f"hnz_{r}_{c}") for c in range(cols)] for r in range(rows)]
        vz = [[Signal(name=f"vnz_{r}_{c}") for c in range(cols)] for r in range(rows)]
        macs = []
        for r in range(rows):
            row = []
            for c in range(cols):
                a_nz = row_nz[r] if c == 0 else hz[r][c - 1]
                w_nz = col_nz[c] if r == 0 else vz[r - 1][c]
                a_valid = (row_in[r] if c == 0 else h[r][c - 1]).valid
                mac = Signal(name=f"mac_{r}_{c}")
                m.d.comb += mac.eq(a_valid & a_nz & w_nz)
                m.d.pe += [hz[r][c].eq(a_nz), vz[r][c].eq(w_nz)]
                row.append(mac)
            macs.append(row)
        return macs

    def _skewed(self, m: Module, src: Signal, delay: int, name: str) -> Signal:
        """``src`` delayed ``delay`` ticks by a chain of registers ``<name><d>``."""
        for d in range(delay):
            nxt = Signal(name=f"{name}{d}")
            m.d.pe += nxt.eq(src)
            src = nxt
        return src
