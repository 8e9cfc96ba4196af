"""`voltflow upf`'s power intent: every number from the chip file, every name in the generated
Verilog (and a renamed or missing one is caught), the file in the subset's grammar, and the power
states of a schedule exactly those its PMU program passes through."""

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.power_intent import OFF, build_power_intent, state_name
from voltflow.cosim.sim_top import CORE_NAME, chip_configs, core_verilog, sim_bank_counts
from voltflow.cosim.upf import UpfRequest, generate_upf
from voltflow.cosim.upf_check import UpfNameError, check_upf_names
from voltflow.cosim.upf_syntax import parse_upf
from voltflow.cosim.verilog import component_to_verilog
from voltflow.cosim.verilog_hierarchy import VerilogDesign, read_verilog
from voltflow.hw.widths import GROUP_BANKS
from voltflow.pmu.config import PmuConfig
from voltflow.rtl import chip_top
from voltflow.rtl.chip_top import ChipTop, power_wiring
from voltflow.scheduler.chip import BANK_DOMAIN, DOMAINS, BankKind, Domain, load_chip
from voltflow.scheduler.evaluate import SlackMode
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, build_problem
from voltflow.scheduler.schedule import load_schedule

from voltflow.cli import main

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    """chip_small's UPF and the parsed Verilog of its default build."""
    chip = load_chip(SMALL_CHIP)
    accel, pmu = chip_configs(chip)
    report = generate_upf(UpfRequest(chip=SMALL_CHIP))
    verilog = core_verilog(accel, pmu)
    return chip, accel, pmu, report, verilog, read_verilog(verilog)


def _without(design: VerilogDesign, scope: str, name: str) -> VerilogDesign:
    """``design`` with the port (or instance) ``name`` of the module at ``scope`` removed."""
    module = design.scope(scope)
    assert module is not None
    changed = dataclasses.replace(
        module,
        ports={k: v for k, v in module.ports.items() if k != name},
        nets={k: v for k, v in module.nets.items() if k != name},
        instances={k: v for k, v in module.instances.items() if k != name},
    )
    return dataclasses.replace(design, modules={**design.modules, module.name: changed})


# ---- numbers from the chip file ----------------------------------------------------------------
def test_rails_levels_and_the_always_on_supply_come_from_the_chip(small) -> None:
    chip, _, _, report, _, _ = small
    ports = {p.name: p for p in report.intent.ports}
    rails = sorted(name for name in ports if name.startswith("VDD_RAIL"))
    assert rails == [f"VDD_RAIL{r}" for r in range(chip.rails)]
    for rail in rails:
        assert [v for _, v in ports[rail].states] == [*chip.levels_v, None]
    assert ports["VDD_AON"].states == ((state_name(chip.always_on_v), chip.always_on_v),)
    switches = {s.name: s for s in report.intent.switches}
    for d in DOMAINS:
        switch = switches[f"SW_{d.value.upper()}"]
        assert [net for _, net in switch.inputs] == rails
        assert switch.controls == tuple(
            (f"sel{r}", f"supply__{d.value}__select[{r}]") for r in range(chip.rails)
        )
    assert "rails: 3" in SMALL_CHIP.read_text() and chip.rails == 3


