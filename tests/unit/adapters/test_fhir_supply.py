"""SupplyDelivery, InventoryReport, InventoryItem and SupplyRequest/Location -> inventory events or skips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from schemas._base import DeptRef, LocationRef
from schemas.ids import event_id_for, item_id_for
from schemas.inventory import InventoryAdjusted, InventoryReceived, InventoryTransferred
from tests.unit.adapters._fhir import SPD_ITEM, UDI_SYSTEM, delivery, payloads, run, types

# Stock sits in a department or store by code, as the SPD adapter puts it (no place text).
CENTRAL = LocationRef(department=DeptRef(code="9001", name="中心库房"))
ICU = LocationRef(department=DeptRef(code="0101", name="重症医学科"))


def report(**fields) -> dict:
    body = {
        "resourceType": "InventoryReport",
        "id": "ir-1",
        "status": "active",
        "countType": "snapshot",
        "reportedDateTime": "2024-06-30T18:00:00+08:00",
        "inventoryListing": [
            {
                "location": {"reference": "Location/icu-5f"},
                "item": [
                    {
                        "quantity": {"value": 64},
                        "item": {"concept": {"coding": [{"system": SPD_ITEM, "code": "DZ02001"}]}},
                    },
                    {
                        "quantity": {"value": 0},
                        "item": {"concept": {"coding": [{"system": "urn:local", "code": "X9"}]}},
                    },
                ],
            }
        ],
    }
    body.update(fields)
    return body


class TestDelivery:
    def test_receipt_into_a_store(self) -> None:
        """A completed delivery to a store is inventory.received on the SPD item, with its documented fields."""
        result = run(
            delivery(
                basedOn=[{"reference": "SupplyRequest/r1", "display": "PO-7"}],
                supplier={"display": "XX医药"},
            ),
            message_id="sd-1",
        )
        assert types(result) == ["inventory.received"]
        event = result.events[0].event
        assert isinstance(event, InventoryReceived)
        assert event.subject == item_id_for("spd", "DZ02001")
        assert event.event_id == event_id_for("fhir", "sd-1", "SupplyDelivery/sd-1:0")
        assert event.occurred_at == datetime(2024, 7, 1, 2, 0, tzinfo=UTC)
        assert (event.payload.location, event.payload.quantity) == (CENTRAL, Decimal(10))
        assert (event.payload.supplier, event.payload.po_number) == ("XX医药", "PO-7")

    def test_transfer_to_a_department(self) -> None:
        """A delivery to a department is inventory.transferred from the default store."""
        result = run(delivery(destination={"reference": "Location/icu-5f"}, identifier=[{"value": "PS-1"}]))
        event = result.events[0].event
        assert isinstance(event, InventoryTransferred)
        assert (event.payload.from_location, event.payload.to_location) == (CENTRAL, ICU)
        assert event.payload.document_no == "PS-1"

    def test_lot_and_expiry_from_udi_coding(self) -> None:
        """A UDI coding on the item gives lot, expiry and the parsed barcode; the SPD code keys the item."""
        result = run(
            delivery(
                suppliedItem=[
                    {
                        "quantity": {"value": 5},
                        "itemCodeableConcept": {
                            "coding": [
                                {"system": SPD_ITEM, "code": "HC1"},
                                {"system": UDI_SYSTEM, "code": "(01)06947362672312(17)260531(10)B240601"},
                            ]
                        },
                    }
                ]
            )
        )
        payload = payloads(result)[0]
        assert (payload["lot"], payload["expiry"]) == ("B240601", "2026-05-31")
        assert payload["barcode"] == {
            "raw": "(01)06947362672312(17)260531(10)B240601",
            "symbology": "gs1",
            "gtin": "06947362672312",
            "lot": "B240601",
            "expiry": "2026-05-31",
        }
        assert result.events[0].event.subject == item_id_for("spd", "HC1")

    def test_unparsable_barcode_is_kept_and_flagged(self) -> None:
        """A barcode biip cannot read is kept verbatim with its parse error, not dropped."""
        result = run(
            delivery(
                suppliedItem=[
                    {
                        "quantity": {"value": 1},
                        "itemCodeableConcept": {
                            "coding": [
                                {"system": SPD_ITEM, "code": "HC1"},
                                {"system": UDI_SYSTEM, "code": "NOT-A-GS1"},
                            ]
                        },
                    }
                ]
            )
        )
        barcode = payloads(result)[0]["barcode"]
        assert (barcode["raw"], barcode["symbology"]) == ("NOT-A-GS1", "unknown")
        assert barcode["parse_error"]

    def test_contained_inventory_item(self) -> None:
        """An item referencing a contained InventoryItem takes its code, lot and expiry."""
        result = run(
            delivery(
                contained=[
                    {
                        "resourceType": "InventoryItem",
                        "id": "c1",
                        "status": "active",
                        "code": [{"coding": [{"system": SPD_ITEM, "code": "GZ10001"}]}],
                        "instance": {"lotNumber": "C2405A17", "expiry": "2027-04-30"},
                    }
                ],
                suppliedItem=[{"quantity": {"value": 20}, "itemReference": {"reference": "#c1"}}],
            )
        )
        event = result.events[0].event
        assert event.subject == item_id_for("spd", "GZ10001")
        assert (event.payload.lot, event.payload.expiry) == ("C2405A17", date(2027, 4, 30))

    def test_unmapped_system_makes_a_fhir_item(self) -> None:
        """A coding from an unmapped system keys a FHIR-only item by `system|code`; a GTIN by `gtin|…`."""
        plain = run(
            delivery(
                suppliedItem=[
                    {
                        "quantity": {"value": 1},
                        "itemCodeableConcept": {"coding": [{"system": "urn:v", "code": "A"}]},
                    }
                ]
            )
        )
        gtin = run(
            delivery(
                suppliedItem=[
                    {
                        "quantity": {"value": 1},
                        "itemCodeableConcept": {
                            "coding": [{"system": "https://www.gs1.org/gtin", "code": "06923456789012"}]
                        },
                    }
                ]
            )
        )
        assert plain.events[0].event.subject == item_id_for("fhir", "urn:v|A")
        assert gtin.events[0].event.subject == item_id_for("fhir", "gtin|06923456789012")

    def test_r4b_single_supplied_item(self) -> None:
        """An R4B delivery's single suppliedItem gives one event; paths name it without an index."""
        coded = {"coding": [{"code": "BlueTubes"}]}
        result = run(delivery(suppliedItem={"quantity": {"value": 0}, "itemCodeableConcept": coded}))
        assert [f.location.field for f in result.failures] == ["SupplyDelivery.suppliedItem.quantity.value"]
        ok = run(delivery(suppliedItem={"quantity": {"value": 4}, "itemCodeableConcept": coded}))
        assert types(ok) == ["inventory.received"]
        assert ok.events[0].event.subject == item_id_for("fhir", "BlueTubes")

    def test_text_alone_names_no_item(self) -> None:
        """An item given only as free text is refused: text is not a code to key stock by."""
        result = run(
            delivery(suppliedItem=[{"quantity": {"value": 1}, "itemCodeableConcept": {"text": "纱布"}}])
        )
        assert [f.location.field for f in result.failures] == ["SupplyDelivery.suppliedItem[0].item"]

    def test_each_item_is_one_event(self) -> None:
        """A delivery of two items gives two events with positions :0 and :1."""
        item = {
            "quantity": {"value": 2},
            "itemCodeableConcept": {"coding": [{"system": SPD_ITEM, "code": "A"}]},
        }
        result = run(delivery(suppliedItem=[item, {**item, "quantity": {"value": 3}}]), message_id="m")
        assert [e.event.event_id for e in result.events] == [
            event_id_for("fhir", "m", "SupplyDelivery/sd-1:0"), event_id_for("fhir", "m", "SupplyDelivery/sd-1:1"),
        ]  # fmt: skip

    def test_missing_quantity_and_item_are_named(self) -> None:
        """A supplied item without quantity or item fails, naming both elements; nothing lands."""
        coded = {"coding": [{"system": SPD_ITEM, "code": "A"}]}
        result = run(delivery(suppliedItem=[{"quantity": {"value": 3}}, {"itemCodeableConcept": coded}]))
        assert result.events == ()
        assert result.failures[0].location.field == (
            "SupplyDelivery.suppliedItem[0].item, SupplyDelivery.suppliedItem[1].quantity.value"
        )

    def test_not_completed_is_skipped(self) -> None:
        """An in-progress delivery moves no stock: archived and skipped with the reason."""
        result = run(delivery(status="in-progress"))
        assert (result.events, result.failures) == ((), ())
        assert result.skipped == (
            "resource: SupplyDelivery status in-progress: stock moves only on completed",
        )

    def test_no_destination_goes_to_the_default_store(self) -> None:
        """A delivery without a destination is received into the default store."""
        body = delivery()
        del body["destination"]
        assert payloads(run(body))[0]["location"] == {"department": {"code": "9001", "name": "中心库房"}}


