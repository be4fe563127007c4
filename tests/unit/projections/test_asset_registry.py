"""The asset registry fold: what each asset event does to the golden row and the crosswalk."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projections.assets.registry import AssetRegistry, count_assets, get_asset
from projections.runtime.tracking import apply_batch
from schemas._base import DeptRef, Money
from schemas.assets import Category
from tests.unit.projections.factories import (
    T0,
    corrected,
    decommissioned,
    linked,
    records,
    registered,
    relocated,
    status_changed,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase

HOUR = timedelta(hours=1)


class _Feed:
    """Applies events to the registry one batch per call, at increasing offsets."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.offset = 0

    def __call__(self, *events: EventBase) -> None:
        apply_batch(self.engine, AssetRegistry(), records(events, start=self.offset))
        self.offset += len(events)

    def asset(self, asset_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = get_asset(conn, asset_id)
        assert row is not None, asset_id
        return row


class TestRegistered:
    def test_registration_fills_every_column_from_the_details(self, engine: Engine) -> None:
        """asset.registered maps department, category, money, status and identifiers onto the row."""
        feed = _Feed(engine)
        feed(
            registered(
                "r1",
                "A1",
                serial_number="SN-1",
                acquired_on=date(2019, 5, 6),
                net_value=Money(amount=Decimal("0.10")),
                useful_life_years=Decimal("8.5"),
            )
        )
        row = feed.asset("A1")
        assert row["name"] == "呼吸机"
        assert (row["department_code"], row["department_name"]) == ("ICU", "重症医学科")
        assert (row["category_code"], row["status"]) == ("6854", "in_use")
        assert (row["original_value"], row["net_value"], row["currency"]) == (
            Decimal("185000.00"),
            Decimal("0.10"),
            "CNY",
        )
        assert row["useful_life_years"] == Decimal("8.5")
        assert row["acquired_on"] == date(2019, 5, 6)
        assert (row["source_system"], row["decommissioned"]) == ("hrp", False)
        assert row["first_recorded_at"] == T0 + timedelta(minutes=5)
        assert row["identifiers"] == [
            {"scheme": "hrp.card", "value": "ZC-A1", "linked_by": "registered"},
            {"scheme": "serial", "value": "迈瑞|SN-1", "linked_by": "registered"},
        ]

    def test_a_second_registration_only_fills_empty_fields(self, engine: Engine) -> None:
        """A later registration by another system adds what is missing and overrides nothing."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", name="呼吸机", udi=None))
        feed(registered("r2", "A1", name="Ventilator", udi="(01)0694", card="SPD-9"))
        row = feed.asset("A1")
        assert (row["name"], row["udi"]) == ("呼吸机", "(01)0694")
        assert [(i["scheme"], i["value"]) for i in row["identifiers"]] == [
            ("hrp.card", "SPD-9"),
            ("hrp.card", "ZC-A1"),
            ("udi", "(01)0694"),
        ]


class TestDetailsCorrected:
    def test_only_the_named_fields_change(self, engine: Engine) -> None:
        """Fields set in the correction's details but absent from changed_fields are left alone."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", model="SV300"))
        feed(
            corrected(
                "c1",
                "A1",
                ["name", "category"],
                name="高端呼吸机",
                model="WRONG",
                category=Category(code="6821", name="医用电子仪器设备"),
            )
        )
        row = feed.asset("A1")
        assert (row["name"], row["model"]) == ("高端呼吸机", "SV300")
        assert (row["category_code"], row["category_name"]) == ("6821", "医用电子仪器设备")

    def test_a_correction_can_clear_a_field(self, engine: Engine) -> None:
        """A changed field with no value in the correction becomes empty."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", manufacturer="迈瑞"))
        feed(corrected("c1", "A1", ["manufacturer"]))
        assert feed.asset("A1")["manufacturer"] is None

    def test_a_correction_applies_even_when_older_than_the_current_state(self, engine: Engine) -> None:
        """Corrections follow recorded order, not business time: an old-dated correction still applies."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0 + 10 * HOUR))
        feed(corrected("c1", "A1", ["department"], at=T0, department=DeptRef(code="ER", name="急诊科")))
        assert feed.asset("A1")["department_code"] == "ER"

    def test_unknown_changed_field_names_are_ignored(self, engine: Engine) -> None:
        """A changed_fields entry that is not an AssetDetails field touches nothing."""
        feed = _Feed(engine)
        feed(registered("r1", "A1"))
        before = feed.asset("A1")
        feed(corrected("c1", "A1", ["asset_id", "colour"]))
        after = feed.asset("A1")
        assert {k: v for k, v in after.items() if k != "updated_event_id"} == {
            k: v for k, v in before.items() if k != "updated_event_id"
        }


class TestStateChanges:
    def test_a_late_older_status_change_does_not_overwrite_a_newer_one(self, engine: Engine) -> None:
        """Status changes apply in business time: an older one arriving later is ignored."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0))
        feed(status_changed("s-new", "A1", "under_repair", at=T0 + 2 * HOUR, text="维修中"))
        feed(status_changed("s-old", "A1", "idle", at=T0 + HOUR))
        row = feed.asset("A1")
        assert (row["status"], row["status_text"]) == ("under_repair", "维修中")
        assert row["last_occurred_at"] == T0 + 2 * HOUR

    def test_a_status_change_at_the_same_time_applies(self, engine: Engine) -> None:
        """Equal business times apply in arrival order."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0), status_changed("s1", "A1", "idle", at=T0))
        assert feed.asset("A1")["status"] == "idle"

    def test_relocation_moves_department_and_location_unless_older(self, engine: Engine) -> None:
        """A relocation sets department and place; an older one arriving later does not."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0))
        feed(relocated("m1", "A1", code="ER", name="急诊科", location="抢救室3床", at=T0 + 2 * HOUR))
        feed(relocated("m0", "A1", code="OR", name="手术室", at=T0 + HOUR))
        row = feed.asset("A1")
        assert (row["department_code"], row["department_name"], row["location"]) == (
            "ER",
            "急诊科",
            "抢救室3床",
        )

    def test_relocation_without_a_department_only_moves_the_place(self, engine: Engine) -> None:
        """A relocation naming only a place keeps the department."""
        feed = _Feed(engine)
        feed(
            registered("r1", "A1", at=T0), relocated("m1", "A1", code=None, name=None, location="库房", at=T0)
        )
        row = feed.asset("A1")
        assert (row["department_code"], row["location"]) == ("ICU", "库房")

    def test_decommissioning_scraps_the_asset(self, engine: Engine) -> None:
        """asset.decommissioned flags the row and sets status scrapped."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0), decommissioned("d1", "A1", at=T0 + HOUR))
        row = feed.asset("A1")
        assert (row["decommissioned"], row["status"]) == (True, "scrapped")

    def test_a_late_decommission_is_recorded_without_overwriting_newer_status(self, engine: Engine) -> None:
        """The decommission flag is a terminal fact; its status change still obeys business time."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", at=T0), status_changed("s1", "A1", "sealed", at=T0 + 3 * HOUR))
        feed(decommissioned("d1", "A1", at=T0 + HOUR))
        row = feed.asset("A1")
        assert (row["decommissioned"], row["status"]) == (True, "sealed")

    def test_an_event_before_registration_creates_a_provisional_row_that_registration_fills(
        self, engine: Engine
    ) -> None:
        """Nothing arriving early is dropped: the row exists from the first event and is completed later."""
        feed = _Feed(engine)
        feed(status_changed("s1", "A1", "under_repair", at=T0 + HOUR))
        assert feed.asset("A1")["name"] is None
        feed(registered("r1", "A1", at=T0))
        row = feed.asset("A1")
        assert (row["name"], row["status"]) == ("呼吸机", "under_repair")
        assert row["last_occurred_at"] == T0 + HOUR


class TestIdentifiers:
    def test_records_naming_the_same_card_are_one_device(self, engine: Engine) -> None:
        """A second record (or a link) naming an already linked card merges into the first record."""
        feed = _Feed(engine)
        feed(registered("r1", "A1", card="ZC-1"), registered("r2", "A2", card="ZC-1"))
        feed(linked("l1", "A3", "hrp.card", "ZC-1"))
        row = feed.asset("A1")
        assert [(i["scheme"], i["value"]) for i in row["identifiers"]] == [("hrp.card", "ZC-1")]
        assert row["merged_from"] == ["A2", "A3"]
        assert feed.asset("A2")["asset_id"] == "A1"
        with engine.connect() as conn:
            assert count_assets(conn) == 1

    def test_identifier_linked_adds_to_the_crosswalk(self, engine: Engine) -> None:
        """asset.identifier_linked adds a (scheme, value) for the asset."""
        feed = _Feed(engine)
        feed(registered("r1", "A1"), linked("l1", "A1", "udi", "(01)06942020"))
        assert {"scheme": "udi", "value": "(01)06942020", "linked_by": "mapping"} in feed.asset("A1")[
            "identifiers"
        ]
        with engine.connect() as conn:
            assert count_assets(conn) == 1
