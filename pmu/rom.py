"""ROM images of a PMU program: `.hex` for $readmemh, `.bin` (little-endian words), `.lst`."""

from pathlib import Path

from voltflow.pmu.isa import WORD_BITS

__all__ = ["RomError", "read_rom", "write_bin", "write_hex"]

_HEX_DIGITS = WORD_BITS // 4


class RomError(ValueError):
    """A ROM file that is not a sequence of command words."""


def write_hex(path: str | Path, words: tuple[int, ...] | list[int]) -> None:
    """One word per line, 16 hex digits, as $readmemh reads them."""
    Path(path).write_text("".join(f"{w:0{_HEX_DIGITS}x}\n" for w in words))


def write_bin(path: str | Path, words: tuple[int, ...] | list[int]) -> None:
    """Words as little-endian 8-byte integers."""
    Path(path).write_bytes(b"".join(w.to_bytes(WORD_BITS // 8, "little") for w in words))


def read_rom(path: str | Path) -> list[int]:
    """Read a `.hex` (text) or `.bin` ROM image back into words."""
    path = Path(path)
    if not path.is_file():
        raise RomError(f"{path}: no such ROM file")
    if path.suffix == ".bin":
        data = path.read_bytes()
        size = WORD_BITS // 8
        if len(data) % size:
            raise RomError(
                f"{path.name}: {len(data)} bytes is not a whole number of {size}-byte words"
            )
        return [int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)]
    words = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("//")[0].strip()
        if not text:
            continue
        if text.startswith("@"):
            raise RomError(f"{path.name}:{number}: address records (@) are not supported")
        try:
            value = int(text, 16)
        except ValueError:
            raise RomError(
                f"{path.name}:{number}: must be a {_HEX_DIGITS}-digit hex word, not {text!r}"
            ) from None
        if len(text) > _HEX_DIGITS:
            raise RomError(f"{path.name}:{number}: {text!r} is wider than {WORD_BITS} bits")
        words.append(value)
    return words