class TestInventoryReport:
    def test_snapshot_counts(self) -> None:
        """An active snapshot report gives inventory.adjusted per item and location, zero counts included."""
        result = run(report(), message_id="ir")
        assert types(result) == ["inventory.adjusted", "inventory.adjusted"]
        first, second = (e.event for e in result.events)
        assert isinstance(first, InventoryAdjusted)
        assert (first.payload.location, first.payload.counted_quantity) == (ICU, Decimal(64))
        assert second.payload.counted_quantity == Decimal(0)
        assert first.event_id == event_id_for("fhir", "ir", "InventoryReport/ir-1:0.0")
        assert first.occurred_at == datetime(2024, 6, 30, 10, 0, tzinfo=UTC)

    def test_counting_time_of_the_listing(self) -> None:
        """A listing's countingDateTime is the count's business time."""
        body = report()
        body["inventoryListing"][0]["countingDateTime"] = "2024-06-30T16:30:00+08:00"
        assert run(body).events[0].event.occurred_at == datetime(2024, 6, 30, 8, 30, tzinfo=UTC)

    def test_difference_is_refused(self) -> None:
        """A difference report is refused naming countType: counted quantities are needed."""
        result = run(report(countType="difference"))
        assert [(f.code, f.location.field) for f in result.failures] == [
            ("not-supported", "InventoryReport.countType")
        ]

    def test_draft_is_skipped(self) -> None:
        """A draft report is archived and skipped: its counts are not final."""
        result = run(report(status="draft"))
        assert (result.events, result.failures, len(result.skipped)) == ((), (), 1)

    def test_negative_count_is_refused(self) -> None:
        """A negative count fails, naming the quantity's path."""
        body = report()
        body["inventoryListing"][0]["item"][1]["quantity"]["value"] = -1
        result = run(body)
        assert (
            result.failures[0].location.field == "InventoryReport.inventoryListing[0].item[1].quantity.value"
        )

    def test_stub_without_required_elements(self) -> None:
        """A report without countType and reportedDateTime fails validation naming both."""
        result = run({"resourceType": "InventoryReport", "status": "draft"})
        assert (
            result.failures[0].location.field == "InventoryReport.countType, InventoryReport.reportedDateTime"
        )


