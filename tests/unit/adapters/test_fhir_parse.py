"""Reading FHIR request bodies: media types, strict JSON, safe XML, release choice, element paths."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from adapters.fhir import FhirRejected, parse_request, read_request
from adapters.fhir.document import media_type
from adapters.fhir.mapping import FhirMapping
from adapters.fhir.parse import ParsedBundle
from adapters.fhir.validate import Invalid, Valid
from tests.unit.adapters._fhir import delivery, device, mapping, task

R4B_DELIVERY = {
    "resourceType": "SupplyDelivery",
    "id": "r4b",
    "status": "completed",
    "suppliedItem": {"quantity": {"value": 3}, "itemCodeableConcept": {"text": "纱布"}},
}


def body(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def rejected(payload: bytes, content_type: str | None = None, **kwargs) -> FhirRejected:
    with pytest.raises(FhirRejected) as caught:
        read_request(payload, content_type, mapping(), **kwargs)
    return caught.value


def paths(result: Invalid) -> list[str | None]:
    return [i.path for i in result.issues]


class TestMediaType:
    @pytest.mark.parametrize(
        ("content_type", "fmt", "version"),
        [
            ("application/fhir+json", "json", None),
            ("application/fhir+json; fhirVersion=4.3", "json", "R4B"),
            ("application/fhir+json;fhirVersion=4.0", "json", "R4B"),
            ('application/fhir+json; charset=UTF-8; fhirVersion="5.0"', "json", "R5"),
            ("application/json", "json", None),
            ("application/fhir+xml; fhirVersion=5.0.0", "xml", "R5"),
            ("text/xml", "xml", None),
        ],
    )
    def test_content_types(self, content_type: str, fmt: str, version: str | None) -> None:
        """A FHIR Content-Type gives the format and, from fhirVersion, the release."""
        media = media_type(content_type, b"{}")
        assert (media.format, media.version) == (fmt, version)

    def test_sniffs_without_content_type(self) -> None:
        """Without a Content-Type, a body starting with `<` (after a BOM and spaces) is XML, else JSON."""
        assert media_type(None, b"\xef\xbb\xbf  <Device/>").format == "xml"
        assert media_type("", b'{"resourceType": "Device"}').format == "json"

    def test_refuses_other_media_types(self) -> None:
        """A non-FHIR Content-Type is refused as an unsupported format, naming what to send."""
        exc = rejected(b"{}", "text/csv")
        assert exc.kind == "unsupported_format"
        assert "application/fhir+json" in exc.issues[0].reason

    def test_refuses_stu3_fhir_version(self) -> None:
        """fhirVersion=3.0 (STU3) is not supported, and the message says which releases are."""
        exc = rejected(body(device()), "application/fhir+json; fhirVersion=3.0")
        assert exc.kind == "unsupported_format"
        assert "'3.0'" in exc.issues[0].reason
        assert "R5" in exc.issues[0].reason

    def test_refuses_non_utf8_charset(self) -> None:
        """A charset other than UTF-8 is refused: FHIR bodies are UTF-8."""
        assert rejected(b"{}", "application/fhir+json; charset=GBK").kind == "unsupported_format"


class TestJson:
    def test_refuses_oversized_bodies(self) -> None:
        """A body over the mapping's max_bytes is refused as too large, with both sizes named."""
        small = FhirMapping.model_validate({**mapping().model_dump(), "limits": {"max_bytes": 100}})
        with pytest.raises(FhirRejected) as caught:
            read_request(body(device(note=[{"text": "x" * 200}])), None, small)
        assert caught.value.kind == "too_large"
        assert "the limit is 100" in caught.value.issues[0].reason

    def test_refuses_invalid_json(self) -> None:
        """Broken JSON is refused with its line and column."""
        exc = rejected(b'{"resourceType": "Device",\n "id": }')
        assert exc.kind == "invalid"
        assert "line 2" in exc.issues[0].reason

    def test_refuses_duplicate_keys(self) -> None:
        """A JSON object with one key twice is refused: FHIR JSON forbids it and the last would win silently."""
        exc = rejected(b'{"resourceType": "Device", "status": "active", "status": "inactive"}')
        assert "'status' twice" in exc.issues[0].reason

    def test_refuses_nan(self) -> None:
        """NaN is not a JSON number and is refused."""
        exc = rejected(b'{"resourceType": "SupplyDelivery", "suppliedItem": [{"quantity": {"value": NaN}}]}')
        assert "NaN" in exc.issues[0].reason

    def test_refuses_non_utf8_bytes(self) -> None:
        """GBK bytes in a JSON body are refused with the byte offset."""
        exc = rejected('{"resourceType": "Device", "manufacturer": "迈瑞"}'.encode("gbk"))
        assert "byte offset" in exc.issues[0].reason

    def test_refuses_deep_nesting(self) -> None:
        """JSON nested beyond max_depth is refused before validation, whatever the depth."""
        for depth in (60, 100_000):
            payload = b'{"resourceType": "Device", "x": ' + b"[" * depth + b"]" * depth + b"}"
            assert rejected(payload).kind == "too_large"

    def test_refuses_non_object(self) -> None:
        """A JSON array is not a resource."""
        assert rejected(b"[1, 2]").kind == "invalid"

    def test_refuses_missing_resource_type(self) -> None:
        """A JSON object without resourceType is refused, naming resourceType."""
        assert rejected(b'{"id": "x"}').issues[0].path == "resourceType"

    def test_decimals_stay_exact(self) -> None:
        """A FHIR decimal keeps its digits (read as Decimal, never a float)."""
        parsed = read_request(
            b'{"resourceType": "SupplyDelivery", "suppliedItem": [{"quantity": '
            b'{"value": 0.1000000000000000055}}]}',
            None,
            mapping(),
        )
        assert isinstance(parsed, Valid)
        assert parsed.model.suppliedItem[0].quantity.value == Decimal("0.1000000000000000055")


