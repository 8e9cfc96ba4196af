"""The subset of IEEE 1801-2013 (UPF 2.1) that voltflow writes: its grammar, a tokenizer and a
parser that refuses anything outside it (docs/upf.md lists the subset).

A UPF file is Tcl. The subset has no Tcl beyond words: one command per line (a ``\\`` at the end
of a line continues it), ``#`` comments at the start of a command, bare words made of name
characters, and brace-quoted lists (nested braces are sub-lists; no substitution happens inside
braces, so a bit-select ``name[3]`` must be braced). No variables, no ``[...]`` command
substitution, no quotes, no ``;``.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMMANDS",
    "UPF_VERSION",
    "Braced",
    "CommandSpec",
    "OptionSpec",
    "UpfCommand",
    "UpfSyntaxError",
    "boolean_names",
    "parse_upf",
]

#: The ``upf_version`` the subset is written in.
UPF_VERSION = "2.1"


class UpfSyntaxError(ValueError):
    """Text outside the subset; the message names the line."""


@dataclass(frozen=True, slots=True)
class Braced:
    """A brace-quoted word: its text (without the outer braces) and its list elements."""

    text: str
    items: tuple["Word", ...]


Word = str | Braced


@dataclass(frozen=True, slots=True)
class UpfCommand:
    """One parsed command: positional arguments and options (one value per occurrence), each
    value already converted by its option's kind (a name, a tuple of names, a pair ...)."""

    name: str
    line: int
    args: tuple[Any, ...]
    options: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        """The value of an option given at most once (None if absent)."""
        values = self.options.get(name, ())
        return values[0] if values else None


# ---- words ---------------------------------------------------------------------------------------
_BARE = re.compile(r"[A-Za-z0-9_./-]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
_SIGNAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*(?:\[\d+\])?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _split_braced(text: str, line: int) -> tuple[Word, ...]:
    """The list elements of a braced word's text (nested braces are sub-lists)."""
    items: list[Word] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise UpfSyntaxError(f"line {line}: unbalanced braces")
            items.append(Braced(text[i + 1 : j - 1], _split_braced(text[i + 1 : j - 1], line)))
            i = j
        elif c == "}":
            raise UpfSyntaxError(f"line {line}: unbalanced braces")
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "{}":
                j += 1
            items.append(text[i:j])
            i = j
    return tuple(items)


def _commands(text: str) -> list[tuple[int, list[Word]]]:
    """Split ``text`` into commands of words, with the line each starts on."""
    commands: list[tuple[int, list[Word]]] = []
    words: list[Word] = []
    start = 0
    i, line = 0, 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] == "\n":  # continuation
            i, line = i + 2, line + 1
        elif c == "\n":
            if words:
                commands.append((start, words))
                words = []
            i, line = i + 1, line + 1
        elif c in " \t\r":
            i += 1
        elif c == "#" and not words:  # a comment: the rest of the line
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            depth, j, first = 1, i + 1, line
            while j < n and depth:
                if text[j] == "\\":
                    raise UpfSyntaxError(f"line {line}: backslash inside braces")
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                line += text[j] == "\n"
                j += 1
            if depth:
                raise UpfSyntaxError(f"line {first}: unbalanced braces")
            if not words:
                start = first
            inner = text[i + 1 : j - 1]
            words.append(Braced(inner, _split_braced(inner, first)))
            i = j
            if i < n and not text[i].isspace():
                raise UpfSyntaxError(f"line {line}: a word must end after its closing brace")
        elif c == "}":
            raise UpfSyntaxError(f"line {line}: unbalanced braces")
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{}":
                j += 1
            word = text[i:j]
            if not _BARE.fullmatch(word):
                bad = next(ch for ch in word if not _BARE.fullmatch(ch))
                raise UpfSyntaxError(
                    f"line {line}: {bad!r} in {word!r}: a bare word has only letters, digits "
                    "and _ . / - (brace a bit-select: {name[3]}; no Tcl substitution)"
                )
            if not words:
                start = line
            words.append(word)
            i = j
    if words:
        commands.append((start, words))
    return commands


# ---- option kinds: each converts a word or raises ValueError saying what it must be ----------
Kind = Callable[[Word], object]


def _text(word: Word, what: str) -> str:
    """A bare word, or a braced word holding exactly one plain element."""
    if isinstance(word, Braced):
        if len(word.items) == 1 and isinstance(word.items[0], str):
            return word.items[0]
        raise ValueError(f"{what}, not the list {{{word.text}}}")
    return word


def _matching(pattern: re.Pattern[str], what: str) -> Kind:
    def convert(word: Word) -> str:
        value = _text(word, what)
        if not pattern.fullmatch(value):
            raise ValueError(f"{what}, not {value!r}")
        return value

    return convert


NAME = _matching(_NAME, "a name")
SIGNAL = _matching(_SIGNAL, "a signal (instance/.../port, with an optional [bit])")
VERSION = _matching(re.compile(re.escape(UPF_VERSION)), f"version {UPF_VERSION}")


