"""The reference chip file and the chip loader's validation."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from voltflow.scheduler.chip import (
    DOMAINS,
    BankKind,
    ChipError,
    Domain,
    GatingPolicy,
    ScalingLaw,
    Sparsity,
    known_chips,
    load_chip,
    ticks_to_ref_cycles,
)

# sys/feeder MHz at 0.90..1.30 V from the PowerFlow-DNN artifact's delay polynomial (reference/).
PAPER_MHZ = [287.5, 338.4, 392.6, 447.4, 500.0, 548.7, 594.0, 639.3, 692.0]


def test_reference_chip_loads_with_paper_numbers() -> None:
    chip = load_chip()
    assert "powerflow_ref" in known_chips()
    assert chip.levels_v == pytest.approx([0.90 + 0.05 * i for i in range(9)])
    assert chip.rows == chip.cols == 8
    assert chip.bank(BankKind.IFMAP).count == 25
    assert chip.bank(BankKind.RRAM).count is None  # sized from the network
    assert set(chip.gating_policies) == set(GatingPolicy)
    assert chip.energy.dynamic_law is ScalingLaw.QUADRATIC
    ideal = chip.ideal_mhz(Domain.SYS, np.array(chip.levels_v))
    assert ideal == pytest.approx(PAPER_MHZ, abs=0.06)
    rram = chip.ideal_mhz(Domain.RRAM, np.array(chip.levels_v))
    assert rram == pytest.approx(np.array(PAPER_MHZ) / 5, abs=0.02)


def test_quantised_frequency_never_exceeds_f_of_v_and_is_close() -> None:
    chip = load_chip()
    v = np.array(chip.levels_v)
    for d in DOMAINS:
        ideal = chip.ideal_mhz(d, v)
        real = chip.quantised_mhz(d, v)
        assert np.all(real <= ideal + 1e-9)
        step = chip.reference_mhz / (1 << chip.divider_phase_bits)
        assert np.all(ideal - real < step)


def test_ticks_to_ref_cycles_matches_a_simulated_divider() -> None:
    bits = 8
    for inc in (1, 37, 128, 200, 255, 256):
        acc, pulses = 0, []
        for cycle in range(1, 3000):
            acc += inc
            if acc >= 1 << bits:
                acc -= 1 << bits
                pulses.append(cycle)
        n = np.arange(1, 11)
        assert list(ticks_to_ref_cycles(n, np.int64(inc), bits)) == pulses[:10]
    assert int(ticks_to_ref_cycles(0, np.int64(5), bits)) == 0


def _write_variant(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(
        (Path(__file__).parents[2] / "scheduler/hardware/powerflow_ref.yaml").read_text()
    )
    edit(raw)
    path = tmp_path / "bad_chip.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["energy"].__setitem__("spad_read_pj", -35.0),
            r"^bad_chip\.yaml: energy\.spad_read_pj: must be a number >= 0, not -35\.0$",
        ),
        (
            lambda r: r["voltage"].__setitem__("levels_v", [0.8, 0.9, 1.1]),
            r"^bad_chip\.yaml: voltage\.levels_v\[0\]: must be inside delay_fit_range_v "
            r"\[0\.9, 1\.3\], not 0\.8$",
        ),
        (
            lambda r: r["banks"]["ifmap"].__setitem__("count", 0),
            r"^bad_chip\.yaml: banks\.ifmap\.count: must be an integer >= 1, not 0$",
        ),
        (
            lambda r: r["energy"].__setitem__("dynamic_law", "quartic"),
            r"^bad_chip\.yaml: energy\.dynamic_law: must be one of constant, linear, quadratic, "
            r"cubic, not 'quartic'$",
        ),
        (
            lambda r: r.__setitem__("colour", "blue"),
            r"^bad_chip\.yaml: colour: unknown field; allowed: ",
        ),
        (
            lambda r: r["domains"]["sys"].__setitem__("nominal_mhz", 700.0),
            r"^bad_chip\.yaml: domains\.sys\.nominal_mhz: must be such that "
            r"f\(1\.3 V\) = 968\.7 MHz does not exceed clock\.reference_mhz = 800",
        ),
        (
            lambda r: r["voltage"].__setitem__("nominal_v", 1.12),
            r"^bad_chip\.yaml: voltage\.nominal_v: must be one of voltage\.levels_v, not 1\.12$",
        ),
        (
            lambda r: r.__setitem__("format", "voltflow-chip/9"),
            r"^bad_chip\.yaml: format: must be 'voltflow-chip/1', not 'voltflow-chip/9'$",
        ),
        (
            lambda r: r["transition"].__setitem__("rail_settle_ns", -1),
            r"^bad_chip\.yaml: transition\.rail_settle_ns: must be a number >= 0, not -1$",
        ),
        (
            lambda r: r["sleep"].pop("entry_switches"),
            r"^bad_chip\.yaml: sleep\.entry_switches: missing$",
        ),
        (
            lambda r: r["intermittent"]["capacitor"].__setitem__("off_v", 2.8),
            r"^bad_chip\.yaml: intermittent\.capacitor\.off_v: must be below on_v = 2\.8 V "
            r"\(the chip turns on at on_v and browns out at off_v; lower off_v or raise on_v\), "
            r"not 2\.8$",
        ),
        (
            lambda r: r["intermittent"]["capacitor"].__setitem__("capacitance_uf", 0.5),
            r"^bad_chip\.yaml: intermittent\.boot\.energy_uj: must be less than one charge of the "
            r"capacitor, 1/2 C \(V_on\^2 - V_off\^2\) = 0\.52 uJ \(booting takes 1 uJ with the "
            r"capacitor's leakage\); raise intermittent\.capacitor\.capacitance_uf or widen "
            r"on_v - off_v, not 1\.0$",
        ),
        (
            lambda r: r["intermittent"]["capacitor"].__setitem__("leakage_uw", 2e6),
            r"^bad_chip\.yaml: intermittent\.boot\.energy_uj: must be less than one charge .* "
            r"\(booting takes 201 uJ with the capacitor's leakage\)",
        ),
        (
            lambda r: r["intermittent"]["capacitor"].__setitem__("capacitance_uf", -100),
            r"^bad_chip\.yaml: intermittent\.capacitor\.capacitance_uf: must be a positive number, "
            r"not -100$",
        ),
        (
            lambda r: r["intermittent"]["checkpoint"].__setitem__("commit_output", "yes"),
            r"^bad_chip\.yaml: intermittent\.checkpoint\.commit_output: must be true or false, "
            r"not 'yes'$",
        ),
        (
            lambda r: r["intermittent"]["checkpoint"].__setitem__("word_bits", 0),
            r"^bad_chip\.yaml: intermittent\.checkpoint\.word_bits: must be an integer >= 1, "
            r"not 0$",
        ),
        (
            lambda r: r["intermittent"]["checkpoint"].__setitem__("word_bits", 32),
            r"^bad_chip\.yaml: intermittent\.checkpoint\.word_bits: must be the scratchpad's "
            r"word_bits = 64 \(a checkpoint copies one scratchpad word per store word\), not 32$",
        ),
        (
            lambda r: r["intermittent"]["checkpoint"].__setitem__("marker_bits", 128),
            r"^bad_chip\.yaml: intermittent\.checkpoint\.marker_bits: must be one store word, 64 "
            r"bits \(the commit protocol writes the marker in one atomic word write\), not 128$",
        ),
        (
            lambda r: r["intermittent"]["checkpoint"].pop("write_pj_per_bit"),
            r"^bad_chip\.yaml: intermittent\.checkpoint\.write_pj_per_bit: missing$",
        ),
        (
            lambda r: r["array"].__setitem__("sparsity", "prune"),
            r"^bad_chip\.yaml: array\.sparsity: must be one of none, gate, skip, not 'prune'$",
        ),
        (
            lambda r: (r["array"].__setitem__("sparsity", "gate"), r["energy"].pop("pe_mac_pj")),
            r"^bad_chip\.yaml: energy\.pe_mac_pj: missing; array\.sparsity: gate needs it "
            r"\(picojoules of pe_cycle_pj a gated MAC saves: its multiplier and adder\); add it "
            r"to the energy section or set array\.sparsity: none$",
        ),
        (
            lambda r: r["energy"].__setitem__("pe_mac_pj", 0.2),
            r"^bad_chip\.yaml: energy\.pe_mac_pj: must be at most energy\.pe_cycle_pj = 0\.18336 "
            r"\(it is the part of a PE cycle that gating saves\), not 0\.2$",
        ),
        (
            lambda r: r["energy"].__setitem__("zero_detect_pj", -1),
            r"^bad_chip\.yaml: energy\.zero_detect_pj: must be a number >= 0, not -1$",
        ),
        (
            lambda r: r["intermittent"].__setitem__("battery", {}),
            r"^bad_chip\.yaml: intermittent\.battery: unknown field; allowed: boot, capacitor, "
            r"checkpoint$",
        ),
    ],
)
def test_bad_chip_files_are_rejected_with_file_field_value(
    tmp_path: Path, edit, message: str
) -> None:
    with pytest.raises(ChipError, match=message):
        load_chip(_write_variant(tmp_path, edit))


def test_reference_chip_has_the_inas_capacitor() -> None:
    spec = load_chip().intermittent
    assert spec is not None
    cap = spec.capacitor
    assert (cap.capacitance_uf, cap.on_v, cap.off_v, cap.leakage_uw) == (100.0, 2.8, 2.4, 0.0)
    assert cap.charge_j == pytest.approx(104e-6)  # 1/2 C (V_on^2 - V_off^2)
    assert cap.capacitance_for(cap.charge_j) == pytest.approx(100e-6)


def test_sparsity_is_optional_and_none_by_default(tmp_path: Path) -> None:
    """Without array.sparsity the array is dense, and a dense chip needs no sparsity energies."""

    def edit(raw) -> None:  # type: ignore[no-untyped-def]
        del raw["array"]["sparsity"], raw["energy"]["pe_mac_pj"], raw["energy"]["zero_detect_pj"]

    chip = load_chip(_write_variant(tmp_path, edit))
    assert chip.sparsity is Sparsity.NONE and chip.energy.pe_mac_pj == 0.0
    gate = load_chip(_write_variant(tmp_path, lambda r: r["array"].__setitem__("sparsity", "gate")))
    assert gate.sparsity is Sparsity.GATE and gate.energy.pe_mac_pj == 0.110


def test_the_intermittent_section_is_optional(tmp_path: Path) -> None:
    chip = load_chip(_write_variant(tmp_path, lambda r: r.pop("intermittent")))
    assert chip.intermittent is None
    leak = _write_variant(tmp_path, lambda r: r["intermittent"]["capacitor"].pop("leakage_uw"))
    spec = load_chip(leak).intermittent
    assert spec is not None and spec.capacitor.leakage_uw == 0.0


def test_unknown_chip_lists_known() -> None:
    with pytest.raises(ChipError, match=r"^unknown chip 'nope'; known chips: powerflow_ref"):
        load_chip("nope")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ChipError, match=r"no such chip file"):
        load_chip(tmp_path / "absent.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("clock: [unclosed\n")
    with pytest.raises(ChipError, match=r"^broken\.yaml: not valid YAML"):
        load_chip(bad)


def test_a_chip_file_can_extend_another(tmp_path: Path) -> None:
    """``extends``: the base's fields, mappings merged field by field, the rest replaced; the
    shipped sparsity variants are the reference chip but for their array."""
    reference = load_chip()
    for kind in (Sparsity.GATE, Sparsity.SKIP):
        variant = load_chip(f"powerflow_ref_{kind.value}")
        assert variant.sparsity is kind
        assert variant == replace(reference, name=variant.name, title=variant.title, sparsity=kind)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.yaml").write_text(
        "extends: ../base.yaml\nname: mine\nrails: 2\nvoltage: {levels_v: [0.9, 1.0, 1.1]}\n"
    )
    (tmp_path / "base.yaml").write_text("extends: powerflow_ref_gate\nname: base\n")
    mine = load_chip(tmp_path / "sub" / "mine.yaml")
    assert (mine.name, mine.rails, mine.levels_v, mine.sparsity) == (
        "mine",
        2,
        (0.9, 1.0, 1.1),
        Sparsity.GATE,
    )
    assert mine.nominal_v == reference.nominal_v  # merged, not replaced, mapping


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extends: 3\n", r"^loop\.yaml: extends: must be a chip name or a path to a chip file, "),
        ("extends: loop.yaml\n", r"^loop\.yaml: extends: loop\.yaml -> loop\.yaml is a loop$"),
        ("extends: nochip\n", r"^unknown chip 'nochip'; known chips: powerflow_ref, "),
        (
            "extends: powerflow_ref\narray: {sparsity: skip}\nenergy: {pe_mac_pj: null}\n",
            r"^loop\.yaml \(extends powerflow_ref\.yaml\): energy\.pe_mac_pj: must be a finite ",
        ),
    ],
)
def test_bad_extends_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    with pytest.raises(ChipError, match=message):
        load_chip(path)
