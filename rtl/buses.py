"""The accelerator's internal buses (those shared with the PMU are in :mod:`voltflow.hw`)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.widths import ADDR_BITS

__all__ = ["CURSOR_BITS", "EngineControl", "EpochCursor"]


class EngineControl(wiring.Signature):
    """The layer sequencer's handshake with one engine, as the sequencer sees it.

    Members
    -------
    tick : Out(1)
        The engine's clock enable (its domain's divider tick).
    start : Out(1)
        Start the engine's next unit of work (a tile, a flush, a DMA, a vector op).
    busy : In(1)
        The engine is working (from the cycle after ``start``).
    done : In(1)
        The engine finishes in this cycle (``busy`` drops after it).
    """

    def __init__(self) -> None:
        super().__init__({"tick": Out(1), "start": Out(1), "busy": In(1), "done": In(1)})


#: Width of a pass or channel-block index (the descriptor's 12-bit counts: ``cb``,
#: ``group_passes``, ``resident``).
CURSOR_BITS = 12


class EpochCursor(wiring.Signature):
    """Where the epoch that starts stands, from the layer sequencer to the engines.

    Members
    -------
    begin : Out(1)
        An epoch begins: the engines rewind (one-cycle pulse; the others are valid with it).
    q : Out(12)
        Passes resident in the epoch.
    jp0, cb0, cbo0 : Out(12)
        The epoch's first pass of its group, input channel block and output channel block.
    half : Out(1)
        The weight-buffer half the epoch's weights are in.
    pix0, head_ch, lane_lo : Out
        Attention (SCORES, CONTEXT; docs/attention.md): the pixel of the batch's position, the
        batch's head's first channel ``h * dh`` and its first lane in its first A block.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "begin": Out(1),
                "q": Out(CURSOR_BITS),
                "jp0": Out(CURSOR_BITS),
                "cb0": Out(CURSOR_BITS),
                "cbo0": Out(CURSOR_BITS),
                "half": Out(1),
                "pix0": Out(ADDR_BITS),
                "head_ch": Out(CURSOR_BITS),
                "lane_lo": Out(3),
            }
        )
