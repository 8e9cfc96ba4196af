"""The PMU RTL (Amaranth simulator, stub accelerator) against its Python model, pmu/timing.py:
hand-written programs, every error code, and a fuzz of thousands of random programs that must
all stop (HALT or error) within a bounded number of ticks, exactly as the model predicts."""

from pathlib import Path

import numpy as np
import pytest
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.isa import OPCODE_BITS, DomainCode, ErrorCode, Opcode, encode, payload_fields
from voltflow.pmu.timing import Outcome, SupplyState, predict
from voltflow.scheduler.chip import DOMAINS, BankKind, load_chip

from tests.pmu.pmu_harness import RtlOutcome, run_programs, stub_cycles

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
#: Banks of the fuzz build: 2 ifmap, 1 ofmap, 40 RRAM (two groups, a partial last group).
COUNTS = {BankKind.IFMAP: 2, BankKind.OFMAP: 1, BankKind.RRAM: 40}
PROGRAM_OPS = 200
BUDGET = 48
#: Ticks per command at most: EXEC + one WAIT tick, or a LAUNCH: EXEC + start + C (<= 5 for
#: the stub) + done. So a run stops within MAX_TICKS_PER_COMMAND * (budget + 1) ticks.
MAX_TICKS_PER_COMMAND = 8
BOUND = MAX_TICKS_PER_COMMAND * (BUDGET + 1)


@pytest.fixture(scope="module")
def config() -> PmuConfig:
    return PmuConfig.from_chip(load_chip(SMALL_CHIP), COUNTS)


def _expected(config: PmuConfig, words: list[int]) -> tuple[Outcome, SupplyState]:
    """The model's outcome and its last supply state (what the switch enables show at the end)."""
    states: list[SupplyState] = []
    outcome = predict(
        words,
        config,
        stub_cycles,
        program_ops=PROGRAM_OPS,
        budget=BUDGET,
        on_supply=lambda pc, state: states.append(state),
    )
    return outcome, states[-1]


def _assert_same(config: PmuConfig, words: list[int], rtl: RtlOutcome) -> None:
    model, supply = _expected(config, words)
    where = f"program {[hex(w) for w in words]}"
    assert rtl.error is model.error, where
    assert rtl.end_cycle == model.end_cycle, where
    assert rtl.halt_code == model.halt_code, where
    assert rtl.error_pc == model.error_pc, where
    assert rtl.launches == [(x.exec_cycle, x.done_cycle) for x in model.launches], where
    expected = model.counter_values()
    expected |= {
        "overclock_count": model.overclock_count,
        "overclock_first": model.overclock_first or 0,
        "access_count": 0,
        "access_first": 0,
    }
    assert rtl.counters == expected, where
    assert rtl.bank_on_cycles == model.bank_on_cycles, where
    # The supply switch enables: one-hot on the rail each domain is connected to.
    assert rtl.supply == {
        d.value: (0, 0) if r is None else (1 << r, 1)
        for d, r in zip(DOMAINS, supply.domain_rails, strict=True)
    }, where
    assert rtl.ticks <= BOUND, where


E = encode


def _setup(config: PmuConfig, level: int = 4) -> list[int]:
    words = [E(Opcode.SET_PERIOD, cycles=3000), E(Opcode.SET_RAIL, rail=0, level=level)]
    words.append(E(Opcode.WAIT_RAILS))
    for i, d in enumerate(DomainCode):
        words.append(E(Opcode.CONNECT, domain=d, rail=0))
        words.append(E(Opcode.SET_FREQ, domain=d, increment=config.max_increment[i][level]))
    return words


