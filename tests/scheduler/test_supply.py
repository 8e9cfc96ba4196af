"""Harvest traces and recharge times: the CSV reader's errors, and the solver's vectorised
recharge against the evaluator's own walk over the trace."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voltflow.scheduler.intermittent_evaluate import _recharged
from voltflow.scheduler.supply import (
    Harvest,
    HarvestError,
    NetCharging,
    check_harvest,
    load_harvest_trace,
)


def test_a_trace_file_is_read_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("# RF harvester, bench\ntime_s, power_w\n0, 1e-4\n\n0.5,0.002\n1.0,0\n")
    harvest = load_harvest_trace(path)
    assert harvest.times_s.tolist() == [0.0, 0.5, 1.0]
    assert harvest.power_w.tolist() == [1e-4, 0.002, 0.0]
    assert harvest.source == "h.csv" and not harvest.is_constant
    assert "3 rows over 1 s" in harvest.describe()


BAD_TRACES = [
    ("empty", "", r"^{f}: is empty; the first line must be the header 'time_s,power_w'$"),
    ("no-rows", "time_s,power_w\n", r"^{f}: has no rows after the header"),
    ("header", "t,p\n0,1\n", r"^{f}: line 1: the first line must be the header 'time_s,power_w', "
                             r"not 't,p'$"),
    ("three-values", "time_s,power_w\n0,1,2\n", r"^{f}: row 1 \(line 2\): must be two values "
                                                r"time_s,power_w, not 3: '0,1,2'$"),
    ("text", "time_s,power_w\n0,1e-3\n1,lots\n", r"^{f}: row 2 \(line 3\): power_w must be a "
                                                 r"number, not 'lots'$"),
    ("nan", "time_s,power_w\nnan,1\n", r"^{f}: row 1 \(line 2\): time_s must be a finite number, "
                                       r"not 'nan'$"),
    ("unsorted", "time_s,power_w\n0,1\n2,1\n1,1\n",
     r"^{f}: row 3 \(line 4\): time_s 1 must be after row 2's 2 \(times increase strictly\)$"),
    ("repeated", "time_s,power_w\n0,1\n0,1\n", r"^{f}: row 2 \(line 3\): time_s 0 must be after "
                                               r"row 1's 0"),
    ("negative", "time_s,power_w\n0,1\n1,-0.5\n", r"^{f}: row 2 \(line 3\): power_w must be >= 0, "
                                                  r"not -0.5$"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "text", "message"), BAD_TRACES, ids=[b[0] for b in BAD_TRACES])
def test_bad_traces_name_the_file_row_and_value(
    tmp_path: Path, what: str, text: str, message: str
) -> None:
    path = tmp_path / f"{what}.csv"
    path.write_text(text)
    with pytest.raises(HarvestError, match=message.replace("{f}", re.escape(str(path)))):
        load_harvest_trace(path)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(HarvestError, match=r"cannot read the file: No such file"):
        load_harvest_trace(tmp_path / "none.csv")


def test_harvest_below_the_leakage_is_refused() -> None:
    with pytest.raises(HarvestError, match=r"must exceed the capacitor's leakage"):
        check_harvest(Harvest.constant(1e-6), 2e-6)
    trace = Harvest(np.array([0.0, 1.0]), np.array([1e-3, 1e-7]), "t.csv")
    with pytest.raises(
        HarvestError, match=r"^t.csv: row 2: power_w 1e-07 is below the capacitor's"
    ):
        check_harvest(trace, 1e-6)
    with pytest.raises(HarvestError, match=r"never recharges"):
        check_harvest(Harvest(np.array([0.0]), np.array([0.0]), "zero.csv"), 0.0)
    with pytest.raises(HarvestError, match=r"positive number of watts"):
        Harvest.constant(0.0)


def test_constant_recharge_is_energy_over_net_power() -> None:
    charging = NetCharging.of(Harvest.constant(1e-3), 2e-4)
    assert charging.recharge_end(0.5, 8e-6) == pytest.approx(0.5 + 8e-6 / 8e-4)


def test_trace_recharge_by_hand() -> None:
    # 1 W for 1 s, nothing for 1 s, 2 W from then on.
    charging = NetCharging.of(Harvest(np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.0, 2.0]), "t"), 0)
    ends = charging.recharge_end([0.0, 0.5, 0.5, 1.5, 2.5], [0.5, 1.0, 0.5, 1.0, 0.0])
    assert ends.tolist() == pytest.approx([0.5, 2.25, 1.0, 2.5, 2.5])
    stopped = NetCharging.of(Harvest(np.array([0.0, 1.0]), np.array([1.0, 0.0]), "t"), 0)
    assert math.isinf(float(stopped.recharge_end(0.0, 2.0)))


@st.composite
def traces(draw: st.DrawFn) -> tuple[Harvest, float]:
    pieces = draw(st.integers(1, 6))
    gaps = draw(st.lists(st.floats(0.001, 2.0), min_size=pieces - 1, max_size=pieces - 1))
    times = np.cumsum([draw(st.floats(0.0, 3.0)), *gaps])
    leak = draw(st.sampled_from([0.0, 1e-4]))
    power = draw(
        st.lists(st.sampled_from([0.0, 1e-4, 3e-4, 1e-3, 5e-2]), min_size=pieces, max_size=pieces)
    )
    power = [max(p, leak) for p in power]
    return Harvest(times, np.array(power), "trace"), leak


@settings(max_examples=300, deadline=None)
@given(traces(), st.floats(0.0, 8.0), st.floats(0.0, 1e-3))
def test_vectorised_recharge_equals_the_evaluators_walk(case, offset, energy) -> None:
    harvest, leak = case
    if not np.any(harvest.power_w > leak):
        return
    charging = NetCharging.of(harvest, leak)
    start = harvest.start_s + offset
    expected = _recharged(harvest, leak, start, energy)
    got = float(charging.recharge_end(start, energy))
    if math.isinf(expected):
        assert math.isinf(got)
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert got >= start
