"""The counter -> energy model on a tiny counter set, against joules computed by hand.

The constants below are the reference chip file's (scheduler/hardware/powerflow_ref.yaml); the
first test checks that the file still holds them, so every expected value is plain arithmetic on
numbers written here. Also: the price table names only counters the RTL has and fields the chip
file has, and prices every energy field but the documented exceptions.
"""

import dataclasses
from pathlib import Path

import pytest
import yaml
from voltflow.cosim.energy import (
    DYNAMIC_COMPONENTS,
    LEAKAGE_SOURCES,
    Energy,
    dynamic_energy,
    launch_levels,
    window_energy,
)
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.ports import power_counter_names
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.scheduler.chip import BankKind, Chip, EnergySpec, load_chip
from voltflow.scheduler.dataflow import Activity
from voltflow.scheduler.prices import (
    DYNAMIC_PRICES,
    EVENT_PRICES,
    LEAKAGE_PRICES,
    UNPRICED_ENERGY_FIELDS,
    Component,
    LeakageSource,
)

# ---- the chip file's constants (checked against the file in the first test) -----------------
REFERENCE_MHZ = 800.0  # 1 reference cycle = 1.25 ns
LEVELS_V = (0.90, 0.95, 1.00, 1.05, 1.10, 1.15, 1.20, 1.25, 1.30)
REFERENCE_V = 1.10  # dynamic energy ~ (V / 1.1)^2, leakage ~ V / 1.1
PES = 8 * 8  # rows x cols
WORD_BITS = 64
PE_PJ, ARRAY_PJ, PG_PJ, FEEDER_PJ = 0.18336, 9.7346, 2.5791, 9.8226
SPAD_READ_PJ, SPAD_WRITE_PJ, LANE_PJ_PER_BIT = 35.0, 31.0, 0.17987
RRAM_READ_PJ, WBUF_READ_PJ, WBUF_WRITE_PJ, DMA_PJ = 64.0, 16.0, 191.0, 1.3162
PE_MAC_PJ, ZERO_DETECT_PJ = 0.110, 0.004  # array.sparsity (the reference chip has none: 0 counts)
IDLE_UW = {"sys": 2.32, "rram": 6.452, "feeder": 5.71}
ALWAYS_ON_V, ALWAYS_ON_UW = 1.10, 1.62
BANK_LEAK_UW = {"ifmap": 20.0, "ofmap": 10.0, "rram": 20.0}
WAKE_PJ = {"ifmap": 50.0, "ofmap": 100.0, "rram": 12.5}
TRANSITION_NJ = 0.1
SLEEP_UW = 4.0  # the reference file says 0.0; the test's copy of it says 4.0 (see `chip`)

CYCLE_S = 1 / (REFERENCE_MHZ * 1e6)


def dyn(volts: float) -> float:
    """Quadratic dynamic law."""
    return (volts / REFERENCE_V) ** 2


def leak(volts: float) -> float:
    """Linear leakage law."""
    return volts / REFERENCE_V


@pytest.fixture(scope="module")
def chip(tmp_path_factory: pytest.TempPathFactory) -> Chip:
    """The reference chip with a non-zero sleep power, so the sleep term is tested too."""
    reference = load_chip()
    source = Path(__file__).parents[2] / "scheduler" / "hardware" / "powerflow_ref.yaml"
    raw = yaml.safe_load(source.read_text())
    raw["sleep"]["power_uw"] = SLEEP_UW
    path = tmp_path_factory.mktemp("chip") / "sleepy.yaml"
    path.write_text(yaml.safe_dump(raw))
    sleepy = load_chip(path)
    assert sleepy == dataclasses.replace(reference, sleep_power_uw=SLEEP_UW)
    return sleepy


