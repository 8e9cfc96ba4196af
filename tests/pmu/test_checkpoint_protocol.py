"""The checkpoint store's commit protocol on the PMU RTL (Amaranth simulator) under power failures.

A program takes three checkpoints of a four-word tensor, each a rotation of the one before (so
every checkpoint's contents differ from the others' and from a mix of two). Power fails at every
cycle of the failure-free run in turn, then in random sequences of several failures. After each
failure the newest valid marker must name a slot that holds exactly its boundary's tensor (a
corrupt resume state would show as a mix or a scrambled word), the store's markers must be what
the PMU model (pmu/timing.py, ``fail_at``) says, and the run must end with the right tensor in the
cycle the model predicts for the work that was left (the work redone).
"""

import numpy as np
import pytest
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.isa import ErrorCode, Opcode, encode
from voltflow.pmu.store import read_marker
from voltflow.pmu.timing import Outcome, predict

from tests.pmu.pmu_harness import PowerCycles, run_with_failures, store_config, stub_cycles

E = encode
WORDS = 4
#: The network input, re-sensed after every boot.
SENSOR = {i: 0x0101_0101_0101_0101 * (i + 1) for i in range(WORDS)}


def _rotated(k: int) -> list[int]:
    """The tensor after k rotations by one word (boundary b holds ``_rotated(b - 1)``)."""
    values = [SENSOR[i] for i in range(WORDS)]
    return values[k % WORDS :] + values[: k % WORDS]


def _checkpoint(boundary: int, resume: int) -> list[int]:
    """Save the scratchpad's words rotated by one (two SAVEs), then commit."""
    return [
        E(Opcode.SAVE, first=1, base=1, words=WORDS - 1),
        E(Opcode.SAVE, first=0, base=0, words=1),
        E(Opcode.COMMIT, resume=resume, boundary=boundary),
    ]


#: RESUME; checkpoint 1 (the input as it is); then twice: restore, checkpoint the rotation;
#: finally restore the last checkpoint and stop.
PROGRAM = [
    E(Opcode.RESUME),
    E(Opcode.SAVE, first=1, base=0, words=WORDS),
    E(Opcode.COMMIT, resume=3, boundary=1),
    E(Opcode.RESTORE, first=1, base=0, words=WORDS),
    *_checkpoint(2, 7),
    E(Opcode.RESTORE, first=1, base=0, words=WORDS),
    *_checkpoint(3, 11),
    E(Opcode.RESTORE, first=1, base=0, words=WORDS),
    E(Opcode.HALT, code=0),
]


@pytest.fixture(scope="module")
def config() -> PmuConfig:
    return store_config()


def _model(config: PmuConfig, failures: list[int]) -> tuple[list[tuple[int, int]], Outcome]:
    """The store's markers after each failure the program lives to see, and the last cycle."""
    markers = (0, 0)
    seen = []
    for f in failures:
        run = predict(PROGRAM, config, stub_cycles, program_ops=0, markers=markers, fail_at=f)
        if run.failed_at is None:
            return seen, run
        markers = (run.store.markers[0], run.store.markers[1])
        seen.append(markers)
    return seen, predict(PROGRAM, config, stub_cycles, program_ops=0, markers=markers)


def _check(config: PmuConfig, failures: list[int], run: PowerCycles) -> None:
    where = f"failures {failures}"
    expected_markers, final = _model(config, failures)
    assert run.markers_after_failure == expected_markers, where
    for (m0, m1), slots in zip(
        run.markers_after_failure, run.slot_words_after_failure, strict=True
    ):
        valid = [(s, read_marker(w)) for s, w in enumerate((m0, m1)) if read_marker(w)]
        if not valid:
            continue  # nothing committed yet: the program starts again from the input
        slot, newest = max(valid, key=lambda v: v[1].sequence)  # type: ignore[union-attr]
        assert newest is not None
        assert slots[slot] == _rotated(newest.boundary - 1), where
    assert run.outcome.error is ErrorCode.NONE and run.outcome.halt_code == 0, where
    assert run.outcome.end_cycle == final.end_cycle, where
    assert run.spad == _rotated(2), where


def test_a_failure_at_every_cycle_resumes_from_a_complete_checkpoint(config: PmuConfig) -> None:
    clean = predict(PROGRAM, config, stub_cycles, program_ops=0)
    assert clean.error is ErrorCode.NONE and clean.halt_code == 0
    # Every cycle of the failure-free run: boot, three checkpoints, the restores, the end.
    points = [[f] for f in range(clean.end_cycle + 1)]
    runs = run_with_failures(config, PROGRAM, sensor=SENSOR, runs=points, watch=WORDS)
    for failures, run in zip(points, runs, strict=True):
        _check(config, failures, run)
    # A resumed run skips the committed work; a failure just before a commit lands makes the
    # on-time (the failed cycle's plus the last one's) exceed the failure-free run's.
    assert min(r.outcome.end_cycle for r in runs) < clean.end_cycle
    assert (
        max(f + r.outcome.end_cycle for (f,), r in zip(points, runs, strict=True)) > clean.end_cycle
    )
    assert sum(len(r.failed_at) - 1 for r in runs) == len(points)


@pytest.mark.parametrize(
    "runs", [pytest.param(120, id="120"), pytest.param(2000, id="2000", marks=pytest.mark.slow)]
)
def test_random_failure_sequences_match_the_model(config: PmuConfig, runs: int) -> None:
    clean = predict(PROGRAM, config, stub_cycles, program_ops=0)
    rng = np.random.default_rng(16 + runs)
    points = [
        [int(f) for f in rng.integers(0, clean.end_cycle + 1, size=int(rng.integers(2, 6)))]
        for _ in range(runs)
    ]
    runs = run_with_failures(config, PROGRAM, sensor=SENSOR, runs=points, watch=WORDS)
    for failures, run in zip(points, runs, strict=True):
        _check(config, failures, run)
    assert sum(len(r.failed_at) - 1 for r in runs) > 2 * len(points)


@pytest.mark.parametrize(
    "words",
    [
        # Beyond the scratchpad; beyond a slot (two SAVEs adding up past it); RESTORE likewise.
        lambda spad, slot: [E(Opcode.SAVE, first=1, base=spad - 1, words=2)],
        lambda spad, slot: [
            E(Opcode.SAVE, first=1, base=0, words=slot - 1),
            E(Opcode.SAVE, first=0, base=0, words=2),
        ],
        lambda spad, slot: [E(Opcode.RESTORE, first=1, base=spad, words=1)],
    ],
)
def test_copies_beyond_the_scratchpad_or_a_slot_stop_with_store_range(
    config: PmuConfig, words
) -> None:
    program = [*words(config.spad_words, config.slot_words), E(Opcode.HALT, code=0)]
    model = predict(program, config, stub_cycles, program_ops=0)
    assert model.error is ErrorCode.STORE_RANGE
    (run,) = run_with_failures(config, program, sensor={}, runs=[[]], watch=1)
    assert run.outcome.error is ErrorCode.STORE_RANGE
    assert run.outcome.end_cycle == model.end_cycle
