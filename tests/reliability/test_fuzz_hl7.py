"""Fuzzing the HL7 v2 path: decode, header, tokeniser and translator on mutated real messages.

Seeds are the third-party corpus (../shared/corpus/hl7v2) and the bundled examples/his. Two
kinds of mutation: byte-level (delimiters, frame bytes, GBK lead bytes, escapes, cuts) and
field-level (one field of one segment replaced by text made of delimiters, escapes and CJK), the
second reaching the handlers behind a readable MSH. Only MalformedMessage may escape; every
Failure names its segment.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.his.batch import split_messages
from adapters.his.decode import decode
from adapters.his.header import header
from adapters.his.tokenize import tokenise
from tests.reliability.fuzzing import (
    BUDGETS,
    CORPUS,
    EXAMPLES,
    assert_failures_located,
    fuzz,
    mutated,
    translate_or_refuse,
)

SAMPLES = sorted((CORPUS / "hl7v2").glob("*.hl7")) + sorted((EXAMPLES / "his").glob("*.hl7"))
SEEDS = st.sampled_from([p.read_bytes() for p in SAMPLES])
FIELD_TEXT = st.text(alphabet=st.sampled_from(list("|^~\\&XF0D.E5A9 -:/呼吸机\r\n")), max_size=24)


def test_the_seeds_are_there() -> None:
    """The corpus and the examples are found: a fuzz run over no seeds would prove nothing."""
    assert len(SAMPLES) >= 25


@st.composite
def field_mutated(draw: st.DrawFn) -> bytes:
    """A sample with a few fields replaced, line breaks and the message's charset kept."""
    data = draw(SEEDS)
    codec = decode(data).encoding
    lines = data.decode(codec).replace("\r\n", "\r").replace("\n", "\r").split("\r")
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        fields = lines[index].split("|")
        position = draw(st.integers(1 if index == 0 else 0, len(fields)))
        value = draw(FIELD_TEXT)
        if position == len(fields):
            fields.append(value)
        else:
            fields[position] = value
        lines[index] = "|".join(fields)
    return "\r".join(lines).encode(codec, errors="replace")


def _read_everything(data: bytes) -> None:
    """split -> decode -> header -> tokenise -> every field, component and subcomponent read."""
    for part in split_messages(data):
        assert part.startswith(b"MSH")
    try:
        decoded = decode(data)
        header(data)
        message = tokenise(decoded.text, decoded.encoding, strict=False)
    except MalformedMessage:
        return
    for segment in message.segments():
        for n in range(1, len(segment.fields) + 2):
            segment.repetitions(n)
            segment.field(n)
            segment.field(n, 1)
            segment.field(n, 2, repetition=1, subcomponent=2)
    try:
        message.check_segments()
    except MalformedMessage:
        return


def _translate(data: bytes) -> None:
    outcome = translate_or_refuse("his", data, "fuzz.hl7")
    assert_failures_located(outcome, needs_line=True)
    if not isinstance(outcome, MalformedMessage):
        assert all(f.location.segment for f in outcome.failures)


@pytest.mark.parametrize("budget", BUDGETS)
def test_reading_mutated_messages_raises_only_malformed(budget: int) -> None:
    """Byte-mutated messages: decode, header and the tokeniser refuse with MalformedMessage or read."""
    fuzz(budget, mutated(SEEDS), _read_everything)


@pytest.mark.parametrize("budget", BUDGETS)
def test_translating_byte_mutated_messages_is_contained(budget: int) -> None:
    """The translator on byte-mutated messages: events, located failures, or MalformedMessage."""
    fuzz(budget, mutated(SEEDS), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_translating_field_mutated_messages_is_contained(budget: int) -> None:
    """Fields replaced by delimiters, escapes and CJK text: failures name their segment."""
    fuzz(budget, field_mutated(), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_arbitrary_bytes_after_an_msh_prefix(budget: int) -> None:
    """Random bytes behind a valid-looking MSH start: header and translator stay contained."""
    prefix = b"MSH|^~\\&|"
    fuzz(budget, st.binary(max_size=400).map(lambda b: prefix + b), _translate)
