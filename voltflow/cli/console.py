"""What the `voltflow` command prints: the user-error type, table-or-JSON output, progress lines."""

import argparse
import json
import sys
import time
from typing import IO, Any, TextIO

from voltflow.scheduler.documents import DocumentError, check_output_path

__all__ = [
    "INTERRUPTED",
    "USER_ERROR",
    "CliError",
    "LazyFile",
    "StatusLine",
    "StderrProgress",
    "check_writable",
    "emit",
    "only_with",
]

#: Exit status of a user error (bad argument, bad or missing file), printed as one line.
USER_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def only_with(mode: str, *flags: tuple[str, object, object], add: str | None = None) -> None:
    """A CliError for the first (flag, value, default) given away from its default: the flag
    applies to ``mode`` only (``add``: the flag that enables it, named as the fix)."""
    for flag, value, unset in flags:
        if value != unset:
            fix = f"; add {add}" if add else ""
            raise CliError(f"{flag} applies to {mode} only{fix}")


def check_writable(path: str) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    try:
        check_output_path(path)
    except DocumentError as exc:
        raise CliError(str(exc)) from None


class LazyFile:
    """A text file opened (and truncated) on the first write, so that a run that fails before
    producing anything leaves an existing file untouched."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def write(self, text: str) -> int:
        if self.handle is None:
            self.handle = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        return self.handle.write(text)

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def emit(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    """Print ``report`` as JSON with ``--json``, else ``text``."""
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)


class StatusLine:
    """A progress line on ``stream``: rewritten in place on a terminal, else printed at most every
    ``every_s`` seconds (logs stay short). Thread-safe enough for one writer thread."""

    def __init__(self, stream: Any, every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every_s = every_s
        self.clock = time.monotonic
        self.last = -every_s
        self.shown = False

    def __call__(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r      {text}\x1b[K")
            self.stream.flush()
            self.shown = True
        elif self.clock() - self.last >= self.every_s:
            self.last = self.clock()
            print(f"      {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.shown = False


class StderrProgress:
    """The flow's progress (`voltflow.cosim.flow.FlowProgress`) on ``stream``: steps as lines,
    the frames' or ops' progress on one `StatusLine`, ended before the next step."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.line = StatusLine(stream)

    def step(self, text: str) -> None:
        self.line.close()
        print(text, file=self.stream)

    def status(self, text: str) -> None:
        self.line(text)

    def close(self) -> None:
        self.line.close()
