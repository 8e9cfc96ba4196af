"""The compiler checks the schedule it is given, and replays the program before trusting it."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
from voltflow.pmu.compiler import CompileError, compile_schedule, verify_timing
from voltflow.pmu.disasm import disassemble, launch_states
from voltflow.pmu.isa import DomainCode, Opcode, encode
from voltflow.pmu.rom import RomError, read_rom, write_hex
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import build_problem
from voltflow.scheduler.schedule import ScheduleFile, schedule_from_json, schedule_to_json
from voltflow.scheduler.solve import Method, solve


@pytest.fixture(scope="module")
def chip():
    return load_chip()


@pytest.fixture(scope="module")
def solved(chip) -> tuple[dict, object]:
    """ds_cnn at 1900 FPS: a real schedule (DP) as its JSON, and its cost table."""
    problem, table = build_problem(load_network("ds_cnn"), chip)
    result = solve(problem, 1 / 1900, 3, Method.DP, nominal_v=chip.nominal_v)
    return schedule_to_json(result, problem), table


def _edited(data: dict, edit) -> ScheduleFile:
    copy = json.loads(json.dumps(data))
    edit(copy)
    return schedule_from_json(copy)


def _first_raised_layer(data: dict) -> int:
    return next(i for i, layer in enumerate(data["layers"]) if max(layer["voltage_v"]) > 0.9)


def test_the_solved_schedule_compiles_and_replays_on_time(solved) -> None:
    data, table = solved
    program = compile_schedule(schedule_from_json(data), table, frames=5000)
    outcome = verify_timing(program, table)
    assert outcome.overruns == 0 and outcome.overclock_count == 0
    assert outcome.frames == 2  # replayed two frames, not 5000


def _set_layer(i: int, **fields):
    return lambda d: d["layers"][i].update(fields)


CASES = [
    # (what, edit of the schedule JSON, network it is compiled for, pinned message)
    (
        "another network",
        lambda d: None,
        "autoencoder",
        r"layers[0].name is 'conv2d' but layer 0 of autoencoder is 'Dense_1': was the schedule "
        r"solved for another network? (pass the right --net)",
    ),
    (
        "state index out of range",
        _set_layer(0, state=99999),
        "ds_cnn",
        "layers[0] (conv2d).state is 99999, but its voltages",
    ),
    ("negative state", _set_layer(0, state=-1), "ds_cnn", "layers[0] (conv2d).state is -1,"),
    (
        "voltage off the grid",
        _set_layer(2, voltage_v=[1.07, 0.9, 0.9]),
        "ds_cnn",
        "layers[2] (conv2d_1).voltage_v: state [1.07, 0.9, 0.9] is not on the voltage grid",
    ),
    ("more rails than the chip", lambda d: d.update(rails=9), "ds_cnn", "rails is 9, but chip"),
    (
        "period far too short",
        lambda d: d.update(period_s=1e-6),
        "ds_cnn",
        "the layers take ",
    ),
    (
        "period below one cycle",
        lambda d: d.update(period_s=1e-300),
        "ds_cnn",
        "period_s 1e-300 s is",
    ),
    ("period beyond the timer", lambda d: d.update(period_s=1e300), "ds_cnn", "period_s 1e+300 s"),
]


@pytest.mark.parametrize(("what", "edit", "net", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_schedule_that_does_not_belong_is_refused(solved, chip, what, edit, net, message) -> None:
    data, table = solved
    if net != "ds_cnn":
        _, table = build_problem(load_network(net), chip)
    with pytest.raises(CompileError, match="^" + re.escape(message)):
        compile_schedule(_edited(data, edit), table)


def test_a_lowered_voltage_with_the_old_time_is_refused(solved) -> None:
    data, table = solved
    i = _first_raised_layer(data)
    layer = data["layers"][i]
    low = [0.9] * len(layer["voltage_v"])
    state = table.state_index(low)
    edit = _set_layer(i, voltage_v=low, state=state)
    with pytest.raises(CompileError, match=rf"^layers\[{i}\] \({layer['name']}\)\.time_s is .* "
                       r"but the cost model gives .* at 0\.9, 0\.9, 0\.9 V"):  # fmt: skip
        compile_schedule(_edited(data, edit), table)


def test_a_frame_that_leaves_no_room_for_the_pmu_is_refused_naming_the_layer(solved) -> None:
    data, table = solved
    busy = sum(layer["time_s"] for layer in data["layers"])
    program = compile_schedule(_edited(data, lambda d: d.update(period_s=busy * 1.0000001)), table)
    last = data["layers"][-1]["name"]
    with pytest.raises(
        CompileError,
        match=rf"^frame 0 overruns its period of [\d,]+ reference cycles: layer {last}",
    ):
        verify_timing(program, table)


def test_a_program_the_pmu_would_stop_is_refused(solved) -> None:
    data, table = solved
    program = compile_schedule(schedule_from_json(data), table)
    broken = dataclasses.replace(
        program, words=(encode(Opcode.SET_RAIL, rail=7, level=0), *program.words[1:])
    )
    with pytest.raises(CompileError, match=r"^the PMU would stop with \w+ at command 0000"):
        verify_timing(broken, table)


def test_disasm_shows_every_word_and_reports_hostile_launches(chip, tmp_path: Path) -> None:
    words = [
        encode(Opcode.SET_RAIL, rail=0, level=12),  # beyond the 9 levels
        (1 << 64) - 1,  # illegal
        encode(Opcode.CONNECT, domain=DomainCode.SYS, rail=0),
        encode(Opcode.CONNECT, domain=DomainCode.RRAM, rail=5),  # never programmed
        encode(Opcode.LAUNCH, first=0, count=1, lead=0),  # feeder never connected, no clocks
        encode(Opcode.HALT, code=0),
    ]
    text = disassemble(words)
    assert len(text.splitlines()) == len(words)
    assert text.splitlines()[1].startswith("0001  ffffffffffffffff  <illegal: ")
    (state,) = launch_states(words, chip)
    assert state.voltage_v == (None, None, None)
    assert "sys: rail 0 set to level 12 at 0000, beyond the chip's 9 levels" in state.problems
    assert "rram is connected to rail 5, never programmed" in state.problems
    assert "feeder is connected to no rail" in state.problems
    rom = tmp_path / "rom.hex"
    write_hex(rom, words)
    assert read_rom(rom) == words


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00garbage\n", "is not UTF-8 text"),
        ("0" * 16 + "\n" * 1, None),
        (("0" * 16 + "\n") * 4097, "4097 words; the PMU's command memory holds 4096"),
    ],
)
def test_read_rom_bounds(tmp_path: Path, content, message) -> None:
    rom = tmp_path / "rom.hex"
    rom.write_bytes(content if isinstance(content, bytes) else content.encode())
    if message is None:
        assert read_rom(rom) == [0]
    else:
        with pytest.raises(RomError, match=re.escape(message)):
            read_rom(rom)
    with pytest.raises(RomError, match="is a folder, not a ROM file"):
        read_rom(tmp_path)
