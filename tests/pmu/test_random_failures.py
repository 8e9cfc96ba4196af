"""Random supply failures for fault campaigns (``pmu.timing.random_failures``) and the per-power-up
failure list of ``predict_power_cycles``, on the PMU model."""

import pytest
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.isa import HALT_POWER_OFF, ErrorCode, Opcode, encode
from voltflow.pmu.timing import NO_FAILURE, predict_power_cycles, random_failures

from tests.pmu.pmu_harness import store_config, stub_cycles

E = encode
#: Three power cycles: checkpoint 1, then restore and checkpoint 2, then the end.
PROGRAM = [
    E(Opcode.RESUME),
    E(Opcode.SAVE, first=1, base=0, words=4),
    E(Opcode.COMMIT, resume=4, boundary=1),
    E(Opcode.HALT, code=HALT_POWER_OFF),
    E(Opcode.RESTORE, first=1, base=0, words=4),
    E(Opcode.SAVE, first=1, base=0, words=4),
    E(Opcode.COMMIT, resume=8, boundary=2),
    E(Opcode.HALT, code=HALT_POWER_OFF),
    E(Opcode.HALT, code=0),
]


@pytest.fixture(scope="module")
def config() -> PmuConfig:
    return store_config()


def _run(config: PmuConfig, failures: list[int]):  # type: ignore[no-untyped-def]
    return predict_power_cycles(PROGRAM, config, stub_cycles, program_ops=0, failures=failures)


def test_one_entry_per_power_up_and_no_failure_lets_one_run(config: PmuConfig) -> None:
    clean = _run(config, [])
    assert [c.halt_code for c in clean] == [HALT_POWER_OFF, HALT_POWER_OFF, 0]
    # Power-up 0 runs, power-up 1 fails at its cycle 5 (and is retried), then all run.
    runs = _run(config, [NO_FAILURE, 5])
    assert [c.failed_at for c in runs] == [None, 5, None, None]
    assert runs[2].end_cycle == clean[1].end_cycle  # the retry redoes power cycle 1
    assert runs[-1].halt_code == 0 and runs[-1].error is ErrorCode.NONE


@pytest.mark.parametrize("seed", range(20))
def test_random_failures_happen_as_placed(config: PmuConfig, seed: int) -> None:
    count = 1 + seed % 7
    failures = random_failures(PROGRAM, config, stub_cycles, program_ops=0, count=count, seed=seed)
    assert failures == random_failures(
        PROGRAM, config, stub_cycles, program_ops=0, count=count, seed=seed
    )  # deterministic
    runs = _run(config, failures)
    assert (
        sum(c.failed_at is not None for c in runs)
        == count
        == sum(f != NO_FAILURE for f in failures)
    )
    assert runs[-1].halt_code == 0 and runs[-1].error is ErrorCode.NONE
    for outcome, at in zip(runs, failures, strict=False):
        assert (outcome.failed_at is None) == (at == NO_FAILURE)


def test_every_power_cycle_and_phase_gets_hit(config: PmuConfig) -> None:
    """Over many draws, failures land in every power cycle, at its start and near its end."""
    clean = _run(config, [])
    hit_cycles: set[int] = set()
    points: set[int] = set()
    for seed in range(60):
        failures = random_failures(PROGRAM, config, stub_cycles, program_ops=0, count=1, seed=seed)
        power_up = next(i for i, f in enumerate(failures) if f != NO_FAILURE)
        hit_cycles.add(power_up)
        points.add(failures[power_up])
    assert hit_cycles == set(range(len(clean)))
    assert min(points) <= 2 and max(points) >= max(c.end_cycle for c in clean) - 3