def test_one_switch_per_bank_in_its_group_and_supply(small) -> None:
    _, _, pmu, report, _, _ = small
    intent = report.intent
    bank_switches = [s for s in intent.switches if s.bank is not None]
    assert [s.bank for s in bank_switches] == list(range(pmu.n_banks))
    for s in bank_switches:
        assert s.bank is not None
        domain = BANK_DOMAIN[pmu.banks[s.bank].kind]
        assert s.inputs == (("vin", f"VDD_{domain.value.upper()}"),)
        assert s.controls == (("en", f"banks__on[{s.bank}]"),)
        assert s.domain == f"PD_BANKS_G{s.bank // GROUP_BANKS}_{domain.value.upper()}"
    groups = [d for d in intent.domains if d.banks]
    assert sorted(b for d in groups for b in d.banks) == list(range(pmu.n_banks))
    for d in groups:
        assert d.elements == ()
        assert len({b // GROUP_BANKS for b in d.banks}) == 1
        assert len({BANK_DOMAIN[pmu.banks[b].kind] for b in d.banks}) == 1
    counts = dict(intent.bank_counts)
    assert counts == {BankKind.IFMAP: 2, BankKind.OFMAP: 1, BankKind.RRAM: 256}


@pytest.mark.parametrize(
    ("rails", "rows", "dvfs_shifters"),
    # L = 9 levels: every combination of off or a level per domain, at most `rails` distinct.
    [(3, 10**3, True), (2, 10**3 - 9 * 8 * 7, True), (1, 1 + 9 * (2**3 - 1), False)],
)
def test_the_power_states_and_level_shifters_follow_the_rails(
    small, rails: int, rows: int, dvfs_shifters: bool
) -> None:
    chip, accel, pmu, _, _, _ = small
    chip = dataclasses.replace(chip, rails=rails)
    pmu = dataclasses.replace(pmu, rails=rails)
    intent = build_power_intent(chip, pmu, power_wiring(accel, pmu), top=CORE_NAME)
    assert len(intent.pst.rows) == rows
    assert len({row.states for row in intent.pst.rows}) == rows
    for row in intent.pst.rows:
        assert row.states[0] == state_name(chip.always_on_v)
        assert len({s for s in row.states[1:] if s != OFF}) <= rails
    names = {ls.name for ls in intent.level_shifters}
    assert {"ls_sys_from_aon", "ls_aon_from_feeder", "ls_aon_to_feeder_banks"} <= names
    assert ("ls_sys_from_feeder" in names) is dvfs_shifters
    assert len(names) == (14 if dvfs_shifters else 8)


def test_a_chip_whose_domains_cannot_differ_from_always_on_needs_no_level_shifter(small) -> None:
    chip, accel, pmu, _, _, _ = small
    chip = dataclasses.replace(chip, rails=1, levels_v=(chip.always_on_v,))
    pmu = dataclasses.replace(pmu, rails=1, levels_v=chip.levels_v)
    intent = build_power_intent(chip, pmu, power_wiring(accel, pmu), top=CORE_NAME)
    assert intent.level_shifters == ()
    assert [row.states for row in intent.pst.rows][-1] == ("V1P10",) * 4
    # A 1-bit select has no bit-select (a scalar port).
    assert intent.switches[0].controls == (("sel0", "supply__sys__select"),)


# ---- the file: grammar and names ---------------------------------------------------------------
def test_the_file_parses_and_names_every_block_port_and_signal_of_the_rtl(small) -> None:
    _, accel, pmu, report, _, design = small
    commands = parse_upf(report.text)
    names = check_upf_names(commands, design)
    assert names == report.names
    wiring = power_wiring(accel, pmu)
    assert names.instances == {".", *(path for path, _ in wiring.blocks)}
    assert {path.split("/")[1] for path, _ in wiring.blocks} == {
        "array", "dma", "gather", "writer", "vector", "bload", "softmax", "sys_buffers",
        "rram_buffers", "feeder_buffers",
    }  # fmt: skip
    assert names.ports == {name for name, _, _ in wiring.bank_ports}
    assert {f"banks__on[{b}]" for b in range(pmu.n_banks)} <= names.signals
    assert {iso.enable for iso in wiring.isolation} == {
        "pmu/access__spad_rd_ok", "pmu/access__spad_wr_ok", "pmu/access__rram_rd_ok",
    }  # fmt: skip
    assert {iso.enable for iso in wiring.isolation} <= names.signals
    for d in Domain:
        assert f"supply__{d.value}__on" in names.signals
        assert {f"supply__{d.value}__select[{r}]" for r in range(pmu.rails)} <= names.signals
    # The RTL isolation: clamp 0 at the three memory-port signals, enabled by the PMU's grants.
    iso = {i.name: i for i in report.intent.isolation}
    assert iso["iso_spad_read__data"].applies_to == "inputs"
    assert iso["iso_spad_write__en"].applies_to == "outputs"
    assert all(i.clamp == 0 and i.sense == "low" for i in iso.values())


def test_every_design_name_is_checked(small) -> None:
    """Mutation: each instance, port and signal the UPF uses, taken out of the Verilog, makes
    the check fail naming it."""
    _, _, _, report, _, design = small
    commands = parse_upf(report.text)
    assert report.names is not None
    removals = [
        (path.rpartition("/")[0], path.rpartition("/")[2])
        for path in report.names.instances
        if path != "."
    ]
    removals += [("", port) for port in report.names.ports]
    bases = {re.sub(r"\[\d+\]$", "", s) for s in report.names.signals}
    removals += [(s.rpartition("/")[0], s.rpartition("/")[2]) for s in bases]
    assert len(removals) == 10 + 8 + 10  # blocks, memory ports, signal buses
    for scope, name in removals:
        with pytest.raises(UpfNameError, match=re.escape(name)):
            check_upf_names(commands, _without(design, scope, name))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{en banks__on[5]}", "{en banks__pwr[5]}", r"'banks__pwr\[5\]': no port or net"),
        ("{en banks__on[5]}", "{en banks__on[259]}", r"bit 259 beyond the 259 bits of"),
        ("{en banks__on[5]}", "{en banks__on}", r"'banks__on' is 259 bits wide; select one bit"),
        ("supply__sys__select[0]", "supply__sys__selekt[0]", r"no port or net 'supply__sys__sel"),
        ("pmu/access__spad_rd_ok", "pmu/access__spad_read_ok", r"no port or net 'access__spad_re"),
        ("pmu/access__spad_rd_ok", "pmu2/access__spad_rd_ok", r"no instance 'pmu2'"),
        ("core/sys_buffers", "core/sys_memories", r"no instance 'core/sys_memories'"),
        ("-elements {spad_read__data}", "-elements {spad_read__dat}", r"no port 'spad_read__dat'"),
        ("-elements {spad_read__data} -applies_to inputs",
         "-elements {spad_write__en} -applies_to inputs",
         r"'spad_write__en' is an output, but -applies_to is inputs"),
        ("-supply {primary SS_SYS}", "-supply {primary SS_SYSX}", r"supply set 'SS_SYSX' is not "
                                                                  r"declared before this line"),
        ("-input_supply_port {vin VDD_FEEDER}", "-input_supply_port {vin VDD_FEEDR}",
         r"supply net 'VDD_FEEDR' is not declared"),
        ("-on_state {ON vin {en}}", "-on_state {ON vin {enable}}", r"uses 'enable', not a control"),
        ("-pst chip_states -state {V1P10 OFF OFF OFF}", "-pst chip_states -state {V1P10 OFF OFF}",
         r"3 states for 4 supplies"),
        ("-pst chip_states -state {V1P10 OFF OFF OFF}",
         "-pst chip_states -state {V1P10 OFF OFF ON}", r"VDD_FEEDER has no state 'ON'"),
    ],
)  # fmt: skip
def test_a_wrong_name_in_the_upf_fails_the_check(small, old: str, new: str, message: str) -> None:
    _, _, _, report, _, design = small
    assert old in report.text
    commands = parse_upf(report.text.replace(old, new, 1))
    with pytest.raises(UpfNameError, match=message):
        check_upf_names(commands, design)


