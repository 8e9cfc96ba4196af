"""Fuzzed user files: every network YAML, chip YAML, schedule JSON and ROM either loads or raises
its loader's one error type (a ValueError with a message), never anything else.
"""

import contextlib
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltflow.cosim.upf import UpfRequest, generate_upf
from voltflow.pmu.compiler import CompileError, compile_schedule
from voltflow.pmu.disasm import disassemble, launch_states
from voltflow.pmu.rom import RomError, read_rom
from voltflow.scheduler.chip import ChipError, load_chip
from voltflow.scheduler.network import NetworkError, load_network
from voltflow.scheduler.problem import build_problem
from voltflow.scheduler.schedule import ScheduleError, load_schedule

from voltflow.cli import main

ZOO = Path(__file__).parents[1] / "scheduler"
NETWORK = yaml.safe_load((ZOO / "networks" / "ds_cnn.yaml").read_text())
CHIP = yaml.safe_load((ZOO / "hardware" / "powerflow_ref.yaml").read_text())
FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``doc`` (dict keys and list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutated(doc: object, data: st.DataObject) -> object:
    """``doc`` with one value (chosen anywhere in it) replaced by a random one, or deleted."""
    copy = json.loads(json.dumps(doc))
    path = data.draw(st.sampled_from(_paths(copy)[1:]))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) or not isinstance(parent, dict):
        parent[path[-1]] = data.draw(values)
    else:
        del parent[path[-1]]
    return copy


@FAST
@given(data=st.data())
def test_fuzzed_network_files_load_or_raise_network_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("n") / "net.yaml"
    path.write_text(yaml.safe_dump(_mutated(NETWORK, data)))
    try:
        load_network(path)
    except NetworkError as exc:
        assert str(exc).startswith(str(path)) and len(str(exc)) < 2000


@FAST
@given(data=st.data())
def test_fuzzed_chip_files_load_or_raise_chip_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("c") / "chip.yaml"
    path.write_text(yaml.safe_dump(_mutated(CHIP, data)))
    try:
        load_chip(path)
    except ChipError as exc:
        assert str(exc).startswith("chip.yaml") and len(str(exc)) < 2000


@FAST
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_a_network_or_chip_file(tmp_path_factory, text) -> None:
    folder = tmp_path_factory.mktemp("t")
    for name, loader, error in (
        ("n.yaml", load_network, NetworkError),
        ("c.yaml", load_chip, ChipError),
    ):
        (folder / name).write_text(text)
        with contextlib.suppress(error):
            loader(folder / name)


_CHIP = load_chip()
_, _TABLE = build_problem(load_network("ds_cnn"), _CHIP)


@pytest.fixture(scope="module")
def good_schedule(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real schedule file's JSON (ds_cnn at 1000 FPS), to mutate."""
    path = tmp_path_factory.mktemp("good") / "s.json"
    assert (
        main(["schedule", "--net", "ds_cnn", "--fps", "1000", "--no-baselines", "-o", str(path)])
        == 0
    )
    return json.loads(path.read_text())


@FAST
@given(data=st.data())
def test_fuzzed_schedules_load_and_compile_or_raise_their_error(
    tmp_path_factory, good_schedule, data
) -> None:
    path = tmp_path_factory.mktemp("s") / "edited.json"
    path.write_text(json.dumps(_mutated(good_schedule, data)))
    with contextlib.suppress(ScheduleError, CompileError):
        compile_schedule(load_schedule(path), _TABLE)


@settings(FAST, max_examples=40)
@given(data=st.data(), in_provenance=st.booleans())
def test_fuzzed_schedules_give_a_upf_or_a_one_line_error(
    tmp_path_factory, good_schedule, data, in_provenance
) -> None:
    """`voltflow upf --schedule`: a mutated schedule (half the time in its provenance, which
    leads back to the network and chip) gives a UPF or a ValueError naming the file."""
    doc = json.loads(json.dumps(good_schedule))
    if in_provenance:
        doc["provenance"] = _mutated(doc["provenance"], data)
    else:
        doc = _mutated(doc, data)
    path = tmp_path_factory.mktemp("u") / "edited.json"
    path.write_text(json.dumps(doc))
    try:
        generate_upf(UpfRequest(schedule=path, check=False))
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000


@FAST
@given(words=st.lists(st.integers(0, 2**64 - 1), max_size=64), binary=st.booleans())
def test_any_rom_words_disassemble_without_crashing(tmp_path_factory, words, binary) -> None:
    path = tmp_path_factory.mktemp("r") / ("rom.bin" if binary else "rom.hex")
    if binary:
        path.write_bytes(b"".join(w.to_bytes(8, "little") for w in words))
    else:
        path.write_text("".join(f"{w:016x}\n" for w in words))
    assert read_rom(path) == words
    assert len(disassemble(words).splitlines()) == len(words)
    launch_states(words, _CHIP)


@FAST
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_as_a_rom(tmp_path_factory, raw) -> None:
    folder = tmp_path_factory.mktemp("b")
    for name in ("rom.hex", "rom.bin"):
        (folder / name).write_bytes(raw)
        try:
            words = read_rom(folder / name)
        except RomError:
            continue
        disassemble(words)
        launch_states(words, _CHIP)
