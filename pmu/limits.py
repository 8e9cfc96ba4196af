"""What a chip file may ask of the PMU: every number it feeds the command ISA must fit its field.

The chip loader (``scheduler.chip``) validates a chip's physics; the PMU's command fields (their
widths in ``pmu.isa``, the one source) bound how many rails, levels, banks and how fine a clock
divider a PMU program can express. :func:`check_chip` derives those bounds from the ISA and refuses
a chip beyond them at the boundary (every command that loads a chip for the PMU or the RTL), not
when a program is later encoded.
"""

import numpy as np
from voltflow.pmu.isa import Opcode, payload_fields
from voltflow.scheduler.chip import DOMAINS, BankKind, Chip, ChipError

__all__ = ["check_chip", "max_banks", "max_levels", "max_rails"]


def max_rails() -> int:
    """Rails a program can address (SET_RAIL's and CONNECT's rail field)."""
    return 1 << payload_fields(Opcode.SET_RAIL)["rail"]


def max_levels() -> int:
    """Voltage levels a SET_RAIL can select."""
    return 1 << payload_fields(Opcode.SET_RAIL)["level"]


def max_banks() -> int:
    """Banks GATE and WAKE can address: groups of as many banks as the mask has bits."""
    fields = payload_fields(Opcode.GATE)
    return (1 << fields["group"]) * fields["mask"]


def check_chip(chip: Chip, source: object = None) -> None:
    """Refuse a chip whose rails, levels, clock increments or bank counts the PMU cannot encode.

    ``source``: the chip's file or name as the user gave it, for the message.
    """
    text = str(source) if source is not None else ""
    where = text if text.endswith((".yaml", ".yml")) else f"chip {chip.name!r}"
    if chip.rails > max_rails():
        raise ChipError(
            f"{where}: rails: the PMU addresses at most {max_rails()} rails, not {chip.rails}"
        )
    if len(chip.levels_v) > max_levels():
        raise ChipError(
            f"{where}: voltage.levels_v: the PMU selects at most {max_levels()} levels, "
            f"not {len(chip.levels_v)}"
        )
    widest = (1 << payload_fields(Opcode.SET_FREQ)["increment"]) - 1
    for domain in DOMAINS:
        top = int(np.max(chip.divider_increment(domain, np.asarray(chip.levels_v))))
        if top > widest:
            raise ChipError(
                f"{where}: {domain.value}: the clock divider's increment at "
                f"{max(chip.levels_v):g} V is {top:,}, more than SET_FREQ's {widest:,} "
                "(lower divider_phase_bits or the frequency, or raise the reference clock)"
            )
    fixed = sum(chip.bank(kind).count or 0 for kind in BankKind)
    if fixed > max_banks():
        raise ChipError(
            f"{where}: banks: {fixed:,} banks in all; the PMU switches at most {max_banks():,}"
        )
