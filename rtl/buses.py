"""The accelerator's internal buses (those shared with the PMU are in :mod:`voltflow.hw`)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["EngineControl"]


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