def test_the_chip_file_holds_the_constants_used_here(chip: Chip) -> None:
    e = chip.energy
    assert (chip.reference_mhz, chip.levels_v, e.reference_v) == (
        REFERENCE_MHZ,
        LEVELS_V,
        REFERENCE_V,
    )
    assert (e.dynamic_law.value, e.leakage_law.value) == ("quadratic", "linear")
    assert (chip.rows * chip.cols, chip.word_bits) == (PES, WORD_BITS)
    assert (e.pe_cycle_pj, e.array_stagger_pj, e.pg_controller_pj, e.feeder_control_pj) == (
        PE_PJ,
        ARRAY_PJ,
        PG_PJ,
        FEEDER_PJ,
    )
    assert (e.spad_read_pj, e.spad_write_pj, e.lane_buffer_pj_per_bit) == (
        SPAD_READ_PJ,
        SPAD_WRITE_PJ,
        LANE_PJ_PER_BIT,
    )
    assert (e.rram_read_pj, e.wbuf_read_pj, e.wbuf_write_pj, e.dma_control_pj) == (
        RRAM_READ_PJ,
        WBUF_READ_PJ,
        WBUF_WRITE_PJ,
        DMA_PJ,
    )
    assert (e.pe_mac_pj, e.zero_detect_pj) == (PE_MAC_PJ, ZERO_DETECT_PJ)
    assert {s.domain.value: s.idle_power_uw for s in chip.domains} == IDLE_UW
    assert (chip.always_on_v, chip.always_on_idle_uw) == (ALWAYS_ON_V, ALWAYS_ON_UW)
    assert {b.kind.value: b.leakage_uw for b in chip.banks} == BANK_LEAK_UW
    assert {b.kind.value: b.wake_energy_pj for b in chip.banks} == WAKE_PJ
    assert (chip.transition_energy_nj, chip.sleep_power_uw) == (TRANSITION_NJ, SLEEP_UW)


# ---- dynamic energy: one LAUNCH's activity counters ------------------------------------------
ACTIVITY = {
    "sys_ticks": 10,
    "feeder_ticks": 20,
    "spad_reads": 3,
    "spad_writes": 2,
    "lane_words": 5,
    "rram_reads": 4,
    "wbuf_reads": 6,
    "wbuf_writes": 1,
    "dma_beats": 7,
    "gated_macs": 12,
    "zero_detects": 32,
}
# sys at level 0 (0.90 V), rram at level 8 (1.30 V), feeder at level 4 (1.10 V = reference).
LEVELS = {"sys": 0, "rram": 8, "feeder": 4}


def test_dynamic_energy_by_hand(chip: Chip) -> None:
    got = dynamic_energy(chip, ACTIVITY, LEVELS, gating=True)
    expected_pj = {
        # 0.18336 pJ x 64 PEs x 10 ticks = 117.3504 pJ, less 0.110 pJ x 12 gated MACs = 1.32 pJ
        "pe": (PE_PJ * PES * 10 - PE_MAC_PJ * 12) * dyn(0.90),
        "array": ARRAY_PJ * 10 * dyn(0.90),  # 9.7346 pJ x 10 ticks = 97.346 pJ
        "zero_detect": ZERO_DETECT_PJ * 32 * dyn(0.90),  # 0.004 pJ x 32 = 0.128 pJ
        "pg_ctrl": PG_PJ * 10 * dyn(ALWAYS_ON_V),  # 2.5791 pJ x 10 ticks = 25.791 pJ, at 1.1 V
        "feeder": FEEDER_PJ * 20 * dyn(1.10),  # 9.8226 pJ x 20 ticks = 196.452 pJ
        "spad": (SPAD_READ_PJ * 3 + SPAD_WRITE_PJ * 2) * dyn(1.10),  # 105 + 62 = 167 pJ
        "lane": LANE_PJ_PER_BIT * WORD_BITS * 5 * dyn(1.10),  # 0.17987 x 320 bits = 57.5584 pJ
        "rram": RRAM_READ_PJ * 4 * dyn(1.30),  # 64 pJ x 4 = 256 pJ
        "wbuf": (WBUF_READ_PJ * 6 + WBUF_WRITE_PJ * 1) * dyn(1.30),  # 96 + 191 = 287 pJ
        "dma": DMA_PJ * 7 * dyn(1.30),  # 1.3162 pJ x 7 = 9.2134 pJ
    }
    assert set(got.dynamic_j) == set(expected_pj)
    for name, pj in expected_pj.items():
        assert got.dynamic_j[name] == pytest.approx(pj * 1e-12, rel=1e-12), name
    # (0.9/1.1)^2 = 0.669421..., (1.3/1.1)^2 = 1.396694...: the sum, written out.
    total_pj = (116.0304 + 97.346 + 0.128) * (0.9 / 1.1) ** 2 + 25.791 + 196.452 + 167 + 57.5584
    total_pj += (256 + 287 + 9.2134) * (1.3 / 1.1) ** 2
    assert got.dynamic_total_j == pytest.approx(total_pj * 1e-12, rel=1e-12)
    assert (got.leakage_total_j, got.transition_j, got.wake_j, got.sleep_j) == (0, 0, 0, 0)


