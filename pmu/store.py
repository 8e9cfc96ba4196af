"""The checkpoint store: its layout, the marker word and the two-slot commit protocol.

The store is a write-friendly non-volatile memory outside the chip (docs/intermittent.md). Word
``s`` (0 or 1) is the marker of slot ``s``; slot ``s``'s data start at word
``DATA_BASE + s * slot_words``. A checkpoint is written into the *free* slot (the one that is not
current): its first SAVE writes the free slot's marker invalid, the data follow, and COMMIT writes
the marker last, in one word. The current slot is never written during a checkpoint, so the newest
valid marker always names a slot whose data are complete.

The marker's layout is an Amaranth ``data.Struct``: the PMU RTL builds and checks markers through
it and Python through :func:`marker_word` / :func:`read_marker`, so both read one definition.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth import unsigned
from amaranth.lib import data

__all__ = [
    "DATA_BASE",
    "MAGIC",
    "SEQUENCE_BITS",
    "Marker",
    "MarkerValue",
    "marker_word",
    "newer",
    "newest",
    "read_marker",
    "slot_base",
]

#: The marker of a valid checkpoint starts with this (an erased or invalidated word is 0).
MAGIC = 0xC0DE
SEQUENCE_BITS = 16
#: Words 0 and 1 are the slots' markers; the data follow.
DATA_BASE = 2


class Marker(data.Struct):
    """A slot's marker word (bits 0..59; 60..63 are 0)."""

    # Amaranth shapes, not types (as in pmu/isa.py's Command).
    magic: unsigned(16)  # type: ignore[valid-type]
    sequence: unsigned(SEQUENCE_BITS)  # type: ignore[valid-type]
    resume: unsigned(12)  # type: ignore[valid-type]  # the command RESUME jumps to
    boundary: unsigned(16)  # type: ignore[valid-type]  # the boundary it holds (for the host)


@dataclass(frozen=True, slots=True)
class MarkerValue:
    """A decoded valid marker."""

    sequence: int
    resume: int
    boundary: int


def marker_word(sequence: int, resume: int, boundary: int) -> int:
    """The 64-bit word COMMIT writes."""
    const = Marker.const(
        {"magic": MAGIC, "sequence": sequence, "resume": resume, "boundary": boundary}
    )
    return int(const.as_bits())


def read_marker(word: int) -> MarkerValue | None:
    """The marker in ``word``, or None if it is not a valid one (erased, invalidated, torn)."""
    view = Marker.as_shape().from_bits(word & ((1 << 60) - 1))
    if word >> 60 or int(view.magic) != MAGIC:
        return None
    return MarkerValue(int(view.sequence), int(view.resume), int(view.boundary))


def newer(a: int, b: int) -> bool:
    """Whether sequence number ``a`` is newer than ``b`` (serial-number arithmetic mod 2^16:
    ``a`` is newer when it is 1 .. 2^15 - 1 steps ahead)."""
    step = (a - b) % (1 << SEQUENCE_BITS)
    return 0 < step < 1 << (SEQUENCE_BITS - 1)


def newest(words: Sequence[int]) -> tuple[int, MarkerValue] | None:
    """The slot of the newest valid marker among the two marker ``words`` and that marker, as
    RESUME chooses it (None: neither is valid, nothing committed)."""
    found = [read_marker(w) for w in words]
    valid = [(slot, m) for slot, m in enumerate(found) if m is not None]
    if not valid:
        return None
    if len(valid) == 2 and newer(valid[1][1].sequence, valid[0][1].sequence):
        return valid[1]
    return valid[0]


def slot_base(slot: int, slot_words: int) -> int:
    """The store word where slot ``slot``'s data start."""
    return DATA_BASE + slot * slot_words