def _element(word: Word) -> str:
    value = _text(word, "an instance path or .")
    if value != "." and not _PATH.fullmatch(value):
        raise ValueError(f"an instance path or ., not {value!r}")
    return value


def _supply_port_ref(word: Word) -> str:
    """A supply port: ``name`` or ``switch/port``."""
    value = _text(word, "a supply port")
    if not _PATH.fullmatch(value) or value.count("/") > 1:
        raise ValueError(f"a supply port (name or switch/port), not {value!r}")
    return value


def _enum(*values: str) -> Kind:
    def convert(word: Word) -> str:
        value = _text(word, f"one of {', '.join(values)}")
        if value not in values:
            raise ValueError(f"one of {', '.join(values)}, not {value!r}")
        return value

    return convert


def _list(item: Kind) -> Kind:
    """A braced list (possibly empty) of items, or one bare item."""

    def convert(word: Word) -> tuple[object, ...]:
        if isinstance(word, Braced):
            return tuple(item(w) for w in word.items)
        return (item(word),)

    return convert


def _group(*kinds: Kind, what: str) -> Kind:
    """A braced list of exactly ``len(kinds)`` elements, each of its kind."""

    def convert(word: Word) -> tuple[object, ...]:
        if not isinstance(word, Braced) or len(word.items) != len(kinds):
            shown = f"{{{word.text}}}" if isinstance(word, Braced) else repr(word)
            raise ValueError(f"{what}, not {shown}")
        return tuple(kind(w) for kind, w in zip(kinds, word.items, strict=True))

    return convert


def _boolean(word: Word) -> str:
    """A braced boolean function of control ports: names, ``!``, ``&``, ``|``, parentheses."""
    if not isinstance(word, Braced):
        raise ValueError(f"a braced boolean function, not {word!r}")
    boolean_names(word.text)
    return word.text


def _literal(value: str) -> Kind:
    return _enum(value)


def _volts(word: Word) -> float | None:
    value = _text(word, "a voltage or off")
    if value == "off":
        return None
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"a voltage or off, not {value!r}")
    return float(value)


_BOOL_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[!&|()]))")


def boolean_names(text: str) -> frozenset[str]:
    """The names a boolean function uses; ValueError if it is not ``expr := term ('|' term)*,
    term := factor ('&' factor)*, factor := '!' factor | '(' expr ')' | name``."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _BOOL_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"a boolean of names with ! & | ( ), not {{{text}}}")
        tokens.append(match.group("name") or match.group("op"))
        pos = match.end()
    names: set[str] = set()
    i = 0

    def expect(ok: bool) -> None:
        if not ok:
            raise ValueError(f"a boolean of names with ! & | ( ), not {{{text}}}")

    def factor() -> None:
        nonlocal i
        expect(i < len(tokens))
        token = tokens[i]
        i += 1
        if token == "!":
            factor()
        elif token == "(":
            expression()
            expect(i < len(tokens) and tokens[i] == ")")
            i += 1
        else:
            expect(bool(_NAME.fullmatch(token)))
            names.add(token)

    def term() -> None:
        nonlocal i
        factor()
        while i < len(tokens) and tokens[i] == "&":
            i += 1
            factor()

    def expression() -> None:
        nonlocal i
        term()
        while i < len(tokens) and tokens[i] == "|":
            i += 1
            term()

    expression()
    expect(i == len(tokens))
    return frozenset(names)


# ---- the subset ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OptionSpec:
    kind: Kind
    required: bool = False
    repeat: bool = False  # may be given more than once (each occurrence one value)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command of the subset: its positional arguments' kinds and its options."""

    args: tuple[Kind, ...]
    options: Mapping[str, OptionSpec]


