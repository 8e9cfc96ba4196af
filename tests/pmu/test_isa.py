"""The PMU command word: round trips through the one layout, illegal words, generated docs."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from voltflow.pmu.isa import (
    _PAYLOAD_FIELDS,
    OPCODE_BITS,
    DomainCode,
    IsaError,
    Opcode,
    decode,
    encode,
    isa_markdown,
)


@st.composite
def commands(draw):
    opcode = draw(st.sampled_from(list(Opcode)))
    args = {}
    for name, width in _PAYLOAD_FIELDS[opcode].items():
        if name == "domain":
            args[name] = draw(st.sampled_from(list(DomainCode)))
        else:
            args[name] = draw(st.integers(0, (1 << width) - 1))
    return opcode, args


@given(commands())
def test_every_command_round_trips(command) -> None:
    opcode, args = command
    word = encode(opcode, **args)
    assert 0 <= word < 1 << 64
    instr = decode(word)
    assert instr.opcode is opcode
    for name, value in args.items():
        assert instr[name] == (value.value if isinstance(value, DomainCode) else value)


@given(st.integers(0, (1 << 64) - 1))
def test_any_word_decodes_to_a_command_that_reencodes_or_is_rejected(word) -> None:
    try:
        instr = decode(word)
    except IsaError:
        return
    args = {n: DomainCode(v) if n == "domain" else v for n, v in instr.args}
    assert encode(instr.opcode, **args) == word


def test_illegal_words_and_fields_are_named() -> None:
    with pytest.raises(IsaError, match=r"^illegal opcode 18 in word 0x0000000000000012$"):
        decode(18)
    with pytest.raises(IsaError, match=r"^illegal opcode 31 in word 0x000000000000001f$"):
        decode(31)
    connect = encode(Opcode.CONNECT, domain=DomainCode.SYS, rail=1)
    with pytest.raises(IsaError, match=r"^illegal domain code in word 0x00000000000000e4$"):
        decode(connect | (3 << OPCODE_BITS))
    with pytest.raises(IsaError, match=r"bits above bit 9 must be 0 for CONNECT$"):
        decode(connect | (1 << 40))
    with pytest.raises(IsaError, match=r"^SET_RAIL\.level must be an integer in 0\.\.15, not 16$"):
        encode(Opcode.SET_RAIL, rail=0, level=16)
    with pytest.raises(IsaError, match=r"^LAUNCH takes fields first, count, lead, not first$"):
        encode(Opcode.LAUNCH, first=0)


def test_disassembly_text() -> None:
    assert (
        str(decode(encode(Opcode.CONNECT, domain=DomainCode.RRAM, rail=2)))
        == "CONNECT rram, rail=2"
    )
    assert str(decode(encode(Opcode.GATE, group=1, mask=0xF0))) == "GATE group=1, mask=0x000000f0"
    assert str(decode(encode(Opcode.IDLE))) == "IDLE"


def test_generated_docs_are_current() -> None:
    doc = Path(__file__).parents[2] / "docs" / "pmu-isa.md"
    hint = "regenerate: python -m voltflow.pmu.isa > docs/pmu-isa.md"
    assert doc.read_text() == isa_markdown(), hint
