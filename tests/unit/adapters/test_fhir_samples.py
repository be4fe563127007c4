"""The synthetic samples in examples/fhir/ give what their README promises."""

from __future__ import annotations

from decimal import Decimal

from adapters.fhir import bundle_kind, entry_outcomes, response_bundle
from adapters.hrp import ADAPTER as HRP
from adapters.hrp.mapping import default_mapping as hrp_mapping
from schemas._base import DeptRef
from schemas.assets import AssetStatus
from schemas.ids import item_id_for
from tests.unit.adapters._fhir import EXAMPLES, example, payloads, run, types
from tests.unit.adapters._hrp import LEDGER
from tests.unit.adapters._hrp import context as hrp_context
from tests.unit.adapters._hrp import raw_record as hrp_raw
from tests.unit.adapters._spd import DISTRIBUTIONS, RECEIPTS
from tests.unit.adapters._spd import run as spd_run


def sample(name: str):
    content_type = "application/fhir+xml" if name.endswith(".xml") else "application/fhir+json"
    return run(example(name), message_id=name, content_type=content_type)


class TestDevices:
    def test_every_sample_translates_cleanly(self) -> None:
        """Every sample translates without a whole-body error; only the batch has a failed entry."""
        names = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in {".json", ".xml"})
        assert len(names) == 11
        failing = [n for n in names if sample(n).failures]
        assert failing == ["bundle-batch-one-bad-entry.json"]

    def test_devices_land_on_the_hrp_ledger_assets(self) -> None:
        """Each sample Device has the subject the HRP ledger mints for its card number, and its serial."""
        ledger = HRP.translate(
            hrp_raw(LEDGER.name), LEDGER.read_bytes(), hrp_mapping(), hrp_context(hrp_mapping())
        )
        by_card = {
            next(i.value for i in e.event.payload.identifiers if i.scheme == "hrp.card"): e.event
            for e in ledger.events
        }
        for name in (
            "device-ventilator-icu.json",
            "device-infusion-pump-aidc.json",
            "device-infusion-pump-r4b.json",
            "device-ventilator-ricu.xml",
        ):
            event = sample(name).events[0].event
            card = next(i.value for i in event.payload.identifiers if i.scheme == "hrp.card")
            hrp_event = by_card[card]
            assert event.subject == hrp_event.subject, name
            shared = set(event.payload.identifiers) & set(hrp_event.payload.identifiers)
            assert {i.scheme for i in shared} >= {"hrp.card", "serial", "udi"}, name

    def test_pump_from_aidc_is_under_repair(self) -> None:
        """The AIDC-only pump reads its serial from the carrier and is under repair (damaged)."""
        details = sample("device-infusion-pump-aidc.json").events[0].event.payload.details
        assert (details.serial_number, details.status) == ("FV21488637", AssetStatus.UNDER_REPAIR)

    def test_r4b_pump_department(self) -> None:
        """The R4B pump's location display 心血管内科 resolves to department 0201."""
        details = sample("device-infusion-pump-r4b.json").events[0].event.payload.details
        assert details.department == DeptRef(code="0201", name="心血管内科")


class TestInventory:
    def test_stock_lands_where_spd_puts_it(self) -> None:
        """FHIR receipts and transfers name the same items and places as the SPD exports do."""
        spd_receipts = spd_run(RECEIPTS.read_bytes(), RECEIPTS.name)
        spd_places = {(e.event.subject, e.event.payload.location) for e in spd_receipts.events}
        fhir = sample("supplydelivery-central-store.json")
        assert {(e.event.subject, e.event.payload.location) for e in fhir.events} <= spd_places
        spd_moves = spd_run(DISTRIBUTIONS.read_bytes(), DISTRIBUTIONS.name)
        routes = {
            (e.event.subject, e.event.payload.from_location, e.event.payload.to_location)
            for e in spd_moves.events
        }
        moved = sample("supplydelivery-to-icu.json").events[0].event
        assert (moved.subject, moved.payload.from_location, moved.payload.to_location) in routes

    def test_central_store_receipt(self) -> None:
        """The central-store delivery gives two receipts on SPD items, with lot and expiry."""
        result = sample("supplydelivery-central-store.json")
        assert types(result) == ["inventory.received", "inventory.received"]
        assert [e.event.subject for e in result.events] == [
            item_id_for("spd", "DZ02001"),
            item_id_for("spd", "GZ10001"),
        ]
        assert [(p["quantity"], p["lot"], p["expiry"]) for p in payloads(result)] == [
            ("200", "B240601", "2026-05-31"), ("20", "C2405A17", "2027-04-30"),
        ]  # fmt: skip

    def test_transfer_to_icu(self) -> None:
        """The ICU delivery is one transfer from the central store."""
        result = sample("supplydelivery-to-icu.json")
        assert types(result) == ["inventory.transferred"]
        assert payloads(result)[0]["to_location"]["department"] == {"code": "0101", "name": "重症医学科"}

    def test_stocktake(self) -> None:
        """The stocktake gives five counts, summing to what the report lists."""
        result = sample("inventoryreport-stocktake.json")
        assert types(result) == ["inventory.adjusted"] * 5
        assert sum(e.event.payload.counted_quantity for e in result.events) == Decimal(1297)


class TestWorkOrdersAndBundles:
    def test_tasks(self) -> None:
        """The repair request gives a request; the one in progress adds its start."""
        assert types(sample("task-repair-request.json")) == ["workorder.requested"]
        assert types(sample("task-repair-in-progress.json")) == ["workorder.requested", "workorder.started"]

    def test_batch_with_one_bad_entry(self) -> None:
        """The batch sample answers 201, 400, 200, 201, and the 400 names the quantity element."""
        result = sample("bundle-batch-one-bad-entry.json")
        assert bundle_kind(example("bundle-batch-one-bad-entry.json")) == "batch"
        outcomes = entry_outcomes(result)
        assert [o.status for o in outcomes] == ["201 Created", "400 Bad Request", "200 OK", "201 Created"]
        assert outcomes[1].outcome["issue"][0]["expression"] == [
            "SupplyDelivery.suppliedItem[0].quantity.value"
        ]

    def test_transaction(self) -> None:
        """The transaction sample lands whole: five events (the pump reports itself damaged), three created entries."""
        result = sample("bundle-transaction.json")
        assert types(result) == [
            "asset.registered",
            "asset.status_changed",
            "workorder.requested",
            "workorder.on_hold",
            "inventory.transferred",
        ]
        answer = response_bundle("transaction", entry_outcomes(result))
        assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 3
