"""Bundles: batch keeps good entries, transaction is all or nothing; OperationOutcome and response Bundles."""

from __future__ import annotations

import json

import pytest
from fhir.resources import get_fhir_model_class

from adapters.fhir import (
    Issue,
    bundle_kind,
    entry_outcomes,
    operation_outcome,
    resource_outcome,
    response_bundle,
    transaction_outcome,
)
from tests.unit.adapters._fhir import bundle, delivery, device, run, task, types

BAD_DELIVERY = delivery(id="sd-bad", suppliedItem=[{"quantity": {"value": "ten"}}])
REQUEST = {
    "resourceType": "SupplyRequest",
    "id": "r1",
    "status": "active",
    "quantity": {"value": 5},
    "item": {"concept": {"text": "纱布"}},
}
R5 = "application/fhir+json; fhirVersion=5.0"


def valid_fhir(resource: dict) -> None:
    """Raises unless fhir.resources (R5) validates the resource."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


class TestOperationOutcome:
    def test_names_the_element(self) -> None:
        """Each issue becomes an OperationOutcome issue with severity, code, diagnostics and expression."""
        outcome = operation_outcome(
            [Issue("value", "SupplyDelivery.suppliedItem.quantity.value", "not a decimal")]
        )
        assert outcome == {"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "value", "diagnostics": "not a decimal",
            "expression": ["SupplyDelivery.suppliedItem.quantity.value"],
        }]}  # fmt: skip
        valid_fhir(outcome)

    def test_empty_is_still_valid(self) -> None:
        """No issues still gives a valid OperationOutcome (FHIR requires one issue)."""
        outcome = operation_outcome([])
        valid_fhir(outcome)
        assert outcome["issue"][0]["severity"] == "information"

    def test_whole_body_issue_has_no_expression(self) -> None:
        """An issue about the whole body carries no expression."""
        assert "expression" not in operation_outcome([Issue("invalid", None, "not JSON")])["issue"][0]


class TestBatch:
    def test_good_entries_land(self) -> None:
        """In a batch, one bad entry fails alone; the good entries give their events."""
        result = run(bundle("batch", device(), BAD_DELIVERY, REQUEST, task()), content_type=R5)
        assert types(result) == ["asset.registered", "workorder.requested"]
        assert [(f.position, f.location.field) for f in result.failures] == [
            ("entry:1", "SupplyDelivery.suppliedItem[0].quantity.value"),
        ]
        assert result.skipped == ("entry:2: SupplyRequest archived; no canonical event in catalogue v1",)
        assert result.units == 4
        assert [e.position for e in result.events] == ["entry:0", "entry:3"]

    def test_entry_outcomes(self) -> None:
        """Per entry: 201 for events, 400 with an OperationOutcome naming the element, 200 for archived-only."""
        result = run(bundle("batch", device(), BAD_DELIVERY, REQUEST, task()), content_type=R5)
        outcomes = entry_outcomes(result)
        assert [(o.index, o.status, o.events) for o in outcomes] == [
            (0, "201 Created", 1), (1, "400 Bad Request", 0), (2, "200 OK", 0), (3, "201 Created", 1),
        ]  # fmt: skip
        bad = outcomes[1].outcome
        assert bad is not None
        assert bad["issue"][0]["expression"] == ["SupplyDelivery.suppliedItem[0].quantity.value"]
        assert bad["issue"][0]["code"] == "value"
        assert "SupplyRequest archived" in outcomes[2].outcome["issue"][0]["diagnostics"]

    def test_response_bundle(self) -> None:
        """The batch-response Bundle has one response per entry and is valid FHIR R5."""
        result = run(bundle("batch", device(), BAD_DELIVERY), content_type=R5)
        answer = response_bundle("batch", entry_outcomes(result))
        valid_fhir(answer)
        assert answer["type"] == "batch-response"
        assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created", "400 Bad Request"]

    def test_entry_without_resource_and_unsupported_method(self) -> None:
        """An entry with no resource, or a DELETE, fails alone with the element named."""
        body = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "POST", "url": "Device"}},
                {"resource": device(), "request": {"method": "DELETE", "url": "Device/dev-1"}},
                {"resource": device(id="d2"), "request": {"method": "POST", "url": "Device"}},
            ],
        }
        result = run(body)
        assert [(f.position, f.code, f.location.field) for f in result.failures] == [
            ("entry:0", "required", "Bundle.entry[0].resource"),
            ("entry:1", "not-supported", "Bundle.entry[1].request.method"),
        ]
        assert types(result) == ["asset.registered"]

    def test_unsupported_entry_type(self) -> None:
        """A Patient inside a batch is that entry's not-supported failure, not the Bundle's."""
        result = run(bundle("batch", {"resourceType": "Patient", "id": "p"}, device()))
        assert [(f.position, f.code) for f in result.failures] == [("entry:0", "not-supported")]
        assert len(result.events) == 1

    def test_nested_bundle_is_not_supported(self) -> None:
        """A Bundle inside a Bundle entry fails that entry as not supported."""
        result = run(bundle("batch", {"resourceType": "Bundle", "type": "collection"}, device()))
        assert [(f.position, f.code, f.location.field) for f in result.failures] == [
            ("entry:0", "not-supported", "Bundle.entry[0].resource"),
        ]
        assert types(result) == ["asset.registered"]

    def test_same_resource_twice_fails_the_second(self) -> None:
        """A resource named twice in one Bundle fails the second entry (its events would collide)."""
        result = run(bundle("batch", device(), device()))
        assert [(f.position, f.reason) for f in result.failures] == [
            (
                "entry:1",
                "Bundle.entry[1]: Device/dev-1 already appears at entry:0; a Bundle may name a resource once",
            ),
        ]

    def test_entries_without_ids_are_told_apart(self) -> None:
        """Entries without ids get distinct event ids from their fullUrl or position."""
        first, second = delivery(), delivery()
        del first["id"], second["id"]
        body = bundle("batch", first, second)
        body["entry"][0]["fullUrl"] = "urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"
        result = run(body)
        assert len({e.event.event_id for e in result.events}) == 2

    def test_event_ids_use_the_bundle_message_id(self) -> None:
        """Entry events are identified by the Bundle's message id and the entry resource."""
        from schemas.ids import event_id_for

        result = run(bundle("batch", device()), message_id="b-1")
        assert result.events[0].event.event_id == event_id_for("fhir", "b-1", "Device/dev-1:0")