HAND = {
    "frame_idle_loop": lambda c: [
        *_setup(c),
        E(Opcode.GATE, group=0, mask=0b110),
        E(Opcode.WAKE, group=0, mask=0b010),
        E(Opcode.WAKE, group=1, mask=0b1),
        E(Opcode.LAUNCH, first=3, count=4, lead=0),
        E(Opcode.WAIT, cycles=17),
        E(Opcode.IDLE),
        E(Opcode.LOOP, target=len(_setup(c)) + 3, count=2),
        E(Opcode.HALT, code=7),
    ],
    "sleep_frames": lambda c: [
        *_setup(c),
        E(Opcode.LAUNCH, first=0, count=9, lead=0),
        E(Opcode.SLEEP),
        E(Opcode.WAKE, group=0, mask=0b111),
        E(Opcode.WAIT, cycles=20),
        E(Opcode.CONNECT, domain=DomainCode.SYS, rail=0),
        E(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=c.max_increment[0][4]),
        E(Opcode.SLEEP),
        E(Opcode.SLEEP),
        E(Opcode.HALT, code=0),
    ],
    # Look-ahead LAUNCHes (stub C = (first + count) % 5 + 1): supply and bank commands while
    # the ops run (a CONNECT's wait outlasting them), SYNC before and after done, a lead past
    # the ops' end (an ordinary LAUNCH) and a SYNC with nothing running.
    "lookahead": lambda c: [
        *_setup(c, 2),
        E(Opcode.SET_RAIL, rail=1, level=6),
        E(Opcode.WAIT_RAILS),
        E(Opcode.LAUNCH, first=3, count=1, lead=1),  # C = 5
        E(Opcode.WAKE, group=0, mask=0b001),
        E(Opcode.CONNECT, domain=DomainCode.SYS, rail=1),
        E(Opcode.SYNC),
        E(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=c.max_increment[0][6]),
        E(Opcode.LAUNCH, first=1, count=1, lead=2),  # C = 3
        E(Opcode.SYNC),
        E(Opcode.LAUNCH, first=2, count=2, lead=5),  # C = 5: lead C is still look-ahead
        E(Opcode.GATE, group=0, mask=0b001),
        E(Opcode.SYNC),
        E(Opcode.LAUNCH, first=0, count=1, lead=4),  # C = 2: lead C + 2 is an ordinary LAUNCH
        E(Opcode.SYNC),
        E(Opcode.LAUNCH, first=0, count=3, lead=3),  # C = 4: the ops end inside the WAIT
        E(Opcode.WAIT, cycles=40),
        E(Opcode.SYNC),
        E(Opcode.HALT, code=0),
    ],
    # Raising the rail's voltage but the clock before it settles, then lowering the rail under
    # the fast clock: two overclock episodes.
    "overclock": lambda c: [
        *_setup(c, 2),
        E(Opcode.SET_RAIL, rail=0, level=6),
        E(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=c.max_increment[0][6]),
        E(Opcode.WAIT_RAILS),
        E(Opcode.SET_RAIL, rail=0, level=1),
        E(Opcode.HALT, code=1),
    ],
    # Each domain on its own rail: the supply switch enables are one-hot per domain.
    "three_rails": lambda c: [
        *(E(Opcode.SET_RAIL, rail=r, level=2 + r) for r in range(3)),
        E(Opcode.WAIT_RAILS),
        E(Opcode.CONNECT, domain=DomainCode.SYS, rail=2),
        E(Opcode.CONNECT, domain=DomainCode.RRAM, rail=0),
        E(Opcode.CONNECT, domain=DomainCode.FEEDER, rail=1),
        E(Opcode.HALT, code=0),
    ],
    "overrun": lambda c: [
        E(Opcode.SET_PERIOD, cycles=3),
        E(Opcode.WAIT, cycles=10),
        E(Opcode.IDLE),
        E(Opcode.IDLE),
        E(Opcode.IDLE),
        E(Opcode.HALT, code=2),
    ],
}


def test_hand_written_programs_match_the_model(config: PmuConfig) -> None:
    programs = [HAND[name](config) for name in sorted(HAND)]
    rtl = run_programs(config, programs, budget=BUDGET, max_ticks=BOUND + 1)
    for words, outcome in zip(programs, rtl, strict=True):
        _assert_same(config, words, outcome)
    by_name = dict(zip(sorted(HAND), rtl, strict=True))
    assert by_name["three_rails"].supply == {"sys": (4, 1), "rram": (1, 1), "feeder": (2, 1)}
    assert by_name["sleep_frames"].supply == {"sys": (0, 0), "rram": (0, 0), "feeder": (0, 0)}
    assert by_name["frame_idle_loop"].supply == {"sys": (1, 1), "rram": (1, 1), "feeder": (1, 1)}
    overclock, _ = _expected(config, HAND["overclock"](config))
    # Two episodes: the early SET_FREQ, and lowering the rail under the fast clock at the end.
    assert overclock.overclock_count == 2
    # The violation starts in the cycle after the SET_FREQ (its effect), while the rail settles.
    set_freq = overclock.command_cycles[len(_setup(config, 2)) + 1]
    assert overclock.overclock_first == set_freq[1] + 1


ERRORS = {
    ErrorCode.ILLEGAL_OPCODE: [18],
    ErrorCode.NO_STORE: [E(Opcode.RESUME)],
    ErrorCode.ILLEGAL_DOMAIN: [Opcode.CONNECT.value | 3 << OPCODE_BITS],
    ErrorCode.UNUSED_BITS: [Opcode.WAIT_RAILS.value | 1 << 63],
    ErrorCode.RAIL_RANGE: [E(Opcode.SET_RAIL, rail=3, level=0)],
    ErrorCode.LEVEL_RANGE: [E(Opcode.SET_RAIL, rail=0, level=9)],
    ErrorCode.FREQ_RANGE: [E(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=1 << 16)],
    ErrorCode.BANK_RANGE: [E(Opcode.WAKE, group=1, mask=1 << 11)],
    ErrorCode.LAUNCH_RANGE: [E(Opcode.LAUNCH, first=199, count=2, lead=0)],
    ErrorCode.PERIOD: [E(Opcode.IDLE)],
    ErrorCode.LOOP_NESTED: [
        E(Opcode.LOOP, target=1, count=3),
        E(Opcode.LOOP, target=0, count=3),
    ],
    ErrorCode.END_OF_PROGRAM: [E(Opcode.WAIT, cycles=5)],
    ErrorCode.WATCHDOG: [E(Opcode.LOOP, target=0, count=0)],
    ErrorCode.CLOCK_STOPPED: [E(Opcode.LAUNCH, first=0, count=1, lead=0)],
    ErrorCode.BUSY: [
        E(Opcode.SET_RAIL, rail=0, level=4),
        *(E(Opcode.CONNECT, domain=d, rail=0) for d in DomainCode),
        *(E(Opcode.SET_FREQ, domain=d, increment=1 << 14) for d in DomainCode),
        E(Opcode.LAUNCH, first=0, count=4, lead=1),
        E(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=1),
    ],
}


