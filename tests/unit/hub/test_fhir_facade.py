"""The FHIR facade's pure parts: content negotiation, date ranges, identifier systems, R4B forms.

Every mapped resource is validated with fhir.resources in both releases (R5 as mapped, R4B after
its conversion), from synthetic read-model rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fhir.resources import get_fhir_model_class as r5_class
from fhir.resources.R4B import get_fhir_model_class as r4b_class
from starlette.requests import Request

from hub.api.fhir import audit, device, places, stock, supply, task
from hub.api.fhir.bundle import updated_range
from hub.api.fhir.wire import FhirError, Wire, negotiate

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 30, 2, 0, tzinfo=UTC)


def request(accept: str = "") -> Request:
    headers = [(b"accept", accept.encode())] if accept else []
    return Request(
        {"type": "http", "method": "GET", "path": "/fhir/Device", "headers": headers, "query_string": b""}
    )


class TestNegotiation:
    @pytest.mark.parametrize(
        ("fmt", "accept", "wanted"),
        [
            (None, "", Wire("R5", xml=False)),
            (None, "application/fhir+json; fhirVersion=4.3", Wire("R4B", xml=False)),
            (None, "application/fhir+xml", Wire("R5", xml=True)),
            (None, "text/html, application/xml;q=0.9", Wire("R5", xml=True)),
            (None, "text/html", Wire("R5", xml=False)),
            ("xml", "application/fhir+json; fhirVersion=4.0", Wire("R4B", xml=True)),
            ("application/fhir+json;fhirVersion=5.0", "", Wire("R5", xml=False)),
            ("json", "", Wire("R5", xml=False)),
            ("application/fhir xml", "", Wire("R5", xml=True)),  # an unencoded + in the query
        ],
    )
    def test_format_and_release_come_from_format_then_accept(
        self, fmt: str | None, accept: str, wanted: Wire
    ) -> None:
        assert negotiate(request(accept), fmt) == wanted

    @pytest.mark.parametrize(
        ("fmt", "accept", "names"),
        [
            ("csv", "", "_format"),
            ("json;fhirVersion=3.0", "", "_format"),
            (None, "application/fhir+json; fhirVersion=1.0", "fhirVersion"),
        ],
    )
    def test_what_is_not_served_is_406_naming_the_parameter(
        self, fmt: str | None, accept: str, names: str
    ) -> None:
        with pytest.raises(FhirError) as raised:
            negotiate(request(accept), fmt)
        assert (raised.value.status_code, raised.value.expression) == (406, names)

    def test_r4b_has_no_inventory_item(self) -> None:
        Wire("R5").require("InventoryItem")
        with pytest.raises(FhirError) as raised:
            Wire("R4B").require("InventoryItem")
        assert raised.value.code == "not-supported"


class TestDates:
    def test_a_day_is_read_in_the_site_zone_and_prefixes_bound_it(self) -> None:
        start = datetime(2024, 6, 29, 16, 0, tzinfo=UTC)  # 2024-06-30 00:00 in Shanghai
        end = datetime(2024, 6, 30, 16, 0, tzinfo=UTC)
        assert updated_range(["2024-06-30"], SHANGHAI) == (start, end)
        assert updated_range(["ge2024-06-30"], SHANGHAI) == (start, None)
        assert updated_range(["gt2024-06-30"], SHANGHAI) == (end, None)
        assert updated_range(["lt2024-06-30"], SHANGHAI) == (None, start)
        assert updated_range(["ge2024-06-30", "le2024-06-30"], SHANGHAI) == (start, end)

    def test_a_datetime_with_an_offset_is_a_second(self) -> None:
        low, high = updated_range(["2024-06-30T10:00:00+08:00"], SHANGHAI)
        assert (low, high) == (
            datetime(2024, 6, 30, 2, 0, tzinfo=UTC),
            datetime(2024, 6, 30, 2, 0, 1, tzinfo=UTC),
        )

    @pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "ge", "9999-12-31"])
    def test_nonsense_is_400_naming_the_parameter(self, bad: str) -> None:
        with pytest.raises(FhirError) as raised:
            updated_range([bad], SHANGHAI, parameter="date")
        assert (raised.value.status_code, raised.value.expression) == (400, "date")


SITE = {"http://hospital.example.cn/fhir/sid/hrp-card": "hrp.card"}


class TestIdentifierSystems:
    @pytest.mark.parametrize(
        ("token", "wanted"),
        [
            ("ZC-1", ("ZC-1", None)),
            ("|ZC-1", ("ZC-1", None)),
            ("urn:hospital-hub:id:hrp.card|ZC-1", ("hrp.card:ZC-1", None)),
            ("http://hospital.example.cn/fhir/sid/hrp-card|ZC-1", ("hrp.card:ZC-1", None)),
            ("urn:hospital-hub:id:serial|迈瑞|SN1", ("serial:迈瑞|SN1", None)),
            ("urn:oid:2.51.1.1|06943243106747", (None, "06943243106747")),
            (
                "http://hl7.org/fhir/NamingSystem/gs1-di|(01)06943243106747(21)X",
                ("udi:(01)06943243106747(21)X", None),
            ),
            ("http://vendor.example/sid|42", ("ns:http://vendor.example/sid|42", None)),
        ],
    )
    def test_each_system_names_its_scheme(self, token: str, wanted: tuple[str | None, str | None]) -> None:
        assert device.identifier_query(token, SITE) == wanted

    def test_a_qualified_identifier_goes_back_under_its_own_system(self) -> None:
        row = {
            "asset_id": "AST-1",
            "status": "in_use",
            "identifiers": [
                {"scheme": "ns", "value": "http://vendor.example/sid|42"},
                {"scheme": "udi", "value": "U"},
            ],
        }
        out = device.device(row)
        assert {(i["system"], i["value"]) for i in out["identifier"]} == {
            ("http://vendor.example/sid", "42"),
            ("urn:hospital-hub:id:udi", "U"),
        }


def _both(resource: dict[str, object], r4b: dict[str, object] | None = None) -> None:
    r5_class(str(resource["resourceType"])).model_validate(resource)
    converted = r4b if r4b is not None else resource
    r4b_class(str(converted["resourceType"])).model_validate(converted)


class TestMappingsValidateInBothReleases:
    def test_device_with_everything(self) -> None:
        row = {
            "asset_id": "AST-1", "name": "呼吸机", "model": "SV300", "manufacturer": "迈瑞",
            "serial_number": "SN1", "udi": "(01)06943243106747(21)SN1", "category_code": "6854",
            "category_name": "呼吸设备", "department_code": "0101", "department_name": "重症医学科",
            "location": "5楼ICU", "status": "under_repair", "last_occurred_at": NOW,
            "calibrated_on": date(2024, 1, 2), "calibration_result": "pass", "calibration_valid_until": date(2025, 1, 1),
            "calibration_provider": "省计量院", "identifiers": [{"scheme": "hrp.card", "value": "ZC-1"}],
        }  # fmt: skip
        ready = {"availability": "under_repair", "pool": True, "ready_until": date(2025, 1, 1)}
        out = device.device(row, ready)
        assert out["location"]["reference"] == f"Location/{places.place_id('0101', '5楼ICU')}"
        assert out["availabilityStatus"]["coding"][0]["code"] == "damaged"
        assert {e["url"].rsplit("/", 1)[1] for e in out["extension"]} == {
            "device-availability",
            "device-last-calibration",
        }
        _both(out, device.r4b(out))

    def test_location_task_supply_and_audit(self) -> None:
        dept, spot = places.Place("0101", "重症医学科"), places.Place("0101", "重症医学科", "5楼ICU")
        for place in (dept, spot):
            resource = places.location(place)
            _both(resource, places.r4b(resource))
        order = {
            "workorder_id": "WO-1", "status": "approved", "status_at": NOW, "priority": "urgent", "symptom": "报警",
            "asset_id": "AST-1", "asset_name": "呼吸机", "engineer": "王工", "requested_by": "李护士",
            "requested_at": NOW, "department_code": "0101", "department_name": "重症医学科", "started_at": NOW,
        }  # fmt: skip
        out = task.task(order)
        assert (out["status"], out["businessStatus"]["coding"][0]["code"]) == ("accepted", "approved")
        _both(out)
        assert task.task_id("工单/1").startswith("wo-")
        step = {
            "event_id": "3f0c1e9e-0000-4000-8000-000000000001", "kind": "received", "occurred_at": NOW,
            "quantity": Decimal(5), "department_code": "0601", "department_name": "中心库房", "location": None,
            "supplier": "康达", "document_no": "RK-1",
        }  # fmt: skip
        path = {
            "item_id": "ITM-1",
            "item_name": "导管",
            "lot": "L1",
            "expiry": date(2026, 1, 1),
            "steps": [step],
        }
        (delivery,) = supply.deliveries({"units": [], "lots": [path]})
        _both(delivery, supply.r4b(delivery))
        event = {
            "event_id": "3f0c1e9e-0000-4000-8000-000000000002",
            "occurred_at": "2024-06-30T02:00:00Z",
            "recorded_at": "2024-06-30T02:00:00+00:00",
            "source": {"site": "main"},
            "payload": {
                "key_id": "k1", "role": "auditor", "department": None, "action": "raw.read", "resource": "his:1",
                "outcome": "denied", "method": "GET", "path": "/raw/his:1", "client": "10.0.0.1", "purpose": "医保稽核",
            },
        }  # fmt: skip
        resource = audit.audit_event(event)
        _both(resource, audit.r4b(resource, event))

    def test_inventory_item_and_report_are_r5(self) -> None:
        item = {"item_id": "ITM-1", "item_code": "HC1", "name": "导管", "gtin": "06938123450010", "unit": "根",
                "spec": "6F", "category": "介入", "supplier": "康达", "high_value": True}  # fmt: skip
        r5_class("InventoryItem").model_validate(stock.inventory_item(item))
        rows = [
            {"item_id": "ITM-1", "item_name": "导管", "unit": "根", "location": "二级库", "lot": "L1",
             "expiry": date(2026, 1, 1), "on_hand": Decimal(3), "count_at": NOW},
            {"item_id": "ITM-2", "item_name": "敷料", "unit": None, "location": None, "lot": None,
             "expiry": None, "on_hand": Decimal("1.5"), "count_at": None},
        ]  # fmt: skip
        report = stock.inventory_report(places.Place("0101", "重症医学科"), rows, NOW)
        assert len(report["inventoryListing"]) == 2
        r5_class("InventoryReport").model_validate(report)