def test_the_gating_controller_costs_nothing_without_a_gating_policy(chip: Chip) -> None:
    gated = dynamic_energy(chip, ACTIVITY, LEVELS, gating=True)
    ungated = dynamic_energy(chip, ACTIVITY, LEVELS, gating=False)
    assert ungated.dynamic_j["pg_ctrl"] == 0.0
    assert gated.dynamic_total_j - ungated.dynamic_total_j == pytest.approx(
        PG_PJ * 10 * 1e-12, rel=1e-9
    )


def test_activity_in_an_unpowered_domain_is_an_error(chip: Chip) -> None:
    with pytest.raises(ValueError, match=r"^activity in domain rram while it is unpowered$"):
        dynamic_energy(chip, ACTIVITY, {**LEVELS, "rram": None}, gating=True)


def test_launch_levels_reads_the_level_counters(chip: Chip) -> None:
    before = {f"cycles_{d}_{k}": 5 for d in LEVELS for k in range(len(LEVELS_V))}
    after = dict(before, cycles_sys_0=105, cycles_rram_8=30)  # feeder: no cycles -> unpowered
    assert launch_levels(chip, after, before) == {"sys": 0, "rram": 8, "feeder": None}
    after["cycles_sys_3"] = 6
    with pytest.raises(ValueError, match=r"^domain sys changed voltage level inside a LAUNCH"):
        launch_levels(chip, after, before)


# ---- leakage, transitions, wakes, sleep: a window of PMU power counters ----------------------
WINDOW_CYCLES = 1000
WINDOW = {
    "cycles_sys_0": 600,  # 600 cycles at 0.90 V
    "cycles_sys_8": 400,  # 400 cycles at 1.30 V
    "cycles_rram_4": 1000,  # the whole window at 1.10 V
    # feeder: never connected (no cycles): no leakage
    "bank_cycles_ifmap_4": 3000,  # 3 banks on for 1000 cycles at 1.10 V
    "bank_cycles_ofmap_0": 500,  # 1 bank for 500 cycles at 0.90 V
    "bank_cycles_rram_8": 200,  # 1 bank for 200 cycles at 1.30 V
    "wakes_ifmap": 2,
    "wakes_ofmap": 1,
    "wakes_rram": 4,
    "asleep_cycles": 300,  # so the always-on supply leaks over 700 cycles
    "supply_switches": 3,
}


def _counters(values: dict[str, int]) -> dict[str, int]:
    """Every PMU counter the energy model reads, zero unless given."""
    names = [f"cycles_{d}_{k}" for d in LEVELS for k in range(len(LEVELS_V))]
    names += [f"bank_cycles_{b.value}_{k}" for b in BankKind for k in range(len(LEVELS_V))]
    names += [f"wakes_{b.value}" for b in BankKind] + ["asleep_cycles", "supply_switches"]
    return {name: values.get(name, 0) for name in names}


def _expected_window() -> Energy:
    fj = 1e-6 * CYCLE_S  # µW x cycles -> J
    return Energy(
        dynamic_j=dict.fromkeys(DYNAMIC_COMPONENTS, 0.0),
        leakage_j={
            # 2.32 µW x (600 x 0.9/1.1 + 400 x 1.3/1.1) cycles x 1.25 ns
            "sys": IDLE_UW["sys"] * (600 * leak(0.90) + 400 * leak(1.30)) * fj,
            "rram": IDLE_UW["rram"] * 1000 * leak(1.10) * fj,  # 6.452 µW x 1.25 µs
            "feeder": 0.0,
            "always_on": ALWAYS_ON_UW * 700 * leak(ALWAYS_ON_V) * fj,  # 1.62 µW x 875 ns
            "ifmap_banks": BANK_LEAK_UW["ifmap"] * 3000 * leak(1.10) * fj,  # 20 µW x 3 x 1.25 µs
            "ofmap_banks": BANK_LEAK_UW["ofmap"] * 500 * leak(0.90) * fj,
            "rram_banks": BANK_LEAK_UW["rram"] * 200 * leak(1.30) * fj,
        },
        transition_j=3 * TRANSITION_NJ * 1e-9,  # 3 switches x 0.1 nJ
        wake_j=(2 * 50.0 + 1 * 100.0 + 4 * 12.5) * 1e-12,  # 250 pJ
        sleep_j=SLEEP_UW * 300 * fj,  # 4 µW x 375 ns = 1.5 fJ
    )


