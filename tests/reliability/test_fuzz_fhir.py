"""Fuzzing the FHIR ingest: request parsing, validation and translation on mutated resources.

Seeds: the bundled examples/fhir and the third-party corpus (../shared/corpus/fhir), JSON and
XML. Byte mutations hit the parsers; structural JSON mutations reach validation and the
translators. A body the hub refuses raises FhirRejected (a MalformedMessage) with issues; a unit
that fails is a Failure naming its position and element path. Nothing else may escape.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.fhir.errors import FhirRejected
from tests.reliability.fuzzing import (
    BUDGETS,
    CORPUS,
    EXAMPLES,
    assert_failures_located,
    fuzz,
    mutated,
    mutated_json,
    translate_or_refuse,
)

FILES = sorted((EXAMPLES / "fhir").glob("*.*")) + sorted((CORPUS / "fhir").glob("*.*"))
JSON_FILES = [p for p in FILES if p.suffix == ".json"]
XML_FILES = [p for p in FILES if p.suffix == ".xml"]
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.3",
        "application/fhir+json; fhirVersion=5.0",
    ]
)
XML_TYPES = st.sampled_from([None, "application/fhir+xml", "application/fhir+xml; fhirVersion=4.3"])


def test_the_seeds_are_there() -> None:
    assert len(JSON_FILES) >= 10
    assert len(XML_FILES) >= 3


def _translate(case: tuple[bytes, str | None]) -> None:
    data, content_type = case
    metadata = {"content_type": content_type} if content_type else {}
    outcome = translate_or_refuse("fhir", data, "fuzz-body", metadata)
    if isinstance(outcome, MalformedMessage):
        assert isinstance(outcome, FhirRejected), type(outcome)
        assert outcome.issues, "a refusal carries the issues of its OperationOutcome"
        return
    assert_failures_located(outcome, needs_line=False)
    for failure in outcome.failures:
        assert failure.position == "resource" or failure.position.startswith("entry:"), failure


@pytest.mark.parametrize("budget", BUDGETS)
def test_json_bodies_byte_mutated(budget: int) -> None:
    seeds = st.sampled_from([p.read_bytes() for p in JSON_FILES])
    fuzz(budget, st.tuples(mutated(seeds), CONTENT_TYPES), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_json_bodies_structurally_mutated(budget: int) -> None:
    """Elements replaced by nulls, numbers, objects and odd strings; elements dropped or added."""
    documents = [json.loads(p.read_bytes()) for p in JSON_FILES]
    fuzz(budget, st.tuples(mutated_json(documents), CONTENT_TYPES), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_xml_bodies_byte_mutated(budget: int) -> None:
    seeds = st.sampled_from([p.read_bytes() for p in XML_FILES])
    fuzz(budget, st.tuples(mutated(seeds), XML_TYPES), _translate)