class TestTransaction:
    def test_all_good_lands(self) -> None:
        """A transaction whose entries all translate gives all their events."""
        result = run(bundle("transaction", device(), task(), delivery()))
        assert types(result) == ["asset.registered", "workorder.requested", "inventory.received"]
        answer = response_bundle("transaction", entry_outcomes(result))
        valid_fhir(answer)
        assert answer["type"] == "transaction-response"

    def test_one_bad_entry_rolls_back_all(self) -> None:
        """One failed entry in a transaction leaves no events; the good entries are listed as rolled back."""
        result = run(bundle("transaction", device(), BAD_DELIVERY, task()), content_type=R5)
        assert result.events == ()
        assert [f.position for f in result.failures] == ["entry:1"]
        assert result.skipped == (
            "entry:0: rolled back: the transaction failed at entry:1",
            "entry:2: rolled back: the transaction failed at entry:1",
        )

    def test_failed_transaction_answer(self) -> None:
        """A failed transaction is answered with one OperationOutcome whose expressions are rooted at the entry."""
        result = run(bundle("transaction", device(), BAD_DELIVERY), content_type=R5)
        outcomes = entry_outcomes(result)
        assert [(o.status, o.rolled_back, o.failed) for o in outcomes] == [
            ("400 Bad Request", True, False), ("400 Bad Request", False, True),
        ]  # fmt: skip
        with pytest.raises(ValueError, match="transaction_outcome"):
            response_bundle("transaction", outcomes)
        answer = transaction_outcome(outcomes)
        valid_fhir(answer)
        assert answer["issue"][0]["expression"] == [
            "Bundle.entry[1].resource.ofType(SupplyDelivery).suppliedItem[0].quantity.value"
        ]

    def test_translation_is_deterministic(self) -> None:
        """The same Bundle translated twice gives equal translations."""
        body = bundle("batch", device(), BAD_DELIVERY, task(status="completed"))
        assert run(body) == run(body)


class TestHelpers:
    @pytest.mark.parametrize(
        ("payload", "kind"),
        [
            (json.dumps({"resourceType": "Bundle", "type": "batch"}).encode(), "batch"),
            (json.dumps({"resourceType": "Bundle", "type": "transaction"}).encode(), "transaction"),
            (json.dumps({"resourceType": "Bundle", "type": "collection"}).encode(), None),
            (json.dumps({"resourceType": "Device"}).encode(), None),
            (b"not json", None),
            (b'<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/></Bundle>', "transaction"),
            (b"<!DOCTYPE x [<!ENTITY a 'b'>]><Bundle/>", None),
            (b'<?xml version="1.0" encoding="GBK"?><Bundle/>', None),
        ],
    )
    def test_bundle_kind(self, payload: bytes, kind: str | None) -> None:
        """bundle_kind tells batch from transaction, and None for anything else."""
        assert bundle_kind(payload) == kind

    def test_resource_outcome_for_failure(self) -> None:
        """A single resource's failure becomes an OperationOutcome naming each element."""
        result = run({"resourceType": "InventoryReport", "status": "draft"})
        outcome = resource_outcome(result)
        valid_fhir(outcome)
        assert [i["expression"] for i in outcome["issue"]] == [
            ["InventoryReport.countType"], ["InventoryReport.reportedDateTime"],
        ]  # fmt: skip
        assert outcome["issue"][0]["diagnostics"] == "required element is missing"

    def test_resource_outcome_for_success(self) -> None:
        """A translated resource's OperationOutcome is informational and counts the events."""
        outcome = resource_outcome(run(task(status="completed")))
        assert outcome["issue"][0] == {
            "severity": "information",
            "code": "informational",
            "diagnostics": "2 canonical event(s)",
        }

    def test_xml_bundle(self) -> None:
        """An XML batch Bundle is split into entries, each validated and translated on its own."""
        xml = b"""<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>
          <entry><resource><Device><id value="x1"/><identifier><system
            value="http://hospital.example.cn/fhir/sid/hrp-card"/><value value="ZC-1"/></identifier>
            <status value="active"/></Device></resource><request><method value="POST"/><url value="Device"/></request>
          </entry>
          <entry><resource><Device><id value="x2"/><status value="bogus"/></Device></resource>
            <request><method value="POST"/><url value="Device"/></request></entry>
        </Bundle>"""
        result = run(xml, content_type="application/fhir+xml")
        assert types(result) == ["asset.registered"]
        assert [(f.position, f.location.field) for f in result.failures] == [("entry:1", "Device.status")]