def test_a_signal_renamed_in_the_verilog_fails_the_check(small) -> None:
    _, _, _, report, verilog, _ = small
    commands = parse_upf(report.text)
    renamed = read_verilog(verilog.replace("banks__on", "banks__power"))
    with pytest.raises(UpfNameError) as info:
        check_upf_names(commands, renamed)
    assert len(info.value.problems) == 259  # every bank switch's control
    assert re.search(r"^line \d+: create_power_switch: 'banks__on\[0\]': no port or net "
                     r"'banks__on' in module accel_core$", info.value.problems[0])  # fmt: skip


def test_an_instance_renamed_in_the_rtl_fails_the_check(small, monkeypatch) -> None:
    """Mutation of the Amaranth design itself: the PMU instance renamed, the Verilog
    regenerated; the UPF written for the real chip no longer resolves."""
    _, accel, pmu, report, _, _ = small
    monkeypatch.setattr(chip_top, "PMU", "power_unit")
    design = read_verilog(component_to_verilog(ChipTop(accel, pmu), name=CORE_NAME))
    assert "power_unit" in design.modules[CORE_NAME].instances
    with pytest.raises(UpfNameError, match=r"'pmu/access__spad_rd_ok': no instance 'pmu'"):
        check_upf_names(parse_upf(report.text), design)


# ---- the reference chip ------------------------------------------------------------------------
def test_the_reference_chip(tmp_path: Path) -> None:
    report = generate_upf(UpfRequest(chip="powerflow_ref"))
    chip = load_chip("powerflow_ref")
    counts = dict(report.intent.bank_counts)
    assert counts == {BankKind.IFMAP: 25, BankKind.OFMAP: 6, BankKind.RRAM: 256}
    groups = [d.name for d in report.intent.domains if d.banks]
    assert groups[:2] == ["PD_BANKS_G0_FEEDER", "PD_BANKS_G0_RRAM"]  # banks 0..30 and 31
    assert len(groups) == 10
    assert len(report.intent.pst.rows) == (len(chip.levels_v) + 1) ** 3
    assert report.names is not None and len(report.names.signals) == 287 + 3 * 3 + 3 + 3


# ---- the power states of a schedule ------------------------------------------------------------
@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("upf") / "ds_cnn.json"
    argv = ["schedule", "--net", "ds_cnn", "--hw", str(SMALL_CHIP), "--fps", "1000"]
    assert main([*argv, "--no-baselines", "-o", str(path)]) == 0
    return path, generate_upf(UpfRequest(schedule=path))


