"""The requantizer in Amaranth's simulator against the golden model (docs/arithmetic.md): the
per-tensor widths (16-bit m, s up to 47), the per-channel ones (24-bit m, s up to 63) and the
residual add's two terms, at their extremes and on random values."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from voltflow.cosim.golden import (
    ACC_MAX,
    ACC_MIN,
    CHANNEL_M_MAX,
    CHANNEL_S_MAX,
    M_MAX,
    S_MAX,
    requantize,
    requantize_channels,
    residual_add,
)
from voltflow.rtl.requantizer import Requantizer


def _vectors(m_max: int, s_max: int, seed: int, count: int = 150) -> list[tuple[int, int, int]]:
    """(acc, m, s): every combination of the extremes, then random values."""
    rng = np.random.default_rng(seed)
    accs = [ACC_MIN, ACC_MIN + 1, -(1 << 30) - 1, -(1 << 30), -5, -1, 0, 1, 5, ACC_MAX]
    ms, ss = [1, 2, m_max - 1, m_max], [0, 1, 2, s_max - 1, s_max]
    out = [(a, m, s) for a in accs for m in ms for s in ss]
    for _ in range(count):
        out.append(
            (
                int(rng.integers(ACC_MIN, ACC_MAX, endpoint=True)),
                int(rng.integers(1, m_max, endpoint=True)),
                int(rng.integers(0, s_max, endpoint=True)),
            )
        )
    return out


def _run(dut: Requantizer, vectors: list[dict[str, int]]) -> list[int]:
    """``y`` for each assignment of the requantizer's inputs."""
    seen: list[int] = []

    async def bench(ctx) -> None:
        for values in vectors:
            for name, value in values.items():
                ctx.set(getattr(dut, name), value)
            seen.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("relu", [False, True])
def test_per_tensor_widths_match_requantize(relu: bool) -> None:
    vectors = _vectors(M_MAX, S_MAX, seed=1)
    got = _run(
        Requantizer(), [{"a": a, "m_a": m, "s": s, "relu": int(relu)} for a, m, s in vectors]
    )
    expected = [int(requantize(np.array([a]), m, s, relu=relu)[0]) for a, m, s in vectors]
    assert got == expected


@pytest.mark.parametrize("relu", [False, True])
def test_per_channel_widths_match_requantize_channels(relu: bool) -> None:
    dut = Requantizer(per_channel=True)
    assert (len(dut.m_a), len(dut.s)) == (24, 6)
    vectors = _vectors(CHANNEL_M_MAX, CHANNEL_S_MAX, seed=2)
    got = _run(dut, [{"a": a, "m_a": m, "s": s, "relu": int(relu)} for a, m, s in vectors])
    acc = np.array([a for a, _, _ in vectors])
    m = np.array([m for _, m, _ in vectors])
    s = np.array([s for _, _, s in vectors])
    # One channel per vector: the golden model's per-channel rule applied along axis 0.
    assert got == requantize_channels(acc, m, s, relu=relu).tolist()


def test_two_terms_match_residual_add() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=200)
    b = rng.integers(-128, 128, size=200)
    vectors = [(-128, -128, M_MAX, M_MAX, 0), (127, 127, M_MAX, M_MAX, S_MAX)] + [
        (
            int(x),
            int(y),
            int(rng.integers(1, M_MAX, endpoint=True)),
            int(rng.integers(1, M_MAX, endpoint=True)),
            int(rng.integers(0, 24)),
        )
        for x, y in zip(a, b, strict=True)
    ]
    got = _run(
        Requantizer(two_terms=True),
        [{"a": x, "b": y, "m_a": ma, "m_b": mb, "s": s} for x, y, ma, mb, s in vectors],
    )
    expected = [
        int(
            residual_add(
                np.array([[[x]]], np.int8), np.array([[[y]]], np.int8), m_a=ma, m_b=mb, s=s
            )[0, 0, 0]
        )
        for x, y, ma, mb, s in vectors
    ]
    assert got == expected