PAIR = _group(NAME, NAME, what="{port net}")
COMMANDS: dict[str, CommandSpec] = {
    "upf_version": CommandSpec((VERSION,), {}),
    "create_supply_port": CommandSpec((NAME,), {"-direction": OptionSpec(_enum("in", "out"))}),
    "create_supply_net": CommandSpec((NAME,), {}),
    "connect_supply_net": CommandSpec((NAME,), {"-ports": OptionSpec(_list(NAME), required=True)}),
    "create_supply_set": CommandSpec(
        (NAME,),
        {
            "-function": OptionSpec(
                _group(_enum("power", "ground"), NAME, what="{power|ground net}"),
                required=True,
                repeat=True,
            )
        },
    ),
    "create_power_domain": CommandSpec(
        (NAME,),
        {
            "-elements": OptionSpec(_list(_element), required=True),
            "-supply": OptionSpec(
                _group(_literal("primary"), NAME, what="{primary supply_set}"), required=True
            ),
        },
    ),
    "create_power_switch": CommandSpec(
        (NAME,),
        {
            "-domain": OptionSpec(NAME, required=True),
            "-output_supply_port": OptionSpec(PAIR, required=True),
            "-input_supply_port": OptionSpec(PAIR, required=True, repeat=True),
            "-control_port": OptionSpec(
                _group(NAME, SIGNAL, what="{port signal}"), required=True, repeat=True
            ),
            "-on_state": OptionSpec(
                _group(NAME, NAME, _boolean, what="{state input_port {boolean}}"),
                required=True,
                repeat=True,
            ),
            "-off_state": OptionSpec(_group(NAME, _boolean, what="{state {boolean}}")),
        },
    ),
    "set_isolation": CommandSpec(
        (NAME,),
        {
            "-domain": OptionSpec(NAME, required=True),
            "-elements": OptionSpec(_list(SIGNAL)),
            "-applies_to": OptionSpec(_enum("inputs", "outputs", "both")),
            "-isolation_signal": OptionSpec(SIGNAL, required=True),
            "-isolation_sense": OptionSpec(_enum("high", "low"), required=True),
            "-clamp_value": OptionSpec(_enum("0", "1"), required=True),
            "-isolation_supply_set": OptionSpec(NAME, required=True),
            "-location": OptionSpec(_enum("self", "parent"), required=True),
        },
    ),
    "set_level_shifter": CommandSpec(
        (NAME,),
        {
            "-domain": OptionSpec(NAME, required=True),
            "-elements": OptionSpec(_list(SIGNAL)),
            "-applies_to": OptionSpec(_enum("inputs", "outputs", "both"), required=True),
            "-source": OptionSpec(NAME),
            "-sink": OptionSpec(NAME),
            "-rule": OptionSpec(_enum("low_to_high", "high_to_low", "both"), required=True),
            "-location": OptionSpec(_enum("self", "parent"), required=True),
        },
    ),
    "set_port_attributes": CommandSpec(
        (),
        {
            "-ports": OptionSpec(_list(SIGNAL), required=True),
            "-driver_supply": OptionSpec(NAME),
            "-receiver_supply": OptionSpec(NAME),
        },
    ),
    "add_port_state": CommandSpec(
        (_supply_port_ref,),
        {
            "-state": OptionSpec(
                _group(NAME, _volts, what="{state voltage|off}"), required=True, repeat=True
            )
        },
    ),
    "create_pst": CommandSpec((NAME,), {"-supplies": OptionSpec(_list(NAME), required=True)}),
    "add_pst_state": CommandSpec(
        (NAME,),
        {
            "-pst": OptionSpec(NAME, required=True),
            "-state": OptionSpec(_list(NAME), required=True),
        },
    ),
}


def _parse(line: int, words: list[Word]) -> UpfCommand:
    head = words[0]
    if not isinstance(head, str) or head not in COMMANDS:
        shown = head if isinstance(head, str) else f"{{{head.text}}}"
        raise UpfSyntaxError(
            f"line {line}: {shown!r} is not a command of the subset ({', '.join(sorted(COMMANDS))})"
        )
    spec = COMMANDS[head]
    args: list[object] = []
    options: dict[str, list[object]] = {}
    i = 1
    while i < len(words):
        word = words[i]
        if isinstance(word, str) and word.startswith("-") and not _NUMBER.fullmatch(word[1:]):
            option = spec.options.get(word)
            if option is None:
                allowed = ", ".join(spec.options) or "none"
                raise UpfSyntaxError(
                    f"line {line}: {head}: {word} is not an option of the subset "
                    f"(allowed: {allowed})"
                )
            if word in options and not option.repeat:
                raise UpfSyntaxError(f"line {line}: {head}: {word} given twice")
            if i + 1 >= len(words):
                raise UpfSyntaxError(f"line {line}: {head}: {word} needs a value")
            try:
                options.setdefault(word, []).append(option.kind(words[i + 1]))
            except ValueError as exc:
                raise UpfSyntaxError(f"line {line}: {head} {word}: must be {exc}") from None
            i += 2
        else:
            if len(args) == len(spec.args):
                shown = word if isinstance(word, str) else f"{{{word.text}}}"
                raise UpfSyntaxError(f"line {line}: {head}: unexpected argument {shown!r}")
            try:
                args.append(spec.args[len(args)](word))
            except ValueError as exc:
                raise UpfSyntaxError(f"line {line}: {head}: the argument must be {exc}") from None
            i += 1
    if len(args) < len(spec.args):
        raise UpfSyntaxError(f"line {line}: {head}: needs {len(spec.args)} argument(s)")
    for name, option in spec.options.items():
        if option.required and name not in options:
            raise UpfSyntaxError(f"line {line}: {head}: {name} is required")
    return UpfCommand(head, line, tuple(args), {k: tuple(v) for k, v in options.items()})


def parse_upf(text: str) -> tuple[UpfCommand, ...]:
    """Parse ``text``: every command, option and value must be in the subset, and the file must
    start with ``upf_version``.

    Raises
    ------
    UpfSyntaxError
        Naming the line and what is outside the subset.
    """
    commands = tuple(_parse(line, words) for line, words in _commands(text))
    if not commands or commands[0].name != "upf_version":
        raise UpfSyntaxError(f"line 1: the file must start with upf_version {UPF_VERSION}")
    if any(c.name == "upf_version" for c in commands[1:]):
        line = next(c.line for c in commands[1:] if c.name == "upf_version")
        raise UpfSyntaxError(f"line {line}: upf_version given twice")
    return commands