def test_a_schedule_restricts_the_table_to_the_states_its_program_passes_through(
    scheduled,
) -> None:
    path, report = scheduled
    schedule = load_schedule(path)
    chip = load_chip(SMALL_CHIP)
    _, table = build_problem(load_network("ds_cnn"), chip, ProblemOptions())
    counts = sim_bank_counts(chip, table.memory)
    pmu = PmuConfig.from_chip(chip, counts)
    pst = report.intent.pst
    assert pst.supplies == (
        "VDD_AON", "VDD_RAIL0", "VDD_RAIL1", "VDD_RAIL2", "VDD_SYS", "VDD_RRAM", "VDD_FEEDER",
        *(f"VDD_BANK{b}" for b in range(pmu.n_banks)),
    )  # fmt: skip
    rows = [row.states for row in pst.rows]
    assert len(set(rows)) == len(rows)
    assert pst.rows[0].where == ("reset",) and set(rows[0][1:]) == {OFF}
    kind_of = [b.kind for b in pmu.banks]
    for row in rows:
        rails, domains, banks = row[1:4], row[4:7], row[7:]
        assert {s for s in domains if s != OFF} <= set(rails)
        for b, state in enumerate(banks):  # a bank is off or at its domain's voltage
            assert state in (OFF, domains[DOMAINS.index(BANK_DOMAIN[kind_of[b]])])
    # Every layer runs in a state with its voltages and at least the banks it needs (the
    # layout's banks placed kind by kind into the build's banks).
    kinds = list(BankKind)  # the build's banks: ifmap, ofmap, then RRAM
    first = {kind: sum(counts[k] for k in kinds[: kinds.index(kind)]) for kind in kinds}
    for layer, cost in zip(schedule.layers, table.layers, strict=True):
        needed = []
        start = 0
        for kind, n in table.memory.counts:
            needed += [first[kind] + i for i in np.flatnonzero(cost.banks_on[start : start + n])]
            start += n
        volts = tuple(state_name(v) for v in layer.voltage_v)
        assert any(row[4:7] == volts and all(row[7 + b] != OFF for b in needed) for row in rows), (
            layer.name
        )
    if schedule.slack_mode is SlackMode.SLEEP:
        assert any("power down until the period ends" in row.where for row in pst.rows)
    assert report.names is not None


def test_the_schedule_file_parses_and_its_names_resolve(scheduled) -> None:
    _, report = scheduled
    commands = parse_upf(report.text)
    assert sum(c.name == "add_pst_state" for c in commands) == len(report.intent.pst.rows)
    assert report.text.count("# S0 (banks on: none): reset\n") == 1


def test_every_combination_the_rails_allow_is_listed_once(small) -> None:
    chip, _, _, report, _, _ = small
    levels = [state_name(v) for v in chip.levels_v]
    expected = {
        ("V1P10", *combo)
        for combo in itertools.product([OFF, *levels], repeat=3)
        if len(set(combo) - {OFF}) <= chip.rails
    }
    assert {row.states for row in report.intent.pst.rows} == expected


# ---- docs/upf.md shows what the generator writes -----------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "upf.md"


def test_the_documented_upf_and_listing_are_what_voltflow_writes(tmp_path: Path) -> None:
    reference = generate_upf(UpfRequest(chip="powerflow_ref", check=False))
    schedule = tmp_path / "ds_cnn.json"
    argv = ["schedule", "--net", "ds_cnn", "--fps", "2000", "--no-baselines", "-o", str(schedule)]
    assert main(argv) == 0
    listing = tmp_path / "rom.lst"
    assert (
        main(["compile", str(schedule), "-o", str(tmp_path / "rom.hex"), "--listing", str(listing)])
        == 0
    )
    scheduled = generate_upf(UpfRequest(schedule=schedule, check=False))
    sources = {
        "upf": set(reference.text.splitlines()) | set(scheduled.text.splitlines()),
        "listing": set(listing.read_text().splitlines()),
    }
    doc = DOC.read_text()
    blocks = re.findall(r"```(upf|listing)\n(.*?)```", doc, re.DOTALL)
    assert len(blocks) == 4
    for kind, body in blocks:
        for line in body.splitlines():
            if line.strip() not in ("", "..."):
                assert line in sources[kind], line
    assert f"{reference.text.count(chr(10)):,} lines, 287 bank switches, 1,000 power states" in doc
    assert len(scheduled.intent.pst.rows) == 27 and "| S25, S26 |" in doc
