"""Sliding windows of (C, H, W) tensors: the one definition of padding, stride and im2col order
that the float reference (`scheduler.quantise`) and the int8 golden model (`cosim.golden`) share.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["im2col", "windows"]


def windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    fill: float,
) -> np.ndarray:
    """The (C, OH, OW, kh, kw) view of every window of ``x`` padded with ``fill``.

    ``padding`` is (top, left, bottom, right).

    Raises
    ------
    ValueError
        A kernel or stride below 1, negative padding, or a kernel larger than the padded input.
    """
    kh, kw = kernel
    sh, sw = stride
    top, left, bottom, right = padding
    if min(kh, kw, sh, sw) < 1 or min(padding) < 0:
        raise ValueError(
            f"kernel and stride must be positive and padding non-negative, not kernel {kernel}, "
            f"stride {stride}, padding {padding}"
        )
    _, height, width = x.shape
    if height + top + bottom < kh or width + left + right < kw:
        raise ValueError(
            f"kernel {kernel} does not fit the {height}x{width} input padded by {padding}"
        )
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=fill)
    return sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


def im2col(win: np.ndarray, groups: int) -> np.ndarray:
    """The (groups, C_in / groups * kh * kw, OH * OW) columns of a `windows` view, reduction index
    ``(c, ky, kx)`` in that order (a conv weight ``(C_out, C_in / groups, kh, kw)`` reshaped to
    ``(groups, C_out / groups, -1)`` multiplies them)."""
    c_in, oh, ow, kh, kw = win.shape
    c_in_g = c_in // groups
    return (
        win.reshape(groups, c_in_g, oh, ow, kh, kw)
        .transpose(0, 1, 4, 5, 2, 3)
        .reshape(groups, c_in_g * kh * kw, oh * ow)
    )
