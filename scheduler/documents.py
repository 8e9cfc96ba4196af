"""The user's files: read safely (bounded size, depth and expansion, no duplicate keys) and
written atomically (a temporary file renamed into place, so nothing is ever left half written).

Every loader of a user file (network, chip, instance, schedule) reads it through this module, so a
file that is missing, is a folder, is not UTF-8, repeats a key, nests absurdly deep or expands an
alias bomb gets one clear :class:`DocumentError` naming the file, never a traceback. Values quoted
in error messages go through :func:`short`, which bounds their length whatever their size.
"""

import json
import os
import reprlib
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "DocumentError",
    "check_output_path",
    "parse_json",
    "parse_yaml",
    "read_text",
    "short",
    "write_atomic",
]

#: Largest file read (bytes): far above the largest real instance (a few MB), far below memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Deepest nesting of mappings and lists (the formats nest at most five levels).
MAX_DEPTH = 64
#: Most values a YAML document may expand to once its aliases are followed (billion-laughs bound).
MAX_NODES = 2_000_000

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = 8
_SHORT.maxdict = 6
_SHORT.maxlevel = 3
_SHORT.maxlong = 40
_MAX_SHORT = 120  # characters of a quoted value at most (plus its length, for a long string)


class DocumentError(ValueError):
    """A user file that cannot be read or parsed; the message starts with the file's name.

    For a syntax error, ``where`` is ``"line L, column C"`` (or empty) and ``problem`` the
    parser's reason, for loaders that word their messages their own way.
    """

    def __init__(self, message: str, *, where: str = "", problem: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.problem = problem


def short(value: object) -> str:
    """``repr(value)`` for messages, cut to a bounded length (long strings also say their length).

    Small values print exactly as ``repr``; nothing is expanded beyond the bounds, so a huge or
    self-similar value (an alias bomb) costs no more than a short one.
    """
    text = _SHORT.repr(value)
    if len(text) > _MAX_SHORT:
        text = text[: _MAX_SHORT - 3] + "..."
    if isinstance(value, str) and len(value) > _SHORT.maxstring:
        text += f" ({len(value):,} characters)"
    return text


def read_text(path: str | os.PathLike[str], label: str | None = None) -> str:
    """The UTF-8 text of ``path``; every failure is a :class:`DocumentError` naming the file."""
    label = label or str(path)
    path = Path(path)
    try:
        if path.is_dir():
            raise DocumentError(f"{label}: is a folder, not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"{label}: is {size:,} bytes; files up to {MAX_FILE_BYTES:,} bytes are read"
            )
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{label}: is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save it as UTF-8"
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and bounds nesting and alias expansion."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = seen.get(key)
            except TypeError:  # unhashable key: SafeLoader reports it below
                continue
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {short(key)} (first on line {earlier.start_mark.line + 1}); "
                    "each key may appear once",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _check_tree(root: yaml.Node, label: str) -> None:
    """Depth <= MAX_DEPTH and at most MAX_NODES values with aliases expanded (iteratively)."""
    size: dict[int, int] = {}
    # Post-order walk of the node DAG (an alias is the same node object reached twice).
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            raise DocumentError(
                f"{label}: line {line}: nested deeper than {MAX_DEPTH} levels; "
                "the format nests a few levels only"
            )
        children = _children(node)
        if done:
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > MAX_NODES:
                raise DocumentError(
                    f"{label}: expands to more than {MAX_NODES:,} values once its aliases (*name) "
                    "are followed; write the values out or use fewer aliases"
                )
            continue
        if id(node) in size:
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_yaml(text: str, label: str) -> Any:
    """Parse one YAML document strictly; errors name the file, line and column."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader rejects control characters already here
        root = loader.get_single_node()
        if root is None:
            return None
        _check_tree(root, label)
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(
            f"{label}: {where + ': ' if where else ''}not valid YAML: {problem}",
            where=where,
            problem=problem,
        ) from None
    except RecursionError:
        raise DocumentError(
            f"{label}: nested too deeply to read; the format nests a few levels only"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {short(key)}; each key may appear once")
        out[key] = value
    return out


def parse_json(text: str, label: str) -> Any:
    """Parse JSON strictly (no duplicate keys, bounded depth); errors name the file and line."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{label}: is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:  # a duplicate key
        raise DocumentError(f"{label}: {error}") from None
    except RecursionError:
        raise DocumentError(
            f"{label}: nested too deeply to read; the format nests a few levels only"
        ) from None
    _check_depth(data, label)
    return data


def _check_depth(data: Any, label: str) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DocumentError(f"{label}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Refuse an output path that names a folder or lies in a missing one (before any work)."""
    target = Path(path)
    if target.is_dir():
        raise DocumentError(f"{target}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise DocumentError(f"{target}: the folder {target.parent} does not exist; create it first")
    return target


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> None:
    """Write ``content`` to ``path`` all at once: into a temporary file beside it, then renamed.

    A reader (or a later run) sees the old file or the new one, never a partial one; an
    interrupted or failed write leaves no temporary file. Failures are a :class:`DocumentError`
    naming the file and the reason.
    """
    target = check_output_path(path)
    folder = target.parent
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DocumentError(f"{target}: cannot write the file: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise DocumentError(f"{target}: cannot write the file: {exc.strerror or exc}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
