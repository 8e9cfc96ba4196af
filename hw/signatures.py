"""The buses that cross between the PMU, the accelerator and the simulation wrapper.

Each bus is one ``wiring.Signature`` subclass, declared from the side that starts a transfer
(the reader of a memory, the PMU for a launch or a clock, the owner of a counter); the other side
takes it ``In(...)`` or ``flipped``. Widths are parameters: their single sources are the ISA
(``pmu/isa.py``), the layer-program format (``rtl/program.py``) and the configurations, which
the components that build a bus read; the widths that have no other home are in
:mod:`voltflow.hw.widths`.
"""

from collections.abc import Iterable

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.widths import ADDR_BITS, CLOCK_DOMAINS, SELECT_BITS, TIME_BITS

__all__ = [
    "BankAccess",
    "BankPower",
    "ClockIncrements",
    "Counters",
    "Launch",
    "MemoryRead",
    "MemoryWrite",
    "outputs",
]


def _bits(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return value


class MemoryRead(wiring.Signature):
    """An asynchronous memory read port, as the reader sees it.

    Members
    -------
    addr : Out(addr_bits)
    data : In(data_bits)
        The word at ``addr``, in the same cycle.
    en : Out(1), only with ``strobe``
        The word is read (and used) this cycle: the bank monitors count it.
    """

    def __init__(self, *, addr_bits: int, data_bits: int, strobe: bool = False) -> None:
        members = {
            "addr": Out(_bits("addr_bits", addr_bits)),
            "data": In(_bits("data_bits", data_bits)),
        }
        if strobe:
            members["en"] = Out(1)
        super().__init__(members)


class MemoryWrite(wiring.Signature):
    """A memory write port, as the writer sees it: ``data`` is written to ``addr`` when ``en``.

    With ``mask_bits``, a ``mask`` member selects which of the word's ``mask_bits`` equal lanes
    are written (a byte-enable write); the others keep their contents.
    """

    def __init__(self, *, addr_bits: int, data_bits: int, mask_bits: int | None = None) -> None:
        members = {
            "addr": Out(_bits("addr_bits", addr_bits)),
            "data": Out(_bits("data_bits", data_bits)),
            "en": Out(1),
        }
        if mask_bits is not None:
            if data_bits % _bits("mask_bits", mask_bits):
                raise ValueError(f"mask_bits {mask_bits} must divide data_bits {data_bits}")
            members["mask"] = Out(mask_bits)
        super().__init__(members)


class Launch(wiring.Signature):
    """A LAUNCH, as the PMU sees it: run ``count`` ops of the layer program from ``first``.

    ``start`` is held until ``done`` (high until ``start`` drops). The widths are the ISA's
    LAUNCH fields.
    """

    def __init__(self, *, first_bits: int, count_bits: int) -> None:
        super().__init__(
            {
                "start": Out(1),
                "first": Out(_bits("first_bits", first_bits)),
                "count": Out(_bits("count_bits", count_bits)),
                "done": In(1),
            }
        )


class ClockIncrements(wiring.Signature):
    """The divider increments of the DVFS domains (``sys``, ``rram``, ``feeder``), from the PMU:
    a domain ticks ``increment / 2**phase_bits`` of the reference cycles."""

    def __init__(self, *, phase_bits: int) -> None:
        _bits("phase_bits", phase_bits)
        super().__init__({d: Out(phase_bits) for d in CLOCK_DOMAINS})


class BankAccess(wiring.Signature):
    """The accelerator's memory accesses, as the bank switches' isolation sees them from the
    accelerator's side: addresses and strobes out, ``*_ok`` (the addressed bank is ready, else
    isolate) in."""

    def __init__(self) -> None:
        super().__init__(
            {
                "spad_raddr": Out(ADDR_BITS),
                "spad_re": Out(1),
                "spad_waddr": Out(ADDR_BITS),
                "spad_we": Out(1),
                "rram_raddr": Out(ADDR_BITS),
                "rram_re": Out(1),
                "spad_rd_ok": In(1),
                "spad_wr_ok": In(1),
                "rram_rd_ok": In(1),
            }
        )


class BankPower(wiring.Signature):
    """The power state of every bank, from the bank switches.

    Members
    -------
    on, ready, gated_now : Out(n_banks)
        Powered (at reset: every bank, so preloaded memories are valid); usable (on and woken);
        losing power this cycle.
    sel : In(16), on_cycles : Out(64)
        Read port of the per-bank on-time counters (reference cycles powered).
    """

    def __init__(self, *, n_banks: int) -> None:
        n = _bits("n_banks", n_banks)
        super().__init__(
            {
                "on": Out(n, init=(1 << n) - 1),
                "ready": Out(n),
                "gated_now": Out(n),
                "sel": In(SELECT_BITS),
                "on_cycles": Out(TIME_BITS),
            }
        )


class Counters(wiring.Signature):
    """A bundle of counters (or of their increments), one member per name, all ``bits`` wide,
    from the side that counts."""

    def __init__(self, names: Iterable[str], *, bits: int) -> None:
        _bits("bits", bits)
        names = tuple(names)
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"names must be distinct and not empty, not {names!r}")
        super().__init__({name: Out(bits) for name in names})


def outputs(signature: wiring.Signature) -> wiring.Signature:
    """The ``Out`` port members of ``signature``: what an observer of the bus (e.g. a
    simulation wrapper watching the launches) sees, without driving anything."""
    return wiring.Signature(
        {
            name: member
            for name, member in signature.members.items()
            if member.is_port and member.flow is wiring.Flow.Out
        }
    )
