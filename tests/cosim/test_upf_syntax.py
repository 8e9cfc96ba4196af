"""The UPF subset's grammar: what it accepts (every command of the subset) and what it refuses,
each refusal naming the line."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from voltflow.cosim.upf_syntax import COMMANDS, UpfSyntaxError, boolean_names, parse_upf

#: One use of every command of the subset, every option at least once.
EVERY_COMMAND = r"""upf_version 2.1
# a comment; {braces} and [brackets] here are ignored
create_supply_port VDD -direction in
create_supply_net VDD
connect_supply_net VDD -ports {VDD}
create_supply_set SS -function {power VDD} \
    -function {ground VSS}
create_power_domain PD -elements {. core/array} -supply {primary SS}
create_power_domain PD_EMPTY -elements {} -supply {primary SS}
create_power_switch SW -domain PD -output_supply_port {vout VDD_SW} \
    -input_supply_port {vin0 VDD} -input_supply_port {vin1 VDD2} \
    -control_port {sel0 supply__sys__select[0]} -control_port {sel1 pmu/en} \
    -on_state {R0 vin0 {sel0 & !sel1}} -on_state {R1 vin1 {(sel1) | !(sel0 | sel1)}} \
    -off_state {OFF {!sel0 & !sel1}}
set_isolation iso -domain PD -elements {a b__c} -applies_to inputs -isolation_signal pmu/ok \
    -isolation_sense low -clamp_value 0 -isolation_supply_set SS -location self
set_level_shifter ls -domain PD -elements {x} -applies_to outputs -source SS -sink SS \
    -rule both -location parent
set_port_attributes -ports {p q} -driver_supply SS -receiver_supply SS
add_port_state SW/vout -state {V1P10 1.10} -state {OFF off}
create_pst t -supplies {VDD VDD_SW}
add_pst_state s0 -pst t -state {V1P10
    OFF}