class TestReleaseChoice:
    def test_r5_first(self) -> None:
        """A resource valid in R5 is read as R5, with no fallback."""
        parsed = read_request(body(delivery()), None, mapping())
        assert isinstance(parsed, Valid)
        assert (parsed.version, parsed.fell_back) == ("R5", False)

    def test_falls_back_to_r4b_and_records_it(self) -> None:
        """An R4B-shaped resource fails R5, is read as R4B, and the fallback is logged."""
        with capture_logs() as logs:
            parsed = read_request(body(R4B_DELIVERY), None, mapping())
        assert isinstance(parsed, Valid)
        assert (parsed.version, parsed.fell_back) == ("R4B", True)
        assert {
            "event": "fhir_release_fallback",
            "read_as": "R4B",
            "tried": "R5",
            "resource_type": "SupplyDelivery",
            "log_level": "info",
        } in logs

    def test_explicit_version_is_the_only_one_tried(self) -> None:
        """With fhirVersion=5.0, an R4B-shaped resource is invalid, naming the element R5 changed."""
        parsed = read_request(body(R4B_DELIVERY), "application/fhir+json; fhirVersion=5.0", mapping())
        assert isinstance(parsed, Invalid)
        assert paths(parsed) == ["SupplyDelivery.suppliedItem"]
        assert "R5 made suppliedItem a list" in parsed.issues[0].reason

    def test_explicit_r4b(self) -> None:
        """With fhirVersion=4.3 an R4B resource is read as R4B without any fallback."""
        parsed = read_request(body(R4B_DELIVERY), "application/fhir+json; fhirVersion=4.3", mapping())
        assert isinstance(parsed, Valid)
        assert (parsed.version, parsed.fell_back) == ("R4B", False)

    def test_mapping_default_release(self) -> None:
        """A mapping whose versions.default is R4B reads bodies without fhirVersion as R4B only."""
        r4b = FhirMapping.model_validate({**mapping().model_dump(), "versions": {"default": "R4B"}})
        parsed = read_request(body(delivery()), None, r4b)
        assert isinstance(parsed, Invalid)
        assert parsed.issues[0].path == "SupplyDelivery.suppliedItem"

    def test_inventory_report_as_r4b_is_not_supported(self) -> None:
        """InventoryReport asked for as R4B is refused: the type is new in R5."""
        payload = body({"resourceType": "InventoryReport", "status": "active"})
        exc = rejected(payload, "application/fhir+json; fhirVersion=4.3")
        assert exc.kind == "unsupported_type"
        assert "new in R5" in exc.issues[0].reason

    def test_both_failing_reports_the_closer_release(self) -> None:
        """When both releases fail, the issues come from the one with fewer problems, with a note."""
        stu3 = device(udi={"deviceIdentifier": "x"}, model="m")
        parsed = read_request(body(stu3), None, mapping())
        assert isinstance(parsed, Invalid)
        assert paths(parsed) == ["Device.udi", "Device.model", None]
        assert "R4 and later renamed it udiCarrier" in parsed.issues[0].reason
        assert parsed.issues[-1].severity == "information"


