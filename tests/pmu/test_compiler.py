"""Compiling schedules into PMU programs: states survive the round trip, ordering rules hold."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltflow.cosim.e2e import default_rate
from voltflow.pmu.compiler import CompileError, compile_schedule, verify_timing
from voltflow.pmu.config import ns_to_cycles
from voltflow.pmu.disasm import disassemble, launch_states
from voltflow.pmu.isa import DomainCode, Opcode, decode
from voltflow.pmu.planning import lookahead_program, plan_schedule
from voltflow.pmu.rom import RomError, read_rom, write_bin, write_hex
from voltflow.scheduler.chip import DOMAINS, BankKind, load_chip
from voltflow.scheduler.evaluate import SlackMode
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import build_problem
from voltflow.scheduler.schedule import ScheduledLayer, ScheduleFile
from voltflow.scheduler.solve import Method, Status

TINY = Path(__file__).parents[1] / "scheduler" / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def table():
    _, table = build_problem(load_network(TINY), load_chip())
    return table


def _schedule(table, states: list[int], mode: SlackMode) -> ScheduleFile:
    volts = [tuple(float(v) for v in table.voltages_v[s]) for s in states]
    layers = tuple(
        ScheduledLayer(layer.name, s, v, float(layer.time_s[s]), float(layer.energy_j[s]), 0)
        for layer, s, v in zip(table.layers, states, volts, strict=True)
    )
    return ScheduleFile(
        instance="tiny", domains=tuple(d.value for d in DOMAINS), period_s=1e-3, rails=3,
        method=Method.DP, status=Status.PROVEN_OPTIMAL, lower_bound_j=None, gap=None,
        rails_used_v=tuple(sorted({v for vs in volts for v in vs})), layers=layers, energy_j=0.0,
        layer_energy_j=0.0, transition_energy_j=0.0, slack_energy_j=0.0, latency_s=0.0,
        idle_s=0.0, switches=0, slack_mode=mode, wrap_switches=0, sleep_entry_switches=0,
    )  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), mode=st.sampled_from(list(SlackMode)), lookahead=st.booleans())
def test_disassembly_gives_back_every_layers_state_and_ordering_is_safe(
    table, data, mode, lookahead
) -> None:
    # At most 3 distinct voltages: the schedule's rails.
    rails = data.draw(
        st.lists(st.sampled_from(table.levels_v), min_size=1, max_size=3, unique=True)
    )
    allowed = [
        s
        for s in range(table.n_states)
        if all(any(abs(v - r) < 1e-9 for r in rails) for v in table.voltages_v[s])
    ]
    states = data.draw(
        st.lists(st.sampled_from(allowed), min_size=len(table.layers), max_size=len(table.layers))
    )
    schedule = _schedule(table, states, mode)
    program = compile_schedule(schedule, table, frames=2, lookahead=lookahead)
    launched = launch_states(list(program.words), table.chip)
    assert [ls.voltage_v for ls in launched] == [layer.voltage_v for layer in schedule.layers]
    for ls, layer in zip(launched, schedule.layers, strict=True):
        for d, inc, v in zip(DOMAINS, ls.increment, layer.voltage_v, strict=True):
            assert inc == int(table.chip.divider_increment(d, v))
    # Safety: replay the program; a domain's frequency never exceeds f(V) of its supply.
    rail_v: dict[int, float] = {}
    supply: dict[int, float] = {}
    freq: dict[int, int] = {}
    for word in program.words:
        instr = decode(word)
        if instr.opcode is Opcode.SET_RAIL:
            rail_v[instr["rail"]] = table.chip.levels_v[instr["level"]]
        elif instr.opcode is Opcode.CONNECT:
            supply[instr["domain"]] = rail_v[instr["rail"]]
        elif instr.opcode is Opcode.SET_FREQ:
            freq[instr["domain"]] = instr["increment"]
        for code, inc in freq.items():
            d = DOMAINS[
                [c.value for c in (DomainCode.SYS, DomainCode.RRAM, DomainCode.FEEDER)].index(code)
            ]
            assert inc <= int(table.chip.divider_increment(d, supply[code]))
        if instr.opcode is Opcode.LOOP:
            break
    # Every bank a layer needs is on when it is launched, and stays on while it runs.
    on = np.zeros(table.memory.total, dtype=bool)
    launch = 0
    running = None  # the layer a look-ahead LAUNCH left running
    for word in program.words:
        instr = decode(word)
        if instr.opcode in (Opcode.GATE, Opcode.WAKE):
            for i in range(32):
                if instr["mask"] >> i & 1:
                    on[32 * instr["group"] + i] = instr.opcode is Opcode.WAKE
            if running is not None:
                assert np.all(on[table.layers[running].banks_needed]), running
        elif instr.opcode is Opcode.LAUNCH:
            assert np.all(on[table.layers[launch].banks_needed]), launch
            assert running is None and (lookahead or instr["lead"] == 0)
            running = launch if instr["lead"] else None
            launch += 1
        elif instr.opcode is Opcode.SYNC:
            assert running is not None
            running = None
        elif instr.opcode is Opcode.LOOP:
            break
    assert launch == len(table.layers)


def test_rom_files_round_trip(tmp_path, table) -> None:
    program = compile_schedule(_schedule(table, [0] * len(table.layers), SlackMode.SLEEP), table)
    write_hex(tmp_path / "rom.hex", program.words)
    write_bin(tmp_path / "rom.bin", program.words)
    assert read_rom(tmp_path / "rom.hex") == list(program.words)
    assert read_rom(tmp_path / "rom.bin") == list(program.words)
    text = disassemble(read_rom(tmp_path / "rom.hex"))
    assert "SLEEP" in text and "HALT code=0" in text
    assert "frame:" in program.listing()
    (tmp_path / "bad.hex").write_text("0000000000000000\nzz\n")
    with pytest.raises(RomError, match=r"^bad\.hex:2: must be a 16-digit hex word, not 'zz'$"):
        read_rom(tmp_path / "bad.hex")


def test_schedule_for_another_network_is_rejected(table) -> None:
    schedule = _schedule(table, [0] * len(table.layers), SlackMode.SLEEP)
    _, other = build_problem(load_network("ds_cnn"), load_chip())
    with pytest.raises(
        CompileError, match=r"^the schedule has 6 layers but ds_cnn has 10 schedule layers"
    ):
        compile_schedule(schedule, other)


def _switched_banks(words: list[int], opcode: Opcode) -> list[set[int]]:
    """Global bank indices of each run of consecutive ``opcode`` commands."""
    runs: list[set[int]] = []
    previous = None
    for word in words:
        command = decode(word)
        if command.opcode is opcode:
            if previous is not opcode:
                runs.append(set())
            group, mask = command["group"], command["mask"]
            runs[-1] |= {group * 32 + i for i in range(32) if mask >> i & 1}
        previous = command.opcode
    return runs


@pytest.mark.parametrize("mode", [SlackMode.SLEEP, SlackMode.STAY_ON])
def test_hardware_with_more_banks_of_a_kind_gets_masks_placed_kind_by_kind(table, mode) -> None:
    """A simulation build with more banks of a kind than the layout (auto counts come in size
    classes) must see every mask in its own bank order, and gate the extra banks (MobileNetV2
    with 16 ofmap banks on a 6-ofmap build lost data and counted access violations)."""
    layout = dict(table.memory.counts)
    extra = {kind: 3 + 2 * k for k, kind in enumerate(layout)}  # more banks of every kind
    hardware = {kind: layout[kind] + extra[kind] for kind in layout}
    states = [0] * len(table.layers)
    schedule = _schedule(table, states, mode)
    plain = compile_schedule(schedule, table)
    wide = compile_schedule(schedule, table, hardware_counts=hardware)

    def to_hardware(bank: int) -> int:
        first_layout = first_hw = 0
        for kind, n in table.memory.counts:
            if bank < first_layout + n:
                return bank - first_layout + first_hw
            first_layout += n
            first_hw += hardware[kind]
        raise AssertionError(bank)

    extra_banks = set()
    first_hw = 0
    for kind, n in table.memory.counts:
        extra_banks |= set(range(first_hw + n, first_hw + hardware[kind]))
        first_hw += hardware[kind]
    for opcode in (Opcode.GATE, Opcode.WAKE):
        mapped = [{to_hardware(b) for b in run} for run in _switched_banks(plain.words, opcode)]
        got = _switched_banks(wide.words, opcode)
        if opcode is Opcode.GATE:
            assert got[0] == mapped[0] | extra_banks  # the prologue gates the extra banks
            got, mapped = got[1:], mapped[1:]
        assert got == mapped
    with pytest.raises(CompileError, match="banks"):
        compile_schedule(schedule, table, hardware_counts={k: n - 1 for k, n in layout.items()})


def test_lookahead_sections_end_as_the_ops_end_and_hide_their_latency() -> None:
    """ds_cnn on the reference chip at 80 % of its top rate (supplies rise and banks wake inside
    the frame), replayed on pmu.timing: every look-ahead section's SYNC executes in the cycle
    its layer's ops are done, the ops take the same cycles, each prepared layer boundary (done
    to the next LAUNCH) is shorter, by ``hidden`` in all; no domain is overclocked and every
    woken bank has had its wake-up latency at the LAUNCH that needs it."""
    chip = load_chip()
    problem, table = build_problem(load_network("ds_cnn"), chip)
    plan = plan_schedule(table, problem, default_rate(table, 0.8), 3, Method.DP, frames=1)
    program, hidden = lookahead_program(plan, table, 1)
    outcome = verify_timing(program, table)
    assert outcome.overclock_count == 0
    at = dict(outcome.command_cycles)
    ops = [decode(w) for w in program.words]
    wake_cycles = ns_to_cycles(chip.bank(BankKind.IFMAP).wake_latency_ns, chip.reference_mhz)
    last_wake, prepared = None, []
    launches = iter(outcome.launches)
    for pc, instr in enumerate(ops):
        if instr.opcode is Opcode.WAKE:
            last_wake = at[pc]
        if instr.opcode is not Opcode.LAUNCH:
            continue
        if last_wake is not None:
            assert at[pc] >= last_wake + 2 + wake_cycles
            last_wake = None
        launch = next(launches)
        prepared.append(instr["lead"] > 0)
        if instr["lead"]:
            sync = next(a for a in range(pc, len(ops)) if ops[a].opcode is Opcode.SYNC)
            assert at[sync] == launch.done_cycle
    plain, ahead = plan.predicted_run.launches, outcome.launches
    assert [x.cycles for x in plain] == [x.cycles for x in ahead]
    saved = [
        (plain[k + 1].exec_cycle - plain[k].done_cycle)
        - (ahead[k + 1].exec_cycle - ahead[k].done_cycle)
        for k in range(len(ahead) - 1)
    ]
    assert all((s > 0) == p for s, p in zip(saved, prepared, strict=False))
    assert sum(saved) == hidden > 0
    assert any("up to" in c and "look-ahead" in c for c in program.comments)
