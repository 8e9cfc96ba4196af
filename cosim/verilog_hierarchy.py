"""A small reader of generated Verilog: modules, their ports and nets, and the instance tree.

Enough of Verilog-2005 for what Amaranth (through Yosys) writes: non-ANSI module headers,
``input``/``output``/``inout``/``wire``/``reg`` declarations with packed ranges, escaped
identifiers, and instances ``module_name instance_name (...)`` (optionally with ``#(...)``).
Behavioural code is skipped statement by statement. The power-intent checks (``cosim/upf_check.py``)
resolve the UPF's instance paths, ports and control signals against it.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "PortDirection",
    "VerilogDesign",
    "VerilogError",
    "VerilogModule",
    "VerilogPort",
    "read_verilog",
]

PortDirection = str  # "input", "output" or "inout"


class VerilogError(ValueError):
    """Verilog text the reader cannot follow (names the line)."""


@dataclass(frozen=True, slots=True)
class VerilogPort:
    name: str
    direction: PortDirection
    width: int


@dataclass(frozen=True, slots=True)
class VerilogModule:
    """One module: ports (declared), nets (``wire``/``reg``, by packed width) and instances
    (instance name -> module name)."""

    name: str
    ports: Mapping[str, VerilogPort]
    nets: Mapping[str, int]
    instances: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class VerilogDesign:
    """Every module of a Verilog text and the top (the module no other one instantiates)."""

    modules: Mapping[str, VerilogModule]
    top: str

    def scope(self, path: str) -> VerilogModule | None:
        """The module instantiated at ``path`` (instance names separated by ``/``; ``.`` or
        the empty string is the top), or None if there is no such instance."""
        module = self.modules[self.top]
        if path in ("", "."):
            return module
        for name in path.split("/"):
            child = module.instances.get(name)
            if child is None or child not in self.modules:
                return None
            module = self.modules[child]
        return module


# Tokens: escaped identifiers (backslash to whitespace), identifiers, based and plain numbers,
# strings, and single punctuation characters. Comments and attributes are removed first.
_TOKEN = re.compile(
    r"""\\(?P<escaped>\S+)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<number>(?:\d+)?'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+|\d+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<system>\$[A-Za-z0-9_$]+)
      | (?P<punct>[^\sA-Za-z0-9_])""",
    re.VERBOSE,
)
#: Comments, attributes ``(* ... *)`` and compiler directives (`` `timescale ``) are skipped.
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*|\(\*(?!\)).*?\*\)|`[^\n]*", re.DOTALL)
_DECLARATIONS = {"input", "output", "inout", "wire", "reg"}
_KEYWORDS = _DECLARATIONS | {
    "module", "endmodule", "assign", "always", "initial", "begin", "end", "if", "else", "case",
    "casez", "casex", "endcase", "default", "for", "function", "endfunction", "task", "endtask",
    "integer", "genvar", "generate", "endgenerate", "localparam", "parameter", "signed",
    "posedge", "negedge", "or", "and", "not", "supply0", "supply1", "tri",
}  # fmt: skip
#: Keywords that end a block without a semicolon: skipped at the start of a statement.
_BLOCK_ENDS = {"end", "endcase", "endfunction", "endtask", "endgenerate", "else", "begin"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    line: int


def _tokens(text: str) -> Iterator[_Token]:
    # Keep line numbers: comments and attributes become as many newlines as they held.
    text = _COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n") + " ", text)
    line = 1
    pos = 0
    for match in _TOKEN.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        kind = match.lastgroup
        assert kind is not None
        value = match.group("escaped") if kind == "escaped" else match.group(0)
        yield _Token("ident" if kind == "escaped" else kind, value, line)


def _statements(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """Split at top-level ``;`` (and around ``endmodule``, which has none)."""
    current: list[_Token] = []
    for token in tokens:
        if token.kind == "ident" and token.text == "endmodule":
            if current:
                yield current
            yield [token]
            current = []
        elif token.text == ";":
            yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


def _width(tokens: list[_Token], i: int) -> tuple[int, int]:
    """The width of a packed range ``[msb:lsb]`` at ``tokens[i]`` (1 without one), and the
    index after it."""
    if i >= len(tokens) or tokens[i].text != "[":
        return 1, i
    close = next((j for j in range(i, len(tokens)) if tokens[j].text == "]"), None)
    if close is None or close - i != 4 or tokens[i + 2].text != ":":
        raise VerilogError(f"line {tokens[i].line}: a range must be [msb:lsb] with numbers")
    try:
        msb, lsb = int(tokens[i + 1].text), int(tokens[i + 3].text)
    except ValueError:
        raise VerilogError(
            f"line {tokens[i].line}: a range must be [msb:lsb] with numbers"
        ) from None
    return abs(msb - lsb) + 1, close + 1


class _ModuleBuilder:
    def __init__(self, name: str, header: list[str]) -> None:
        self.name = name
        self.header = header
        self.ports: dict[str, VerilogPort] = {}
        self.nets: dict[str, int] = {}
        self.instances: dict[str, str] = {}

    def declaration(self, statement: list[_Token]) -> None:
        keyword = statement[0].text
        i = 1
        while i < len(statement) and statement[i].text in ("signed", "wire", "reg"):
            i += 1
        width, i = _width(statement, i)
        names = []
        while i < len(statement):
            token = statement[i]
            if token.kind == "ident":
                names.append(token.text)
                i += 1
                if i < len(statement) and statement[i].text == "[":  # an array: skip its range
                    _, i = _width(statement, i)
                if i < len(statement) and statement[i].text == "=":  # an initialiser: stop
                    break
            elif token.text == ",":
                i += 1
            else:
                raise VerilogError(
                    f"line {token.line}: unexpected {token.text!r} in a {keyword} declaration"
                )
        for name in names:
            if keyword in ("wire", "reg"):
                self.nets[name] = width
            else:
                if name not in self.header:
                    raise VerilogError(
                        f"line {statement[0].line}: {keyword} {name} is not in the port list of "
                        f"module {self.name}"
                    )
                self.ports[name] = VerilogPort(name, keyword, width)

    def instance(self, statement: list[_Token]) -> bool:
        """Record ``module [#(...)] name (...)``; False if the statement is not an instance."""
        first = statement[0]
        if first.kind != "ident" or first.text in _KEYWORDS or len(statement) < 3:
            return False
        i = 1
        if statement[i].text == "#":  # parameters: skip the parenthesised list
            depth = 0
            for j in range(i + 1, len(statement)):
                depth += {"(": 1, ")": -1}.get(statement[j].text, 0)
                if depth == 0:
                    i = j + 1
                    break
            else:
                return False
        if i + 1 >= len(statement) or statement[i].kind != "ident" or statement[i + 1].text != "(":
            return False
        self.instances[statement[i].text] = first.text
        return True

    def build(self) -> VerilogModule:
        missing = [p for p in self.header if p not in self.ports]
        if missing:
            raise VerilogError(f"module {self.name}: port {missing[0]} has no direction")
        return VerilogModule(self.name, self.ports, self.nets, self.instances)


def read_verilog(text: str) -> VerilogDesign:
    """Read the modules, ports, nets and instances of ``text``.

    Raises
    ------
    VerilogError
        If a module header, declaration or range cannot be read, or the text has no single top.
    """
    modules: dict[str, VerilogModule] = {}
    builder: _ModuleBuilder | None = None
    for statement in _statements(list(_tokens(text))):
        while statement and statement[0].text in _BLOCK_ENDS:
            statement = statement[1:]
        if not statement:
            continue
        head = statement[0].text
        if head == "module":
            if builder is not None or len(statement) < 2 or statement[1].kind != "ident":
                raise VerilogError(f"line {statement[0].line}: a module header is not readable")
            header = [t.text for t in statement[2:] if t.kind == "ident"]
            builder = _ModuleBuilder(statement[1].text, header)
        elif head == "endmodule":
            if builder is None:
                raise VerilogError(f"line {statement[0].line}: endmodule outside a module")
            if builder.name in modules:
                raise VerilogError(f"line {statement[0].line}: module {builder.name} twice")
            modules[builder.name] = builder.build()
            builder = None
        elif builder is None:
            continue  # directives such as `timescale produce no statements we need
        elif head in _DECLARATIONS:
            builder.declaration(statement)
        else:
            builder.instance(statement)
    if builder is not None:
        raise VerilogError(f"module {builder.name} has no endmodule")
    used = {child for module in modules.values() for child in module.instances.values()}
    tops = [name for name in modules if name not in used]
    if len(tops) != 1:
        raise VerilogError(f"the text must have one top module, not {tops}")
    return VerilogDesign(modules, tops[0])
