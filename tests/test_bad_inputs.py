"""Bad inputs across every command and file format: each is one clear line and a documented exit
status (docs/cli.md), never a traceback, a hang or a half-written file.

Each case runs the `voltflow` command in this process (no RTL work: every case fails before a
simulation would start) and pins its exit status and the start of its message.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voltflow.cli import main

USER_ERROR = 2
TINY = Path(__file__).parent / "scheduler" / "data" / "tiny.yaml"
SMALL_CHIP = Path(__file__).parent / "data" / "chip_small.yaml"


@dataclass(frozen=True)
class Case:
    """argv (with {f} = the bad file, {d} = the temporary folder), exit status, message regex."""

    id: str
    argv: tuple[str, ...]
    status: int
    message: str
    file: Callable[[Path, Path], Path] | None = None  # (temporary folder, good inputs) -> file


def _write(name: str, content: str | bytes) -> Callable[[Path, Path], Path]:
    def make(folder: Path, good: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return make


def _folder(name: str) -> Callable[[Path, Path], Path]:
    def make(folder: Path, good: Path) -> Path:
        path = folder / name
        path.mkdir()
        return path

    return make


def _missing(name: str) -> Callable[[Path, Path], Path]:
    return lambda folder, good: folder / name


REF_NET = (Path(__file__).parents[1] / "scheduler" / "networks" / "ds_cnn.yaml").read_text()
DEEP = "a: " + "[" * 80 + "]" * 80 + "\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)

# -- YAML files (networks and chips), for every command that reads one -----------------------------
YAML_FILES = [
    ("missing", _missing("x.yaml"), r"{f}: cannot read the file: No such file or directory"),
    ("folder", _folder("x.yaml"), r"{f}: is a folder, not a file"),
    ("latin1", _write("x.yaml", "name: caf\xe9\n".encode("latin-1")), r"{f}: is not UTF-8 text"),
    ("bad-yaml", _write("x.yaml", "a: [1, 2\n"), r"{f}: line 2, column 1: not valid YAML"),
    ("duplicate-key", _write("x.yaml", "a: 1\na: 2\n"), r"{f}: line 2, column 1: not valid YAML: "
                                                         r"duplicate key 'a' \(first on line 1\)"),
    ("deep", _write("x.yaml", DEEP), r"{f}: line 1: nested deeper than 64 levels"),
    ("alias-bomb", _write("x.yaml", BOMB), r"{f}: expands to more than 2,000,000 values"),
    ("empty", _write("x.yaml", ""), r"{f}: "),
    ("a-list", _write("x.yaml", "- 1\n- 2\n"), r"{f}: "),
    ("huge-scalar", _write("x.yaml", "format: " + "x" * 2_000_000 + "\n"), r"{f}: .{0,400}$"),
    ("huge-tensor", _write("x.yaml", REF_NET.replace("[1, 49, 10]", "[1, 100000, 100000]")),
     r"{f}: |needs \d+ words of the weight buffer|set buffers"),
]  # fmt: skip

NET_COMMANDS = [
    ("model", ("model", "--net", "{f}")),
    ("schedule", ("schedule", "--net", "{f}", "--fps", "100")),
    ("sweep", ("sweep", "--net", "{f}", "--fps", "1:3")),
    ("cosim", ("cosim", "--net", "{f}", "--fps", "100")),
]
CHIP_COMMANDS = [
    ("model", ("model", "--net", "ds_cnn", "--hw", "{f}")),
    ("schedule", ("schedule", "--net", "ds_cnn", "--hw", "{f}", "--fps", "100")),
    ("sweep", ("sweep", "--net", "ds_cnn", "--hw", "{f}", "--fps", "1:3")),
    ("cosim", ("cosim", "--net", "ds_cnn", "--hw", "{f}", "--fps", "100")),
    ("disasm", ("disasm", "{d}/ok.hex", "--hw", "{f}")),
    ("upf", ("upf", "--hw", "{f}", "-o", "{d}/x.upf")),
]

CASES: list[Case] = []
for cmd, argv in NET_COMMANDS:
    for what, make, message in YAML_FILES:
        CASES.append(Case(f"{cmd}-net-{what}", argv, USER_ERROR, message, make))
    ops = "".join(
        f"  - {{name: c{i}, op: conv, input: c{i - 1}, out_channels: 8, kernel: 1}}\n"
        for i in range(1, 3000)
    )
    long_net = (
        "format: voltflow-network/1\nname: long\ntitle: t\nsource: s\n"
        "input: {name: c0, shape: [8, 4, 4]}\nops:\n" + ops
    )
    CASES.append(
        Case(
            f"{cmd}-net-too-many-ops",
            argv,
            USER_ERROR,
            r"{f}: ops: has 2,999 ops; a network has at most 2,048",
            _write("x.yaml", long_net),
        )
    )
# A chip file's messages name the file by its name (tests/scheduler/test_chip.py pins that).
CHIP_MESSAGES = {
    "missing": r"{f}: no such chip file",
    "bad-yaml": r"{n}: not valid YAML: line 2, column 1:",
    "duplicate-key": r"{n}: not valid YAML: line 2, column 1: duplicate key 'a'",
}
for cmd, argv in CHIP_COMMANDS:
    for what, make, message in YAML_FILES:
        message = CHIP_MESSAGES.get(what, message.replace("{f}", "{n}"))
        CASES.append(Case(f"{cmd}-chip-{what}", argv, USER_ERROR, message, make))

# -- JSON files: instances and schedules --------------------------------------------------------
JSON_FILES = [
    ("missing", _missing("x.json"), r"{f}: cannot read the file: No such file or directory"),
    ("folder", _folder("x.json"), r"{f}: is a folder, not a file"),
    ("latin1", _write("x.json", '{"a": "caf\xe9"}'.encode("latin-1")), r"{f}: is not UTF-8 text"),
    ("bad-json", _write("x.json", "{"), r"{f}: is not valid JSON: Expecting property name"),
    ("duplicate-key", _write("x.json", '{"a": 1, "a": 2}'), r"{f}: duplicate key 'a'"),
    ("deep", _write("x.json", "[" * 80 + "]" * 80), r"{f}: nested deeper than 64 levels"),
    ("very-deep", _write("x.json", "[" * 100_000 + "]" * 100_000), r"{f}: nested too deeply"),
    ("wrong-format", _write("x.json", '{"format": "other/1"}'), r"{f}: "),
    ("a-list", _write("x.json", "[1, 2]"), r"{f}: "),
]  # fmt: skip
JSON_COMMANDS = [
    ("schedule-instance", ("schedule", "--instance", "{f}", "--fps", "100")),
    ("sweep-instance", ("sweep", "--instance", "{f}", "--fps", "1:3")),
    ("compile", ("compile", "{f}", "-o", "{d}/rom.hex", "--net", "ds_cnn")),
    ("upf-schedule", ("upf", "--schedule", "{f}", "-o", "{d}/x.upf")),
]
for cmd, argv in JSON_COMMANDS:
    for what, make, message in JSON_FILES:
        CASES.append(Case(f"{cmd}-{what}", argv, USER_ERROR, message, make))

# -- ROM files ------------------------------------------------------------------------------------
ROM_FILES = [
    ("missing", _missing("x.hex"), r"{f}: no such ROM file"),
    ("folder", _folder("x.hex"), r"{f}: is a folder, not a ROM file"),
    ("latin1", _write("x.hex", b"\xe9\n"), r"{f}: is not UTF-8 text"),
    ("not-hex", _write("x.hex", "zz\n"), r"x.hex:1: must be a 16-digit hex word, not 'zz'"),
    ("too-wide", _write("x.hex", "1" * 17 + "\n"), r"x.hex:1: '1{17}' is wider than 64 bits"),
    ("address-record", _write("x.hex", "@10\n"), r"x.hex:1: address records \(@\) are not"),
    ("too-long", _write("x.hex", ("0" * 16 + "\n") * 4097), r"{f}: 4097 words; the PMU's command "
                                                          r"memory holds 4096"),
    ("odd-bin", _write("x.bin", b"\x00" * 9), r"x.bin: 9 bytes is not a whole number of 8-byte"),
    ("huge-bin", _write("x.bin", b"\x00" * 8 * 5000), r"{f}: is 40,000 bytes, more than the PMU"),
]  # fmt: skip
for what, make, message in ROM_FILES:
    CASES.append(Case(f"disasm-{what}", ("disasm", "{f}"), USER_ERROR, message, make))

# -- output paths -------------------------------------------------------------------------------
OUTPUTS = [
    ("schedule-o-missing-dir",
     ("schedule", "--net", "ds_cnn", "--fps", "100", "-o", "{d}/no/s.json"),
     r"{d}/no/s.json: the folder {d}/no does not exist; create it first"),
    ("schedule-o-folder", ("schedule", "--net", "ds_cnn", "--fps", "100", "-o", "{d}"),
     r"{d}: is a folder; give a file name"),
    ("sweep-o-missing-dir", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "-o", "{d}/no/s.csv"),
     r"{d}/no/s.csv: the folder {d}/no does not exist"),
    ("sweep-o-folder", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "-o", "{d}"),
     r"{d}: is a folder; give a file name"),
    ("compile-o-missing-dir", ("compile", "{d}/ok.json", "-o", "{d}/no/rom.hex"),
     r"{d}/no/rom.hex: the folder {d}/no does not exist"),
    ("compile-o-folder", ("compile", "{d}/ok.json", "-o", "{d}"), r"{d}: is a folder"),
    ("compile-listing-folder", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--listing", "{d}"),
     r"{d}: is a folder"),
    ("compile-bin-missing-dir", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--bin", "{d}/no/b"),
     r"{d}/no/b: the folder {d}/no does not exist"),
    ("model-export-missing-dir", ("model", "--net", "ds_cnn", "--export-instance", "{d}/no/i.json"),
     r"{d}/no/i.json: the folder {d}/no does not exist"),
    ("upf-o-missing-dir", ("upf", "-o", "{d}/no/chip.upf"),
     r"^voltflow upf: error: {d}/no/chip.upf: the folder {d}/no does not exist; create it first$"),
    ("upf-o-folder", ("upf", "-o", "{d}"), r"^voltflow upf: error: {d}: is a folder; give a file"),
]  # fmt: skip
for name, argv, message in OUTPUTS:
    CASES.append(Case(name, argv, USER_ERROR, message))

# -- numbers and choices ------------------------------------------------------------------------
ARGS = [
    ("schedule-fps-zero", ("schedule", "--net", "ds_cnn", "--fps", "0"), r"argument --fps"),
    ("schedule-fps-negative", ("schedule", "--net", "ds_cnn", "--fps", "-5"), r"argument --fps"),
    ("schedule-fps-nan", ("schedule", "--net", "ds_cnn", "--fps", "nan"), r"argument --fps"),
    ("schedule-fps-inf", ("schedule", "--net", "ds_cnn", "--fps", "inf"), r"argument --fps"),
    ("schedule-fps-text", ("schedule", "--net", "ds_cnn", "--fps", "fast"), r"argument --fps"),
    ("schedule-fps-tiny", ("schedule", "--net", "ds_cnn", "--fps", "1e-300"),
     r"period_s 1e\+300 s is .* the PMU's period timer takes 1 to"),
    ("schedule-fps-huge", ("schedule", "--net", "ds_cnn", "--fps", "1e12"),
     r"period_s 1e-12 s is 0.0008 reference cycles"),
    ("schedule-fps-unreachable", ("schedule", "--net", "ds_cnn", "--fps", "100000"),
     r"so the highest feasible rate is 4040.55 FPS"),
    ("schedule-rails-zero", ("schedule", "--net", "ds_cnn", "--fps", "100", "--rails", "0"),
     r"rails must be 1 to 3 \(chip 'powerflow_ref' has 3 rails\), not 0"),
    ("schedule-rails-nine", ("schedule", "--net", "resnet8", "--fps", "2400", "--rails", "9"),
     r"rails must be 1 to 3 \(chip 'powerflow_ref' has 3 rails\), not 9"),
    ("schedule-rails-text", ("schedule", "--net", "ds_cnn", "--fps", "100", "--rails", "x"),
     r"argument --rails"),
    ("schedule-method", ("schedule", "--net", "ds_cnn", "--fps", "100", "--method", "magic"),
     r"argument --method: invalid choice"),
    ("schedule-policy", ("schedule", "--net", "ds_cnn", "--fps", "100", "--policy", "all"),
     r"argument --policy: invalid choice"),
    ("schedule-levels-text", ("schedule", "--net", "ds_cnn", "--fps", "100", "--levels", "a,b"),
     r"--levels"),
    ("schedule-levels-off-grid", ("schedule", "--net", "ds_cnn", "--fps", "100", "--levels",
                                  "0.9,1.07"),
     r"voltage level 1.07 V is not on chip 'powerflow_ref"),
    ("schedule-levels-zero", ("schedule", "--net", "ds_cnn", "--fps", "100", "--levels", "0"),
     r"--levels"),
    ("schedule-time-limit", ("schedule", "--net", "ds_cnn", "--fps", "100", "--time-limit", "0"),
     r"argument --time-limit"),
    ("schedule-transition-negative", ("schedule", "--net", "ds_cnn", "--fps", "100",
                                      "--transition-energy-j", "-1"), r"argument --transition"),
    ("schedule-unknown-net", ("schedule", "--net", "nonet", "--fps", "100"),
     r"unknown network 'nonet'; known networks: "),
    ("schedule-unknown-chip", ("schedule", "--net", "ds_cnn", "--hw", "nochip", "--fps", "100"),
     r"unknown chip 'nochip'; known chips: "),
    ("model-state-text", ("model", "--net", "ds_cnn", "--state", "1.1,fast"), r"--state must be"),
    ("model-state-two", ("model", "--net", "ds_cnn", "--state", "1.1,1.1"), r"--state must be"),
    ("model-state-off-grid", ("model", "--net", "ds_cnn", "--state", "1.12,1.1,1.1"),
     r"--state: state \[1.12, 1.1, 1.1\] is not on the voltage grid"),
    ("model-state-nan", ("model", "--net", "ds_cnn", "--state", "nan,1.1,1.1"), r"--state"),
    ("sweep-fps-reversed", ("sweep", "--net", "ds_cnn", "--fps", "5:1"), r"--fps must be LO:HI"),
    ("sweep-fps-step-zero", ("sweep", "--net", "ds_cnn", "--fps", "1:5:0"), r"--fps must be"),
    ("sweep-fps-inf", ("sweep", "--net", "ds_cnn", "--fps", "1:inf"), r"--fps must be LO:HI"),
    ("sweep-fps-nan", ("sweep", "--net", "ds_cnn", "--fps", "nan"), r"--fps must be LO:HI"),
    ("sweep-fps-four-parts", ("sweep", "--net", "ds_cnn", "--fps", "1:2:3:4"), r"--fps must be"),
    ("sweep-fps-too-many", ("sweep", "--net", "ds_cnn", "--fps", "1:1e9"),
     r"--fps '1:1e9' gives 1e\+09 rates; a sweep takes at most 100,000"),
    ("sweep-fps-empty-item", ("sweep", "--net", "ds_cnn", "--fps", "1,,3"), r"--fps must be"),
    ("sweep-workers-zero", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "--workers", "0"),
     r"workers must be a positive integer, not 0"),
    ("sweep-workers-negative", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "--workers", "-1"),
     r"workers must be a positive integer, not -1"),
    ("sweep-methods-unknown", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "--methods", "dp,x"),
     r"'x' is not a valid Method|method"),
    ("sweep-rails-nine", ("sweep", "--net", "ds_cnn", "--fps", "1:3", "--rails", "9"),
     r"rails must be 1 to 3"),
    ("cosim-rails-nine", ("cosim", "--net", "resnet8", "--rails", "9", "--fps", "1850"),
     r"rails must be 1 to 3 \(chip 'powerflow_ref' has 3 rails\), not 9"),
    ("cosim-frames-zero", ("cosim", "--net", "ds_cnn", "--frames", "0", "--fps", "100"),
     r"--frames must be at least 1, not 0"),
    ("cosim-fps-zero", ("cosim", "--net", "ds_cnn", "--fps", "0"), r"argument --fps"),
    ("cosim-fps-unreachable", ("cosim", "--net", "ds_cnn", "--fps", "100000"),
     r"so the highest feasible rate is 4040.55 FPS"),
    ("cosim-state-off-grid", ("cosim", "--net", "ds_cnn", "--state", "1.12,1.1,1.1"),
     r"voltage 1.12 V of the schedule is not on chip 'powerflow_ref''s grid"),
    ("cosim-waves-unknown", ("cosim", "--net", "ds_cnn", "--waves", "png"),
     r"argument --waves: invalid choice"),
    ("cosim-sparsity-two", ("cosim", "--net", "ds_cnn", "--state", "1.1,1.1,1.1", "--sparsity",
                            "2"), r"sparsity must be"),
    ("cosim-sparsity-negative", ("cosim", "--net", "ds_cnn", "--state", "1.1,1.1,1.1",
                                 "--sparsity", "-0.5"), r"sparsity must be"),
    ("cosim-seed-negative", ("cosim", "--net", "ds_cnn", "--state", "1.1,1.1,1.1", "--seed",
                             "-1"), r"seed must be"),
    ("cosim-out-dir-is-a-file", ("cosim", "--net", "ds_cnn", "--fps", "100", "--out-dir",
                                 "{d}/ok.json"),
     r"--out-dir {d}/ok.json: is a file; give a folder"),
    ("compile-frames-zero", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--frames", "0"),
     r"frames must be in 1..65536, not 0"),
    ("compile-frames-huge", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--frames", "70000"),
     r"frames must be in 1..65536, not 70000"),
    ("compile-wrong-net", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--net", "autoencoder"),
     r"layers\[0\].name is 'conv2d' but layer 0 of autoencoder is 'Dense_1'"),
    ("compile-unknown-policy", ("compile", "{d}/ok.json", "-o", "{d}/r.hex", "--policy", "x"),
     r"argument --policy: invalid choice"),
    ("upf-unknown-chip", ("upf", "--hw", "nochip"),
     r"^voltflow upf: error: unknown chip 'nochip'; known chips: powerflow_ref, "
     r"powerflow_ref_gate, powerflow_ref_skip \(or give a path"),
    ("upf-schedule-for-another-chip",
     ("upf", "--schedule", "{d}/ok.json", "--hw", str(SMALL_CHIP), "-o", "{d}/x.upf"),
     r"^voltflow upf: error: {d}/ok.json: provenance.chip: the schedule was solved for chip "
     r"'powerflow_ref', not 'chip_small' \(pass --hw 'powerflow_ref'\)$"),
    ("upf-schedule-for-another-network",
     ("upf", "--schedule", "{d}/ok.json", "--net", "resnet8", "-o", "{d}/x.upf"),
     r"^voltflow upf: error: {d}/ok.json: provenance.network: the schedule was solved for "
     r"network 'ds_cnn', not 'resnet8' \(drop --net\)$"),
    ("upf-schedule-unknown-net", ("upf", "--schedule", "{d}/ok.json", "--net", "nonet"),
     r"unknown network 'nonet'"),
    ("no-command", (), r"the following arguments are required|usage"),
    ("unknown-command", ("frobnicate",), r"invalid choice"),
]  # fmt: skip
for name, argv, message in ARGS:
    status = USER_ERROR
    CASES.append(Case(name, argv, status, message))


# -- attention ops in network files (docs/attention.md) -------------------------------------------
ATTENTION_HEAD = (
    "format: voltflow-network/1\nname: attn\ntitle: t\nsource: s\n"
    "input: {name: x, shape: [24, 4, 4]}\nops:\n"
)
ATTENTION_NETS = [
    ("kind", "  - {name: m, op: matmul, inputs: [x, x], attention: keys, heads: 2, "
             "head_channels: 4}\n",
     r"{f}: ops\[0\] \(m\).attention: must be 'scores' or 'context', not 'keys'$"),
    ("patch", "  - {name: m, op: matmul, inputs: [x, x], attention: scores, heads: 2, "
              "head_channels: 4, patch: 3}\n",
     r"{f}: ops\[0\] \(m\).patch: \[3, 3\] must tile the 4x4 map"),
    ("channels", "  - {name: m, op: matmul, inputs: [x, x], attention: scores, heads: 4, "
                 "head_channels: 4, b_channel: 16}\n",
     r"{f}: ops\[0\] \(m\).b_channel: b_channel 16 \+ heads 4 x head_channels 4 = 32 must be at "
     r"most the 24 channels of input b \(24x4x4\)$"),
    ("context-a-channel", "  - {name: m, op: matmul, inputs: [x, x], attention: context, "
                          "heads: 1, head_channels: 8, a_channel: 8}\n",
     r"{f}: ops\[0\] \(m\).a_channel: must be left out of a context matmul"),
    ("softmax-of-a-map", "  - {name: s, op: softmax, input: x}\n",
     r"{f}: ops\[0\] \(s\).input: must be a scores tensor \[G \* n8, 1, n\]"),
    ("lanes", "  - {name: m, op: matmul, inputs: [x, x], attention: scores, heads: 2, "
              "head_channels: 8, b_channel: 4}\n",
     r"^voltflow model: error: network 'attn' on chip 'powerflow_ref': op m: a_channel 0 and "
     r"b_channel 4 must be equal modulo 8 so that Q's and K's lanes line up"),
]  # fmt: skip
for what, ops, message in ATTENTION_NETS:
    CASES.append(
        Case(f"model-net-attention-{what}", ("model", "--net", "{f}"), USER_ERROR, message,
             _write("x.yaml", ATTENTION_HEAD + ops))
    )  # fmt: skip
CASES.append(
    Case(
        "cosim-generic-matmul",
        ("cosim", "--net", "{f}"),
        USER_ERROR,
        r"attn has 1 generic matmul op\(s\) \(the first 'm'\): the RTL cannot run a matmul whose "
        r"operand layout is open",
        _write("x.yaml", ATTENTION_HEAD + "  - {name: m, op: matmul, inputs: [x, x], batch: 1, "
               "m: 4, k: 4, n: 4, out_shape: [1, 4, 4]}\n"),
    )
)  # fmt: skip


# -- schedule files edited by hand (compile) ----------------------------------------------------
def _edit(edit: Callable[[dict], None]) -> Callable[[Path, Path], Path]:
    def make(folder: Path, good: Path) -> Path:
        data = json.loads((good / "ok.json").read_text())
        edit(data)
        path = folder / "edited.json"
        path.write_text(json.dumps(data))
        return path

    return make


def _layer(i: int, **fields: object) -> Callable[[dict], None]:
    return lambda d: d["layers"][i].update(fields)


SCHEDULE_EDITS = [
    ("state-99999", _layer(0, state=99999), r"layers\[0\] \(conv2d\).state is 99999"),
    ("state-minus-one", _layer(0, state=-1), r"layers\[0\] \(conv2d\).state is -1"),
    ("state-text", _layer(0, state="a"), r"state"),
    ("voltage-off-grid", _layer(0, voltage_v=[1.07, 0.9, 0.9]), r"not on the voltage grid"),
    ("voltage-two", _layer(0, voltage_v=[1.1, 1.1]), r"voltage_v"),
    ("voltage-text", _layer(0, voltage_v=["a", 1, 1]), r"voltage_v"),
    ("time-edited", _layer(0, time_s=1e-9), r"layers\[0\] \(conv2d\).time_s is 1e-09 s, but the "
                                            r"cost model gives"),
    ("name-edited", _layer(0, name="other"), r"layers\[0\].name is 'other' but layer 0 of ds_cnn"),
    ("layer-missing", lambda d: d["layers"].pop(), r"the schedule has 9 layers but ds_cnn has 10"),
    ("layers-not-a-list", lambda d: d.update(layers=5), r"layers"),
    ("period-tiny", lambda d: d.update(period_s=1e-6), r"the layers take .* longer than the "
                                                        r"period 0.001 ms"),
    ("period-zero", lambda d: d.update(period_s=0), r"period_s"),
    ("period-negative", lambda d: d.update(period_s=-1), r"period_s"),
    ("period-huge", lambda d: d.update(period_s=1e300), r"period_s 1e\+300 s is"),
    ("period-text", lambda d: d.update(period_s="1ms"), r"period_s"),
    ("rails-nine", lambda d: d.update(rails=9), r"rails is 9, but chip 'powerflow_ref' has 3"),
    ("domains-renamed", lambda d: d.update(domains=["a", "b", "c"]), r"domains"),
    ("slack-mode-unknown", lambda d: d.update(slack_mode="nap"), r"slack_mode"),
    ("format-other", lambda d: d.update(format="voltflow-schedule/9"), r"format must be"),
    ("provenance-not-object", lambda d: d.update(provenance=[1]), r"provenance must be a JSON"),
    ("unknown-field", lambda d: d.update(extra=1), r"extra"),
    ("missing-field", lambda d: d.pop("period_s"), r"period_s"),
    ("huge-string-field", lambda d: d.update(method="m" * 1_000_000),
     r"'m+\.\.\.m+' \(1,000,000 characters\) is not a valid Method$"),
]  # fmt: skip
for what, edit, message in SCHEDULE_EDITS:
    CASES.append(
        Case(
            f"compile-edited-{what}",
            ("compile", "{f}", "-o", "{d}/r.hex", "--net", "ds_cnn"),
            USER_ERROR,
            message,
            _edit(edit),
        )
    )


# -- schedule files whose provenance does not lead back to their network and chip (upf) ------------
UPF_EDITS = [
    ("no-provenance", lambda d: d.pop("provenance"),
     r"^voltflow upf: error: {f}: provenance.network: missing \(the schedule does not say which "
     r"network it was solved for\); pass --net$"),
    ("no-network", lambda d: d["provenance"].pop("network"), r"{f}: provenance.network: missing"),
    ("network-number", lambda d: d["provenance"].update(network=5),
     r"^voltflow upf: error: {f}: provenance.network: must be a non-empty string, not 5$"),
    ("chip-unknown", lambda d: d["provenance"].update(chip="nochip"),
     r"^voltflow upf: error: {f}: provenance.chip: unknown chip 'nochip'; known chips: "
     r"powerflow_ref, powerflow_ref_gate, powerflow_ref_skip \(or give a path to a .yaml file\) "
     r"\(pass --hw\)$"),
    ("policy-unknown", lambda d: d["provenance"].update(policy="all"),
     r"^voltflow upf: error: {f}: provenance.policy: must be one of no_pg, layer_pg, rram_pg, "
     r"not 'all'$"),
    ("levels-text", lambda d: d["provenance"].update(levels_v="0.9"),
     r"^voltflow upf: error: {f}: provenance.levels_v: must be a list of voltages, not '0.9'$"),
    ("time-edited", _layer(0, time_s=1e-9),
     r"^voltflow upf: error: {f}: layers\[0\] \(conv2d\).time_s is 1e-09 s, but the cost model "
     r"gives"),
]  # fmt: skip
for what, edit, message in UPF_EDITS:
    CASES.append(
        Case(
            f"upf-edited-{what}",
            ("upf", "--schedule", "{f}", "-o", "{d}/x.upf"),
            USER_ERROR,
            message,
            _edit(edit),
        )
    )


# -- chips the PMU cannot encode ------------------------------------------------------------------
REF_CHIP = (Path(__file__).parents[1] / "scheduler" / "hardware" / "powerflow_ref.yaml").read_text()


def _chip_with(old: str, new: str) -> Callable[[Path, Path], Path]:
    assert old in REF_CHIP
    return _write("chip.yaml", REF_CHIP.replace(old, new, 1))


ENCODABLE = [
    ("rails-9", _chip_with("rails: 3", "rails: 9"),
     r"rails: the PMU addresses at most 8 rails, not 9"),
    ("divider-30-bits", _chip_with("divider_phase_bits: 16", "divider_phase_bits: 30"),
     r"sys: the clock divider's increment at 1.3 V is [\d,]+, more than SET_FREQ's 16,777,215"),
]  # fmt: skip
for what, make, message in ENCODABLE:
    for cmd, argv in [*CHIP_COMMANDS[:4], CHIP_COMMANDS[-1]]:
        CASES.append(Case(f"{cmd}-chip-{what}", argv, USER_ERROR, r"{f}: " + message, make))


# -- intermittent power (schedule --intermittent) -------------------------------------------------
SMALL_CHIP = str(Path(__file__).parent / "data" / "chip_small.yaml")
INTERMITTENT = ("schedule", "--net", "ds_cnn", "--intermittent")
TRACES = [
    ("empty", "", r"{f}: is empty; the first line must be the header 'time_s,power_w'"),
    ("header-only", "time_s,power_w\n", r"{f}: has no rows after the header"),
    ("bad-header", "t,p\n0,1\n", r"{f}: line 1: the first line must be the header"),
    ("unsorted", "time_s,power_w\n0,1e-3\n2,1e-3\n1,1e-3\n",
     r"{f}: row 3 \(line 4\): time_s 1 must be after row 2's 2 \(times increase strictly\)"),
    ("negative", "time_s,power_w\n0,1e-3\n1,-1e-3\n",
     r"{f}: row 2 \(line 3\): power_w must be >= 0, not -0.001"),
    ("text", "time_s,power_w\n0,much\n", r"{f}: row 1 \(line 2\): power_w must be a number, "
                                          r"not 'much'"),
    ("three-columns", "time_s,power_w\n0,1,2\n", r"{f}: row 1 \(line 2\): must be two values"),
    ("infinite", "time_s,power_w\n0,inf\n", r"{f}: row 1 \(line 2\): power_w must be a finite"),
    ("all-zero", "time_s,power_w\n0,0\n1,0\n", r"x.csv: no row's power_w exceeds the capacitor's "
                                                r"leakage 0 W: the capacitor never recharges"),
    ("ends-at-zero", "time_s,power_w\n0,1e-3\n0.001,0\n",
     r"x.csv: the harvest ends \(at 0.001 s, 0 W\) before the capacitor"),
]  # fmt: skip
for what, content, message in TRACES:
    CASES.append(
        Case(f"intermittent-trace-{what}", (*INTERMITTENT, "--harvest-trace", "{f}"), USER_ERROR,
             message, _write("x.csv", content))
    )  # fmt: skip
INTERMITTENT_CASES = [
    ("intermittent-harvest-zero", (*INTERMITTENT, "--harvest-uw", "0"),
     r"argument --harvest-uw: must be a positive finite number, not '0'"),
    ("intermittent-harvest-negative", (*INTERMITTENT, "--harvest-uw", "-5"),
     r"argument --harvest-uw: must be a positive finite number, not '-5'"),
    ("intermittent-harvest-nan", (*INTERMITTENT, "--harvest-uw", "nan"),
     r"argument --harvest-uw: must be a positive finite number, not 'nan'"),
    ("intermittent-both-harvests", (*INTERMITTENT, "--harvest-uw", "100", "--harvest-trace",
                                    "{d}/ok.json"),
     r"give one of --harvest-uw and --harvest-trace, not both$"),
    ("intermittent-no-harvest", INTERMITTENT,
     r"--intermittent needs the harvested power: --harvest-uw P \(constant, microwatts\) or "
     r"--harvest-trace FILE \(CSV time_s,power_w\)$"),
    ("intermittent-missing-trace", (*INTERMITTENT, "--harvest-trace", "{d}/none.csv"),
     r"{d}/none.csv: cannot read the file: No such file or directory"),
    ("intermittent-chip-without-section", (*INTERMITTENT, "--harvest-uw", "100", "--hw",
                                           SMALL_CHIP),
     re.escape(SMALL_CHIP) + r": chip 'chip_small' has no intermittent section \(capacitor, boot, "
     r"checkpoint store\), which --intermittent needs"),
    ("intermittent-with-fps", (*INTERMITTENT, "--harvest-uw", "100", "--fps", "10"),
     r"--fps does not apply to --intermittent"),
    ("intermittent-with-instance", (*INTERMITTENT, "--harvest-uw", "100", "--instance",
                                    "{d}/ok.json"),
     r"--instance does not apply to --intermittent"),
    ("intermittent-with-method", (*INTERMITTENT, "--harvest-uw", "100", "--method", "greedy"),
     r"--method greedy does not apply to --intermittent"),
    ("intermittent-objective-unknown", (*INTERMITTENT, "--harvest-uw", "100", "--objective",
                                        "cost"), r"argument --objective: invalid choice: 'cost'"),
    ("intermittent-rails-nine", (*INTERMITTENT, "--harvest-uw", "100", "--rails", "9"),
     r"rails must be 1 to 3 \(chip 'powerflow_ref' has 3 rails\), not 9"),
    ("intermittent-o-missing-dir", (*INTERMITTENT, "--harvest-uw", "100", "-o", "{d}/no/i.json"),
     r"{d}/no/i.json: the folder {d}/no does not exist; create it first"),
    ("intermittent-infeasible", ("schedule", "--net", "resnet18", "--intermittent",
                                 "--harvest-uw", "100"),
     r"resnet18 on powerflow_ref: no schedule fits one charge of the capacitor \(100 uF from 2.8 V "
     r"to 2.4 V: 104 uJ\): whichever way the network is split, a power cycle needs at least "
     r"319.097 uJ \(boot, restore and checkpoint included; at best layer conv1 alone\); a "
     r"capacitance of at least 306.824 uF \(intermittent.capacitor.capacitance_uf\) would make "
     r"it feasible$"),
    ("harvest-without-intermittent", ("schedule", "--net", "ds_cnn", "--harvest-uw", "100"),
     r"--harvest-uw applies to --intermittent only; add --intermittent$"),
    ("objective-without-intermittent", ("schedule", "--net", "ds_cnn", "--fps", "100",
                                        "--objective", "energy"),
     r"--objective applies to --intermittent only; add --intermittent$"),
    ("schedule-without-fps", ("schedule", "--net", "ds_cnn"),
     r"--fps is required: the target rate in frames per second \(or --intermittent\)$"),
]  # fmt: skip
for name, argv, message in INTERMITTENT_CASES:
    CASES.append(Case(name, argv, USER_ERROR, message))
COSIM_INTERMITTENT = ("cosim", "--net", "ds_cnn", "--intermittent")
COSIM_INTERMITTENT_CASES = [
    ("cosim-intermittent-no-harvest", COSIM_INTERMITTENT,
     r"--intermittent needs the harvested power: --harvest-uw P \(constant, microwatts\) or "
     r"--harvest-trace FILE \(CSV time_s,power_w\)$"),
    ("cosim-intermittent-with-fps", (*COSIM_INTERMITTENT, "--harvest-uw", "100", "--fps", "10"),
     r"--fps does not apply to --intermittent \(one inference, run through its power cycles as "
     r"the harvest allows\); drop --fps$"),
    ("cosim-intermittent-with-state", (*COSIM_INTERMITTENT, "--harvest-uw", "100", "--state",
                                       "1.1,1.1,1.1"),
     r"--state does not apply to --intermittent"),
    ("cosim-intermittent-with-waves", (*COSIM_INTERMITTENT, "--harvest-uw", "100", "--waves",
                                       "fst"), r"--waves does not apply to --intermittent"),
    ("cosim-intermittent-with-frames", (*COSIM_INTERMITTENT, "--harvest-uw", "100", "--frames",
                                        "3"), r"--frames does not apply to --intermittent"),
    ("cosim-intermittent-negative-failures", (*COSIM_INTERMITTENT, "--harvest-uw", "100",
                                              "--inject-failures", "-3"),
     r"--inject-failures must be 0 or more, not -3$"),
    ("cosim-intermittent-checkpoints-unknown", (*COSIM_INTERMITTENT, "--harvest-uw", "100",
                                                "--checkpoints", "sometimes"),
     r"argument --checkpoints: invalid choice: 'sometimes'"),
    ("cosim-intermittent-with-lookahead", (*COSIM_INTERMITTENT, "--harvest-uw", "100",
                                           "--lookahead"),
     r"--lookahead does not apply to --intermittent"),
    ("cosim-state-with-lookahead", ("cosim", "--net", "ds_cnn", "--state", "1.1,1.1,1.1",
                                    "--lookahead"),
     r"--lookahead does not apply to --state \(one inference, one LAUNCH per 255 ops\); "
     r"drop --lookahead$"),
    ("cosim-inputs-with-lookahead", ("cosim", "--net", "ds_cnn", "--hw", "powerflow_ref_skip",
                                     "--inputs", "2", "--lookahead"),
     r"--lookahead does not apply to --inputs"),
    ("cosim-harvest-without-intermittent", ("cosim", "--net", "ds_cnn", "--harvest-uw", "100"),
     r"--harvest-uw applies to --intermittent only; add --intermittent$"),
    ("cosim-failures-without-intermittent", ("cosim", "--net", "ds_cnn", "--inject-failures",
                                             "5"),
     r"--inject-failures applies to --intermittent only; add --intermittent$"),
    ("cosim-checkpoints-without-intermittent", ("cosim", "--net", "ds_cnn", "--checkpoints",
                                                "every-layer"),
     r"--checkpoints applies to --intermittent only; add --intermittent$"),
    ("cosim-intermittent-chip-without-section", (*COSIM_INTERMITTENT, "--harvest-uw", "100",
                                                 "--hw", SMALL_CHIP),
     re.escape(SMALL_CHIP) + r": chip 'chip_small' has no intermittent section \(capacitor, boot, "
     r"checkpoint store\), which --intermittent needs"),
    ("cosim-intermittent-infeasible", ("cosim", "--net", "squeezenet", "--intermittent",
                                       "--harvest-uw", "100", "--checkpoints", "every-layer"),
     r"squeezenet on powerflow_ref: no schedule with a checkpoint after every layer fits one "
     r"charge .* a capacitance of at least [\d.]+ uF \(intermittent.capacitor.capacitance_uf\) "
     r"would make it feasible$"),
]  # fmt: skip
for name, argv, message in COSIM_INTERMITTENT_CASES:
    CASES.append(Case(name, argv, USER_ERROR, message))
CASES.append(
    Case("cosim-intermittent-trace-negative", (*COSIM_INTERMITTENT, "--harvest-trace", "{f}"),
         USER_ERROR, r"{f}: row 2 \(line 3\): power_w must be >= 0, not -0.001",
         _write("x.csv", "time_s,power_w\n0,1e-3\n1,-1e-3\n"))
)  # fmt: skip
INTERMITTENT_CHIPS = [
    ("cannot-boot", _chip_with("capacitance_uf: 100.0", "capacitance_uf: 0.5"), (),
     r"{n}: intermittent.boot.energy_uj: must be less than one charge of the capacitor, 1/2 C "
     r"\(V_on\^2 - V_off\^2\) = 0.52 uJ \(booting takes 1 uJ with the capacitor's leakage\); "
     r"raise intermittent.capacitor.capacitance_uf or widen on_v - off_v, not 1.0$"),
    ("off-above-on", _chip_with("off_v: 2.4", "off_v: 3.0"), (),
     r"{n}: intermittent.capacitor.off_v: must be below on_v = 2.8 V \(the chip turns on at on_v "
     r"and browns out at off_v; lower off_v or raise on_v\), not 3.0$"),
    ("harvest-below-leakage", _chip_with("leakage_uw: 0.0", "leakage_uw: 150.0"),
     ("--harvest-uw", "100"),
     r"harvested power 100 uW must exceed the capacitor's leakage 150 uW "
     r"\(intermittent.capacitor.leakage_uw\), or the capacitor never recharges$"),
]  # fmt: skip
for what, make, extra, message in INTERMITTENT_CHIPS:
    argv = (*INTERMITTENT, "--hw", "{f}", *(extra or ("--harvest-uw", "100")))
    CASES.append(Case(f"intermittent-chip-{what}", argv, USER_ERROR, message, make))


# ---- sparsity: profiles, their inputs, --profile and --inputs (docs/sparsity.md) ---------------
def _npy_folder(array: np.ndarray) -> Callable[[Path, Path], Path]:
    def make(folder: Path, good: Path) -> Path:
        path = folder / "inputs"
        path.mkdir()
        np.save(path / "a.npy", array)
        return path

    return make


def _profile_edit(edit: Callable[[dict], None]) -> Callable[[Path, Path], Path]:
    def make(folder: Path, good: Path) -> Path:
        doc = json.loads((good / "ds.prof.json").read_text())
        edit(doc)
        path = folder / "bad.prof.json"
        path.write_text(json.dumps(doc))
        return path

    return make


def _set(path: str, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


PROFILE = ("profile", "--net", "ds_cnn", "-o", "{d}/new.prof.json")
SKIP_SCHEDULE = ("schedule", "--net", "ds_cnn", "--hw", "powerflow_ref_skip", "--fps", "1000")
SPARSITY_CASES = [
    ("profile-inputs-zero", (*PROFILE, "--inputs", "0"), r"--inputs must be at least 1, not 0$",
     None),
    ("profile-dense-chip", (*PROFILE, "--hw", "powerflow_ref", "--inputs", "2"),
     r"chip 'powerflow_ref' has array.sparsity: none; a profile measures what a gating or "
     r"skipping array does with zeros \(use --hw powerflow_ref_gate or powerflow_ref_skip\)$",
     None),
    ("profile-input-dir-dtype", (*PROFILE, "--input-dir", "{f}"),
     r"a.npy: dtype must be int8 \(the chip's quantised input\), not float32; quantise it with "
     r"the network's input scale first$", _npy_folder(np.zeros((1, 49, 10), "float32"))),
    ("profile-input-dir-shape", (*PROFILE, "--input-dir", "{f}"),
     r"a.npy: shape must be \[1, 49, 10\] \(channels, height, width of ds_cnn's input\), not "
     r"\[1, 10, 49\]$", _npy_folder(np.zeros((1, 10, 49), "int8"))),
    ("profile-input-dir-empty", (*PROFILE, "--input-dir", "{f}"),
     r"--input-dir .*: no .npy files in it$", _folder("empty")),
    ("profile-input-dir-missing", (*PROFILE, "--input-dir", "{f}"),
     r"--input-dir .*: not a folder$", _missing("nothere")),
    ("schedule-profile-other-net",
     ("schedule", "--net", "resnet8", "--hw", "powerflow_ref_skip", "--fps", "100", "--profile",
      "{d}/ds.prof.json"),
     r"ds.prof.json: network: the profile is of 'ds_cnn', not of this 'resnet8' \(profile it "
     r"with voltflow profile --net resnet8\)$", None),
    ("schedule-profile-other-chip",
     (*SKIP_SCHEDULE[:4], "powerflow_ref_gate", *SKIP_SCHEDULE[5:], "--profile",
      "{d}/ds.prof.json"),
     r"ds.prof.json: chip: the profile was measured on 'powerflow_ref_skip', not on this "
     r"'powerflow_ref_gate' \(profile it again with --hw powerflow_ref_gate\)$", None),
    ("schedule-profile-dense-chip",
     ("schedule", "--net", "ds_cnn", "--fps", "1000", "--profile", "{d}/ds.prof.json"),
     r"--profile: chip 'powerflow_ref' has array.sparsity: none, so the data does not change its "
     r"cost; give the chip the profile was measured on \(--hw\)$", None),
    ("schedule-deadline-without-profile", (*SKIP_SCHEDULE, "--deadline-on", "p95"),
     r"--deadline-on applies to --profile only; add --profile FILE$", None),
    ("schedule-deadline-bad", (*SKIP_SCHEDULE, "--profile", "{d}/ds.prof.json", "--deadline-on",
                               "p0"),
     r"--deadline-on must be worst, dense or a percentile pNN such as p95, not 'p0'$", None),
    ("schedule-profile-format", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: format: must be 'voltflow-profile/1', not 'voltflow-profile/9'$",
     _profile_edit(_set("format", "voltflow-profile/9"))),
    ("schedule-profile-density", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: summary.layers\[2\].activation_density.max: must be a density in 0..1, not 1.5$",
     _profile_edit(_set("summary/layers/2/activation_density/max", 1.5))),
    ("schedule-profile-weight-density", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: summary.layers\[0\].weight_density: must be a density in 0..1, not -0.1$",
     _profile_edit(_set("summary/layers/0/weight_density", -0.1))),
    ("schedule-profile-negative-pairs", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: operands\[1\].conv2d_1.active_pairs: must be an integer >= 0, not -5$",
     _profile_edit(_set("operands/1/conv2d_1/active_pairs", -5))),
    ("schedule-profile-ticks", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: operands\[0\]: op 'conv2d_1': group 0 tile 0: 64 elements in 3 ticks do not fit 8 "
     r"blocks of 8$",
     _profile_edit(lambda d: (_set("operands/0/conv2d_1/ticks/0/0", 3)(d),
                              _set("operands/0/conv2d_1/streamed/0/0", 64)(d)))),
    ("schedule-profile-not-json", (*SKIP_SCHEDULE, "--profile", "{f}"),
     r"{n}: not valid JSON: line 1: ", _write("p.json", "{nope")),
    ("cosim-inputs-zero", ("cosim", "--net", "ds_cnn", "--hw", "powerflow_ref_skip", "--inputs",
                           "0"), r"--inputs must be at least 1, not 0$", None),
    ("cosim-inputs-and-dir", ("cosim", "--net", "ds_cnn", "--hw", "powerflow_ref_skip",
                              "--inputs", "2", "--input-dir", "{d}"),
     r"give --inputs K or --input-dir DIR, not both$", None),
    ("cosim-profile-without-inputs", ("cosim", "--net", "ds_cnn", "--profile", "{d}/ds.prof.json"),
     r"--profile applies to --inputs or --input-dir only$", None),
    ("cosim-inputs-dense-chip", ("cosim", "--net", "ds_cnn", "--inputs", "2"),
     r"--inputs: chip 'powerflow_ref' has array.sparsity: none, so every input costs the same; "
     r"use --hw powerflow_ref_gate or powerflow_ref_skip \(or a chip with array.sparsity\)$",
     None),
    ("cosim-inputs-frames", ("cosim", "--net", "ds_cnn", "--hw", "powerflow_ref_skip", "--inputs",
                             "2", "--frames", "3"),
     r"--frames does not apply to --inputs \(one period per input, policy rram_pg\); drop "
     r"--frames$", None),
    ("chip-sparsity-unknown", ("model", "--net", "ds_cnn", "--hw", "{f}"),
     r"{n} \(extends powerflow_ref.yaml\): array.sparsity: must be one of none, gate, skip, "
     r"not 'zero'$",
     _write("c.yaml", "extends: powerflow_ref\narray: {sparsity: zero}\n")),
]  # fmt: skip
for name, argv, message, make in SPARSITY_CASES:
    CASES.append(Case(name, argv, USER_ERROR, message, make))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real schedule (ds_cnn, 1000 FPS) and its ROM, and a sparsity profile of ds_cnn on
    powerflow_ref_skip, for the cases that need a good input."""
    d = tmp_path_factory.mktemp("good")
    assert main(["schedule", "--net", "ds_cnn", "--fps", "1000", "-o", str(d / "ok.json")]) == 0
    assert main(["compile", str(d / "ok.json"), "-o", str(d / "ok.hex")]) == 0
    profile = ["profile", "--net", "ds_cnn", "--inputs", "2", "-o", str(d / "ds.prof.json")]
    assert main(profile) == 0
    return d


def test_there_are_at_least_150_cases() -> None:
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, folder: Path, tmp_path: Path, capsys) -> None:
    bad = case.file(tmp_path, folder) if case.file else tmp_path / "unused"
    argv = [a.replace("{f}", str(bad)).replace("{d}", str(folder)) for a in case.argv]
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert status == case.status, err
    message = (
        case.message.replace("{f}", re.escape(str(bad)))
        .replace("{n}", re.escape(bad.name))
        .replace("{d}", re.escape(str(folder)))
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no message"
    last = lines[-1]
    assert re.search(message, last), f"{last!r} does not match {message!r}"
    assert len(last) < 1200, "the message must cut long values"
    # Nothing half-written: the good inputs are untouched, no temporary files are left.
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir() if p in before} == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