class TestOtherResources:
    def test_inventory_item_defines_a_fhir_item(self) -> None:
        """An InventoryItem with a non-SPD code and a name gives inventory.item_defined."""
        result = run(
            {
                "resourceType": "InventoryItem",
                "id": "ii",
                "status": "active",
                "code": [{"coding": [{"system": "urn:v", "code": "A1"}]}],
                "name": [{"nameType": {"code": "trade-name"}, "language": "zh", "name": "无菌纱布"}],
                "baseUnit": {"text": "包"},
            }
        )
        assert types(result) == ["inventory.item_defined"]
        assert payloads(result)[0] == {
            "item_code": "urn:v|A1",
            "name": "无菌纱布",
            "unit": "包",
            "high_value": False,
        }

    def test_inventory_item_for_spd_item_is_skipped(self) -> None:
        """An InventoryItem for an SPD item is skipped: the SPD item master defines those."""
        result = run(
            {
                "resourceType": "InventoryItem",
                "status": "active",
                "name": [{"nameType": {"code": "x"}, "language": "zh", "name": "n"}],
                "code": [{"coding": [{"system": SPD_ITEM, "code": "HC1"}]}],
            }
        )
        assert result.skipped == (
            "resource: InventoryItem for SPD item HC1 archived; the SPD item master defines SPD items",
        )

    def test_supply_request_is_skipped(self) -> None:
        """A SupplyRequest is archived and skipped with the documented reason."""
        result = run(
            {
                "resourceType": "SupplyRequest",
                "status": "active",
                "quantity": {"value": 5},
                "item": {"concept": {"text": "纱布"}},
            }
        )
        assert result.skipped == ("resource: SupplyRequest archived; no canonical event in catalogue v1",)
        assert result.units == 1

    def test_location_is_skipped(self) -> None:
        """A Location is archived and skipped: code maps come from the mapping."""
        result = run({"resourceType": "Location", "id": "l", "name": "住院部5楼ICU"})
        assert result.skipped[0].startswith("resource: Location archived")