def _assert_same(got: Energy, expected: Energy) -> None:
    assert list(got.leakage_j) == list(LEAKAGE_SOURCES)
    for source, joules in expected.leakage_j.items():
        assert got.leakage_j[source] == pytest.approx(joules, rel=1e-12, abs=0), source
    assert got.transition_j == pytest.approx(expected.transition_j, rel=1e-12)
    assert got.wake_j == pytest.approx(expected.wake_j, rel=1e-12)
    assert got.sleep_j == pytest.approx(expected.sleep_j, rel=1e-12)
    assert got.dynamic_total_j == 0.0
    assert got.total_j == pytest.approx(expected.total_j, rel=1e-12)


def test_window_energy_by_hand(chip: Chip) -> None:
    got = window_energy(chip, _counters(WINDOW), None, WINDOW_CYCLES)
    _assert_same(got, _expected_window())
    # Spot values, in joules: 250 pJ of wakes, 0.3 nJ of transitions, 1.5e-15 J asleep.
    assert got.wake_j == pytest.approx(250e-12, rel=1e-12)
    assert got.transition_j == pytest.approx(0.3e-9, rel=1e-12)
    assert got.sleep_j == pytest.approx(4.0 * 300 * 1.25e-9 * 1e-6, rel=1e-12)


def test_window_energy_is_a_difference_of_counters(chip: Chip) -> None:
    before = {name: 7 * (i + 1) for i, name in enumerate(_counters({}))}
    after = {name: before[name] + count for name, count in _counters(WINDOW).items()}
    _assert_same(window_energy(chip, after, before, WINDOW_CYCLES), _expected_window())


def test_energies_add_up(chip: Chip) -> None:
    launch = dynamic_energy(chip, ACTIVITY, LEVELS, gating=True)
    window = window_energy(chip, _counters(WINDOW), None, WINDOW_CYCLES)
    both = launch + window
    assert both.total_j == pytest.approx(launch.total_j + window.total_j, rel=1e-15)
    assert both.dynamic_j == launch.dynamic_j
    assert both.leakage_j == window.leakage_j


# ---- the price table against the hardware and the chip file ----------------------------------
def test_every_priced_counter_exists_on_the_rtl(chip: Chip) -> None:
    activity_counters = {name for name, _ in COUNTERS}
    activity_fields = set(Activity.__dataclass_fields__)
    for price in DYNAMIC_PRICES:
        for term in price.terms:
            assert term.counter in activity_counters, term
            assert term.activity in activity_fields, term
            assert all(isinstance(getattr(chip, q), int) for q in term.per_count), term
    # The PowerCounters' counter bundle (pmu.ports builds its signature from these names).
    ports = set(power_counter_names(PmuConfig.from_chip(chip, {k: 2 for k in BankKind})))
    for leakage in LEAKAGE_PRICES:
        if leakage.level_counter is not None:
            assert {f"{leakage.level_counter}{k}" for k in range(len(LEVELS_V))} <= ports
    assert {event.counter for event in EVENT_PRICES} <= ports


def test_every_energy_field_is_priced_once_or_declared_unpriced() -> None:
    constants = {f for f in EnergySpec.__dataclass_fields__ if f.endswith(("_pj", "_pj_per_bit"))}
    priced = [term.energy for price in DYNAMIC_PRICES for term in price.terms]
    assert len(priced) == len(set(priced))
    assert set(priced) | UNPRICED_ENERGY_FIELDS == constants
    assert not set(priced) & UNPRICED_ENERGY_FIELDS


def test_the_table_lists_each_component_and_source_once_in_enum_order() -> None:
    assert [p.component for p in DYNAMIC_PRICES] == list(Component)
    assert [p.source for p in LEAKAGE_PRICES] == list(LeakageSource)
    assert list(DYNAMIC_COMPONENTS) == [c.value for c in Component]
    assert {c.value: None if c.domain is None else c.domain.value for c in Component} == (
        DYNAMIC_COMPONENTS
    )
