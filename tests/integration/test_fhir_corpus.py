"""Every real-world FHIR file in ../shared/corpus/fhir is translated or refused with a clear reason.

The table below states, per file, what the FHIR adapter does with it: the release it is read as,
the events it gives, what it skips and why, or the elements its refusal names. A new corpus file
fails the suite until it has a row here. The same files then go through the HTTP edge's call
(`parse_request`), whose refusal must become an OperationOutcome naming the elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources import get_fhir_model_class

from adapters.fhir import FhirRejected, operation_outcome, parse_request, read_request
from adapters.fhir.translate import SUPPLY_REQUEST_SKIP
from adapters.fhir.validate import Invalid, Valid
from schemas.ids import item_id_for
from tests.unit.adapters._fhir import mapping, payloads, run

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "fhir"

if not CORPUS.is_dir():
    pytest.skip(
        f"!!! FHIR corpus folder {CORPUS} is absent: the real-world robustness walk did NOT run !!!",
        allow_module_level=True,
    )

RENAMED_UDI = "unknown element in FHIR R4B (an STU3 element: R4 and later renamed it udiCarrier)"
RENAMED_MODEL = "unknown element in FHIR R4B (an STU3 element: R4 and later renamed it modelNumber)"


@dataclass(frozen=True)
class Expect:
    """What happens to one corpus file."""

    version: str | None = None  # the release it validates as; None: it fails validation
    events: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    refused: tuple[tuple[str, str, str], ...] = ()  # (code, element path, reason) of each error issue
    note: str = field(default="", compare=False)


EXPECTED: dict[str, Expect] = {
    "build_inventoryitem-example.xml": Expect(
        version="R5",
        refused=(
            (
                "required",
                "InventoryItem.code",
                "names no item: it needs a coding, a GTIN/UDI or a reference to the item",
            ),
            ("required", "InventoryItem.name", "an item definition needs a name"),
        ),
        note="valid R5 stub (id + status only): nothing to define an item with",
    ),
    "build_inventoryreport-example.xml": Expect(
        refused=(
            ("required", "InventoryReport.countType", "required element is missing"),
            ("required", "InventoryReport.reportedDateTime", "required element is missing"),
        ),
        note="R5 stub with status only; countType and reportedDateTime are 1..1 (SOURCES.md known gap)",
    ),
    "r4b_supplydelivery-example.json": Expect(
        version="R4B",
        events=("inventory.received",),
        note="single suppliedItem: R5 fails (it made suppliedItem a list), R4B validates",
    ),
    "r4b_supplyrequest-example-simpleorder.json": Expect(
        version="R4B",
        skipped=(f"resource: {SUPPLY_REQUEST_SKIP}",),
        note="itemCodeableConcept/reasonCode are R4B shapes; archived, no canonical event",
    ),
    "stu3era_device-example-udi1_GS1.xml": Expect(
        refused=(("structure", "Device.udi", RENAMED_UDI), ("structure", "Device.model", RENAMED_MODEL)),
        note="STU3 `udi` and `model`; R5 also rejects `patient`, so the R4B reading is reported",
    ),
    "stu3era_device-example-udi3_HIBCC.xml": Expect(
        refused=(("structure", "Device.udi", RENAMED_UDI), ("structure", "Device.model", RENAMED_MODEL)),
        note="same STU3 shape, HIBCC carrier",
    ),
}


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_file())


def content_type(name: str) -> str:
    return "application/fhir+xml" if name.endswith(".xml") else "application/fhir+json"


class TestCorpus:
    def test_every_file_has_an_expectation(self) -> None:
        """Each file in the corpus folder has a row in EXPECTED, and each row a file."""
        assert corpus_files() == sorted(EXPECTED)

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_translated_or_refused(self, name: str) -> None:
        """Each corpus file gives exactly its expected events, skips, or element-naming refusal."""
        expect = EXPECTED[name]
        payload = (CORPUS / name).read_bytes()
        parsed = read_request(payload, content_type(name), mapping())
        assert isinstance(parsed, Valid | Invalid)
        assert (parsed.version if isinstance(parsed, Valid) else None) == expect.version
        result = run(payload, message_id=name, content_type=content_type(name))
        assert tuple(e.event.type for e in result.events) == expect.events
        assert result.skipped == expect.skipped
        got = [(f.code, f.location.field, f.reason) for f in result.failures]
        if expect.refused:
            assert len(got) == 1
            code, fields, reason = got[0]
            assert code == expect.refused[0][0]
            assert fields == ", ".join(path for _, path, _ in expect.refused)
            for _, path, why in expect.refused:
                assert f"{path}: {why}" in reason
        else:
            assert got == []

    def test_supply_delivery_fields(self) -> None:
        """The R4B delivery lands 10 BlueTubes at Location 1 from Vendor1 on 2016-12-31 (site time)."""
        name = "r4b_supplydelivery-example.json"
        result = run((CORPUS / name).read_bytes(), message_id=name)
        event = result.events[0].event
        assert event.subject == item_id_for("fhir", "BlueTubes")
        assert event.occurred_at == datetime(2016, 12, 30, 16, 0, tzinfo=UTC)
        payload = payloads(result)[0]
        assert (payload["quantity"], payload["location"]["location"], payload["supplier"], payload["po_number"]) == (
            "10", "Location 1", "Vendor1", "SupplyRequest/simpleorder",
        )  # fmt: skip


class TestHttpEdge:
    @pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.version is None))
    def test_refusals_become_operation_outcomes(self, name: str) -> None:
        """An invalid corpus resource is refused at the edge with a valid OperationOutcome naming its elements."""
        expect = EXPECTED[name]
        with pytest.raises(FhirRejected) as caught:
            parse_request((CORPUS / name).read_bytes(), content_type(name), mapping())
        outcome = operation_outcome(caught.value.issues)
        get_fhir_model_class("OperationOutcome").model_validate(outcome)
        errors = [i for i in outcome["issue"] if i["severity"] == "error"]
        assert [(i["code"], i["expression"], i["diagnostics"]) for i in errors] == [
            (code, [path], why) for code, path, why in expect.refused
        ]

    @pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.version is not None))
    def test_valid_files_pass_the_edge(self, name: str) -> None:
        """A corpus file that validates is accepted at the edge as its release."""
        parsed = parse_request((CORPUS / name).read_bytes(), content_type(name), mapping())
        assert isinstance(parsed, Valid)
        assert parsed.version == EXPECTED[name].version
