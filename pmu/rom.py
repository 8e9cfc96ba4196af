"""ROM images of a PMU program: `.hex` for $readmemh, `.bin` (little-endian words), `.lst`."""

from pathlib import Path

from voltflow.hw.readmemh import readmemh_text
from voltflow.pmu.config import COMMAND_WORDS
from voltflow.pmu.isa import WORD_BITS
from voltflow.scheduler.documents import DocumentError, read_text, short, write_atomic

__all__ = ["RomError", "read_rom", "write_bin", "write_hex", "write_listing"]

_HEX_DIGITS = WORD_BITS // 4


class RomError(ValueError):
    """A ROM file that is not a sequence of command words."""


def write_hex(path: str | Path, words: tuple[int, ...] | list[int]) -> None:
    """One word per line, 16 hex digits, as $readmemh reads them."""
    _write(path, readmemh_text(words, WORD_BITS))


def write_bin(path: str | Path, words: tuple[int, ...] | list[int]) -> None:
    """Words as little-endian 8-byte integers."""
    _write(path, b"".join(w.to_bytes(WORD_BITS // 8, "little") for w in words))


def write_listing(path: str | Path, listing: str) -> None:
    """The annotated listing (``Program.listing()``), written atomically."""
    _write(path, listing)


def _write(path: str | Path, content: str | bytes) -> None:
    try:
        write_atomic(path, content)
    except DocumentError as exc:
        raise RomError(str(exc)) from None


def read_rom(path: str | Path) -> list[int]:
    """Read a `.hex` (text) or `.bin` ROM image back into words.

    At most ``COMMAND_WORDS`` words (the PMU's command memory); every failure is a
    :class:`RomError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a ROM file" if path.is_dir() else "no such ROM file"
        raise RomError(f"{path}: {what}")
    size = WORD_BITS // 8
    # A .hex line is 16 digits; room is left for comments (// ...) beside each word.
    if path.stat().st_size > COMMAND_WORDS * (size if path.suffix == ".bin" else 256):
        raise RomError(
            f"{path}: is {path.stat().st_size:,} bytes, more than the PMU's {COMMAND_WORDS} "
            "command words can take"
        )
    if path.suffix == ".bin":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RomError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
        if len(data) % size:
            raise RomError(
                f"{path.name}: {len(data)} bytes is not a whole number of {size}-byte words"
            )
        words = [int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)]
        return _bounded(path, words)
    try:
        text = read_text(path)
    except DocumentError as exc:
        raise RomError(str(exc)) from None
    words = []
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.split("//")[0].strip()
        if not text:
            continue
        if text.startswith("@"):
            raise RomError(f"{path.name}:{number}: address records (@) are not supported")
        try:
            value = int(text, 16)
        except ValueError:
            raise RomError(
                f"{path.name}:{number}: must be a {_HEX_DIGITS}-digit hex word, not {short(text)}"
            ) from None
        if len(text) > _HEX_DIGITS:
            raise RomError(f"{path.name}:{number}: {short(text)} is wider than {WORD_BITS} bits")
        words.append(value)
    return _bounded(path, words)


def _bounded(path: Path, words: list[int]) -> list[int]:
    if len(words) > COMMAND_WORDS:
        raise RomError(
            f"{path}: {len(words)} words; the PMU's command memory holds {COMMAND_WORDS}"
        )
    return words
