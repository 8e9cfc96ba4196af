"""The capacitor timeline of an intermittent run (``cosim.intermittent_report``), from measured
energies, against the capacitor's equations (no simulation)."""

import math

import pytest
from voltflow.cosim.energy import Energy
from voltflow.cosim.intermittent_analysis import PowerUp
from voltflow.cosim.intermittent_report import capacitor_timeline
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.supply import Harvest


def _up(index: int, cycles: int, energy_j: float) -> PowerUp:
    up = PowerUp(index, index, "off", None, cycles, cycles, 1, Energy(boot_j=1e-6))
    up.measured = up.measured + Energy(transition_j=energy_j - 1e-6)
    up.points = [(0, 0.0), (cycles - 1, energy_j)]
    return up


def test_voltage_and_recharge_follow_the_capacitor_equations() -> None:
    chip = load_chip()  # 100 uF, 2.8 -> 2.4 V, boot 100 us
    spec = chip.intermittent
    assert spec is not None
    ups = [_up(0, 800_000, 50e-6), _up(1, 400_000, 100e-6)]
    timeline = capacitor_timeline(ups, chip, Harvest.constant(1e-3))
    c_f = spec.capacitor.capacitance_uf * 1e-6
    start = 0.0
    for up, row in zip(ups, timeline["power_ups"], strict=True):
        on = spec.boot.latency_s + up.cycles / 800e6
        assert row["on_s"] == pytest.approx(on)
        assert row["start_s"] == pytest.approx(start)
        assert row["end_v"] == pytest.approx(math.sqrt(2.8**2 - 2 * up.measured.total_j / c_f))
        # A constant 1 mW recharges what was drawn in E / P.
        assert row["recharged_s"] == pytest.approx(start + on + up.measured.total_j / 1e-3)
        start = row["recharged_s"]
    assert timeline["latency_s"] == pytest.approx(start)
    volts = [v for _, v in timeline["points"]]
    assert max(volts) == pytest.approx(2.8) and min(volts) > spec.capacitor.off_v
    times = [t for t, _ in timeline["points"]]
    assert times == sorted(times)