def test_every_error_code_stops_the_pmu(config: PmuConfig) -> None:
    # STORE_RANGE needs a build with the store: tests/pmu/test_checkpoint_protocol.py.
    assert set(ERRORS) == set(ErrorCode) - {ErrorCode.NONE, ErrorCode.STORE_RANGE}
    programs = [ERRORS[code] for code in ERRORS]
    rtl = run_programs(config, programs, budget=BUDGET, max_ticks=BOUND + 1)
    for (code, words), outcome in zip(ERRORS.items(), rtl, strict=True):
        assert outcome.error is code, (code, outcome.error)
        _assert_same(config, words, outcome)


_SETUP = [
    E(Opcode.SET_PERIOD, cycles=2000),
    E(Opcode.SET_RAIL, rail=0, level=4),
    *(E(Opcode.CONNECT, domain=d, rail=0) for d in DomainCode),
    *(E(Opcode.SET_FREQ, domain=d, increment=1 << 14) for d in DomainCode),
]


def _pack(op: Opcode, values: dict[str, int]) -> int:
    """The payload bits of ``op`` with these field values, packed at the ISA's offsets without
    encode's checks (a domain code 3 is wanted here)."""
    word, bit = 0, OPCODE_BITS
    for name, width in payload_fields(op).items():
        word |= (values.get(name, 0) & ((1 << width) - 1)) << bit
        bit += width
    return word


def _random_programs(seed: int, count: int) -> list[list[int]]:
    """Random programs: often a random-length prefix of a legal set-up (period, rail, clocks),
    then words that are raw 64-bit values (5 %) or opcodes with random small fields, some with
    a flipped bit (so runs get past their first commands and reach every error)."""
    rng = np.random.default_rng(seed)
    programs = []
    for _ in range(count):
        n = int(rng.integers(1, 13))
        words = _SETUP[: int(rng.integers(0, len(_SETUP) + 1))] if rng.random() < 0.7 else []
        for _ in range(n):
            kind = rng.random()
            if kind < 0.05:
                word = int(rng.integers(0, 1 << 63, dtype=np.uint64)) << 1 | int(rng.integers(2))
            else:
                op = Opcode(int(rng.choice([*range(13), Opcode.SYNC.value])))
                word = op.value
                fields = {
                    Opcode.HALT: {"code": int(rng.integers(0, 4))},
                    Opcode.SET_PERIOD: {"cycles": int(rng.integers(0, 400))},
                    Opcode.SET_RAIL: {
                        "rail": int(rng.integers(0, 4)),
                        "level": int(rng.integers(0, 10)),
                    },
                    Opcode.CONNECT: {
                        "domain": int(rng.integers(0, 4)),
                        "rail": int(rng.integers(0, 4)),
                    },
                    Opcode.SET_FREQ: {
                        "domain": int(rng.integers(0, 4)),
                        "increment": int(rng.integers(0, 70000)),
                    },
                    Opcode.GATE: {
                        "group": int(rng.integers(0, 3)),
                        "mask": int(rng.integers(0, 1 << 32)),
                    },
                    Opcode.WAKE: {
                        "group": int(rng.integers(0, 3)),
                        "mask": int(rng.integers(0, 1 << 32)),
                    },
                    Opcode.LAUNCH: {
                        "first": int(rng.integers(0, 210)),
                        "count": int(rng.integers(0, 9)),
                        "lead": int(rng.integers(0, 8)) if rng.random() < 0.5 else 0,
                    },
                    Opcode.WAIT: {
                        "cycles": int(rng.integers(0, 1 << 48))
                        if rng.random() < 0.2
                        else int(rng.integers(0, 3000))
                    },
                    Opcode.LOOP: {
                        "target": int(rng.integers(0, n + 1)),
                        "count": int(rng.integers(0, 4)),
                    },
                }.get(op, {})
                small = _pack(op, fields)
                word |= small
                if rng.random() < 0.05:
                    word ^= 1 << int(rng.integers(4, 64))
            words.append(word)
        programs.append(words)
    return programs


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_always_stop_within_the_bound_as_the_model_says(
    config: PmuConfig, seed: int
) -> None:
    programs = _random_programs(seed, 750)
    rtl = run_programs(
        config,
        programs,
        budget=BUDGET,
        max_ticks=BOUND + 1,
        check=lambda k, outcome: _assert_same(config, programs[k], outcome),
    )
    assert all(r.end_cycle >= 0 for r in rtl)
    stops = {r.error for r in rtl}
    assert ErrorCode.NONE in stops and len(stops) >= 8