class TestElementPaths:
    def test_names_nested_element(self) -> None:
        """A bad value deep in the resource is named by its full path."""
        bad = delivery(suppliedItem=[{"quantity": {"value": "ten"}}])
        parsed = read_request(body(bad), "application/fhir+json; fhirVersion=5.0", mapping())
        assert isinstance(parsed, Invalid)
        assert parsed.issues[0].path == "SupplyDelivery.suppliedItem[0].quantity.value"
        assert parsed.issues[0].code == "value"

    def test_required_element(self) -> None:
        """A missing required element is a `required` issue naming the element."""
        parsed = read_request(body({"resourceType": "Task", "intent": "order"}), None, mapping())
        assert isinstance(parsed, Invalid)
        assert ("required", "Task.status") in [(i.code, i.path) for i in parsed.issues]

    def test_required_value_set(self) -> None:
        """A code outside a required value set (which fhir.resources lets through) is refused by path."""
        parsed = read_request(
            body(device(status="bogus")), "application/fhir+json; fhirVersion=5.0", mapping()
        )
        assert isinstance(parsed, Invalid)
        assert [(i.code, i.path) for i in parsed.issues] == [("value", "Device.status")]
        assert "active, entered-in-error, inactive" in parsed.issues[0].reason

    def test_task_status_value_set(self) -> None:
        """Task.status is checked against its full value set although the generated model cuts it short."""
        parsed = read_request(
            body(task(status="paused")), "application/fhir+json; fhirVersion=5.0", mapping()
        )
        assert isinstance(parsed, Invalid)
        assert parsed.issues[0].path == "Task.status"

    def test_reasons_never_echo_values(self) -> None:
        """Issue reasons do not repeat the offending value (it could be patient data)."""
        parsed = read_request(body(device(manufacturer=12345678)), None, mapping())
        assert isinstance(parsed, Invalid)
        assert all("12345678" not in i.reason for i in parsed.issues)

    def test_nested_unknown_resource_type_is_an_issue(self) -> None:
        """A contained resource of unknown type is an issue naming it, not a library crash."""
        parsed = read_request(body(device(contained=[{"resourceType": "Nope", "id": "x"}])), None, mapping())
        assert isinstance(parsed, Invalid)
        assert parsed.issues[0].path == "Device.contained[0].resourceType"


class TestRequestChecks:
    def test_unsupported_type(self) -> None:
        """A resource type the hub does not accept (Patient) is refused as unsupported_type."""
        exc = rejected(body({"resourceType": "Patient", "id": "p"}))
        assert exc.kind == "unsupported_type"
        assert "Patient is not accepted" in exc.issues[0].reason

    def test_type_must_match_the_route(self) -> None:
        """A Task posted to the Device endpoint is refused, naming both types."""
        exc = rejected(body(task()), expected_type="Device")
        assert exc.issues[0].reason == "the body is a Task, but the request is for Device"

    def test_parse_request_raises_for_invalid_resources(self) -> None:
        """parse_request (the HTTP edge's call) raises for an invalid resource, with its issues."""
        with pytest.raises(FhirRejected) as caught:
            parse_request(body(device(status="bogus")), "application/fhir+json; fhirVersion=5.0", mapping())
        assert caught.value.kind == "invalid"
        assert caught.value.issues[0].path == "Device.status"

    def test_parse_request_returns_bundles(self) -> None:
        """A batch Bundle parses into its entries, each validated on its own."""
        payload = body(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": device(), "request": {"method": "POST", "url": "Device"}},
                    {
                        "resource": device(status="bogus", id="d2"),
                        "request": {"method": "POST", "url": "Device"},
                    },
                ],
            }
        )
        parsed = parse_request(payload, None, mapping())
        assert isinstance(parsed, ParsedBundle)
        assert [type(e.resource).__name__ for e in parsed.entries] == ["Valid", "Invalid"]

    def test_refuses_collection_bundles(self) -> None:
        """Only batch and transaction Bundles are ingested; the message names Bundle.type."""
        exc = rejected(body({"resourceType": "Bundle", "type": "collection"}))
        assert exc.issues[0].path == "Bundle.type"

    def test_refuses_too_many_entries(self) -> None:
        """A Bundle with more entries than max_entries is refused as too large."""
        small = FhirMapping.model_validate({**mapping().model_dump(), "limits": {"max_entries": 2}})
        payload = body(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": device(id=f"d{i}"), "request": {"method": "POST", "url": "Device"}}
                    for i in range(3)
                ],
            }
        )
        with pytest.raises(FhirRejected) as caught:
            read_request(payload, None, small)
        assert caught.value.kind == "too_large"
