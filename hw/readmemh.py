"""The text of a ``$readmemh`` image: one word per line in hex, the one writer every image uses.

The SV wrapper loads every memory (PMU command ROM, layer program, scratchpad, RRAM, dump ranges)
with ``$readmemh``; the PMU's ROM writer and the co-simulation's image writers all format through
:func:`readmemh_text`, so the format lives in one place.
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["readmemh_text"]

# "00".."ff" as ASCII pairs: a uint64 array formats without a Python loop per word.
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint8)
_HEX_PAIRS = _HEX_PAIRS.reshape(256, 2)


def readmemh_text(words: Sequence[int] | np.ndarray, bits: int) -> bytes:
    """``words`` as ``$readmemh`` text: ``ceil(bits / 4)`` hex digits and a newline per word.

    A 1-d ``uint64`` array of 64-bit words is formatted vectorised (memory images of millions of
    words); anything else word by word. A word wider than ``bits`` is a ValueError.
    """
    digits = -(-bits // 4)
    if isinstance(words, np.ndarray) and words.dtype == np.uint64 and bits == 64:
        if words.ndim != 1:
            raise ValueError(f"words must be a 1-d array, not of shape {words.shape}")
        octets = np.ascontiguousarray(words, dtype=">u8").view(np.uint8).reshape(-1, 8)
        text = np.empty((words.size, 17), dtype=np.uint8)
        text[:, :16] = _HEX_PAIRS[octets].reshape(-1, 16)
        text[:, 16] = ord("\n")
        return text.tobytes()
    out = []
    for word in words:
        value = int(word)
        if not 0 <= value < 1 << bits:
            raise ValueError(f"word {value:#x} does not fit {bits} bits")
        out.append(f"{value:0{digits}x}\n")
    return "".join(out).encode()