"""


def test_every_command_of_the_subset_parses() -> None:
    commands = parse_upf(EVERY_COMMAND)
    assert {c.name for c in commands} == set(COMMANDS)
    used = {(c.name, option) for c in commands for option in c.options}
    declared = {(name, option) for name, spec in COMMANDS.items() for option in spec.options}
    assert used == declared
    switch = next(c for c in commands if c.name == "create_power_switch")
    assert switch.line == 10
    assert switch.options["-control_port"] == (
        ("sel0", "supply__sys__select[0]"),
        ("sel1", "pmu/en"),
    )
    assert switch.option("-off_state") == ("OFF", "!sel0 & !sel1")
    pst_state = commands[-1]
    assert pst_state.line == 22 and pst_state.option("-state") == ("V1P10", "OFF")
    empty = next(c for c in commands if c.args == ("PD_EMPTY",))
    assert empty.option("-elements") == ()
    state = next(c for c in commands if c.name == "add_port_state")
    assert state.options["-state"] == (("V1P10", 1.1), ("OFF", None))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("create_supply_net VDD\n", r"line 1: the file must start with upf_version 2.1"),
        ("upf_version 3.0\n", r"line 1: upf_version: the argument must be version 2.1"),
        ("upf_version 2.1\nupf_version 2.1\n", r"line 2: upf_version given twice"),
        ("upf_version 2.1\nset_scope core\n", r"line 2: 'set_scope' is not a command of the"),
        ("upf_version 2.1\ncreate_supply_port V -dir in\n", r"line 2: create_supply_port: -dir "
                                                           r"is not an option of the subset"),
        ("upf_version 2.1\ncreate_supply_port V -direction inout\n",
         r"line 2: create_supply_port -direction: must be one of in, out, not 'inout'"),
        ("upf_version 2.1\ncreate_supply_port V -direction in -direction in\n",
         r"line 2: create_supply_port: -direction given twice"),
        ("upf_version 2.1\ncreate_supply_port\n", r"line 2: create_supply_port: needs 1 argum"),
        ("upf_version 2.1\ncreate_supply_net A B\n", r"line 2: create_supply_net: unexpected "
                                                     r"argument 'B'"),
        ("upf_version 2.1\nconnect_supply_net A\n", r"line 2: connect_supply_net: -ports is "
                                                    r"required"),
        ("upf_version 2.1\nconnect_supply_net A -ports\n", r"line 2: connect_supply_net: -ports "
                                                           r"needs a value"),
        ("upf_version 2.1\ncreate_supply_net V[0]\n", r"line 2: '\[' in 'V\[0\]': a bare word "
                                                      r"has only"),
        ("upf_version 2.1\ncreate_supply_net $v\n", r"line 2: '\$' in '\$v'"),
        ("upf_version 2.1\ncreate_supply_net {V\n", r"line 2: unbalanced braces"),
        ("upf_version 2.1\ncreate_supply_net V}\n", r"line 2: unbalanced braces"),
        ("upf_version 2.1\ncreate_supply_net {V}x\n", r"line 2: a word must end after its "
                                                      r"closing brace"),
        ("upf_version 2.1\ncreate_supply_net {a\\b}\n", r"line 2: backslash inside braces"),
        ("upf_version 2.1\ncreate_supply_set S -function {power}\n",
         r"line 2: create_supply_set -function: must be \{power\|ground net\}, not \{power\}"),
        ("upf_version 2.1\ncreate_supply_set S -function {vdd V}\n",
         r"-function: must be one of power, ground, not 'vdd'"),
        ("upf_version 2.1\ncreate_power_domain P -elements {a//b} -supply {primary S}\n",
         r"-elements: must be an instance path or ., not 'a//b'"),
        ("upf_version 2.1\ncreate_power_domain P -elements {} -supply {main S}\n",
         r"-supply: must be one of primary, not 'main'"),
        ("upf_version 2.1\nset_isolation i -domain P -isolation_signal x -isolation_sense low "
         "-clamp_value 2 -isolation_supply_set S -location self\n",
         r"-clamp_value: must be one of 0, 1, not '2'"),
        ("upf_version 2.1\nadd_port_state P -state {ON high}\n", r"must be a voltage or off, not "
                                                                 r"'high'"),
        ("upf_version 2.1\nadd_port_state a/b/c -state {ON 1}\n", r"a supply port \(name or "
                                                                  r"switch/port\)"),
        ("upf_version 2.1\ncreate_power_switch S -domain P -output_supply_port {o N} "
         "-input_supply_port {i N} -control_port {c x} -on_state {ON i {c &}}\n",
         r"-on_state: must be a boolean of names with ! & \| \( \), not \{c &\}"),
        ("upf_version 2.1\ncreate_power_switch S -domain P -output_supply_port {o N} "
         "-input_supply_port {i N} -control_port {c x[y]} -on_state {ON i {c}}\n",
         r"-control_port: must be a signal"),
    ],
)  # fmt: skip
def test_text_outside_the_subset_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(UpfSyntaxError, match=message):
        parse_upf(text)


def test_continuations_comments_and_nested_braces_keep_line_numbers() -> None:
    text = "upf_version 2.1\n\n# c\n  # indented comment\ncreate_supply_net \\\n  A\n"
    commands = parse_upf(text + "create_pst t -supplies {A\n\nB}\ncreate_supply_net C\n")
    assert [(c.name, c.line) for c in commands] == [
        ("upf_version", 1),
        ("create_supply_net", 5),
        ("create_pst", 7),
        ("create_supply_net", 10),
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a", {"a"}),
        ("!a & (b | !c)", {"a", "b", "c"}),
        ("((x))", {"x"}),
        ("a|b&c", {"a", "b", "c"}),
    ],
)
def test_boolean_functions(text: str, names: set[str]) -> None:
    assert boolean_names(text) == names


@pytest.mark.parametrize("text", ["", "a &", "& a", "(a", "a)", "a b", "!", "a && b", "a ^ b"])
def test_malformed_boolean_functions(text: str) -> None:
    with pytest.raises(ValueError, match="a boolean of names"):
        boolean_names(text)


_names = st.sampled_from(["a", "b", "en0", "sel_1"])


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(_names)
    kind = draw(st.sampled_from(["not", "and", "or", "paren"]))
    inner = _expressions(depth - 1)
    if kind == "not":
        return "!" + draw(inner)
    if kind == "paren":
        return f"({draw(inner)})"
    return f"{draw(inner)} {'&' if kind == 'and' else '|'} {draw(inner)}"


@given(_expressions())
def test_every_expression_of_the_grammar_parses_with_its_names(text: str) -> None:
    used = {n for n in ("a", "b", "en0", "sel_1") if n in text.replace("(", " ").replace(")", " ")
            .replace("!", " ").split()}  # fmt: skip
    assert boolean_names(text) == used
    parse_upf(
        "upf_version 2.1\ncreate_power_switch S -domain P -output_supply_port {o N} "
        "-input_supply_port {i N} -control_port {a x} "
        f"-on_state {{ON i {{{text}}}}}\n"
    )


def test_a_list_inside_a_list_of_names_is_refused() -> None:
    (_, command) = parse_upf("upf_version 2.1\ncreate_pst t -supplies { A  {B} }\n")
    assert command.option("-supplies") == ("A", "B")  # a braced single name is that name
    with pytest.raises(UpfSyntaxError, match=r"-supplies: must be a name, not the list \{B C\}"):
        parse_upf("upf_version 2.1\ncreate_pst t -supplies {A {B C}}\n")
