"""Emergency availability: classes, per-department summary, the pool, and the kinds index, kept on apply."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from projections.assets import availability as avail
from projections.assets.availability import AvailabilityConfig, PoolRule
from projections.assets.registry import RegistryConfig
from projections.assets.tables import availability, kinds
from projections.runtime.db import make_engine
from projections.runtime.tracking import ensure_tables
from schemas._base import DeptRef
from tests.unit.projections.factories import corrected
from tests.unit.projections.registry_factories import (
    EQUIP,
    ER,
    HOUR,
    ICU,
    T0,
    Feed,
    calibrated,
    card,
    hrp,
    link,
    loaned,
    mint,
    moved,
    returned,
    scrapped,
    status,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

TODAY = date(2024, 6, 1)
POOL = RegistryConfig(
    availability=AvailabilityConfig(
        pool_rules=(PoolRule(department="设备科", name_contains="呼吸机"),),
        pool_cards=frozenset({"ZC-ICU-1"}),
        calibration_required_categories=frozenset({"6821"}),
    )
)


@pytest.fixture
def pooled(db_url: str) -> Iterator[Feed]:
    """A registry configured with an emergency pool and a category that requires calibration."""
    engine = make_engine(db_url)
    feed = Feed(engine, POOL)
    ensure_tables(engine, feed.projection)
    yield feed
    engine.dispose()


def _classes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows, _ = avail.devices(
            conn,
            device_type=None,
            category=None,
            department=None,
            klass=None,
            pool=None,
            today=TODAY,
            limit=500,
            offset=0,
        )
    return {r["asset_id"]: r["availability"] for r in rows}


def _summary(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return avail.summary(conn, device_type=where.get("type"), category=where.get("category"), today=TODAY)


class TestClasses:
    def test_in_use_and_idle_devices_are_ready(self, engine: Engine) -> None:
        """A serviceable device with no calibration requirement is ready."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), hrp("r2", "ZC-2", status="idle"))
        assert _classes(engine) == {card("ZC-1"): "ready", card("ZC-2"): "ready"}

    def test_repair_loan_and_other_statuses(self, engine: Engine) -> None:
        """Under repair, lent to another department, sealed: each in its class; lent within its own department stays ready."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), hrp("r2", "ZC-2"), hrp("r3", "ZC-3"), hrp("r4", "ZC-4"))
        feed(
            status("s1", card("ZC-1"), "under_repair", at=T0 + HOUR),
            loaned("l2", card("ZC-2"), "JY-2", ER, at=T0 + HOUR),
            status("s3", card("ZC-3"), "sealed", at=T0 + HOUR),
            loaned("l4", card("ZC-4"), "JY-4", ICU, at=T0 + HOUR),
        )
        assert _classes(engine) == {
            card("ZC-1"): "under_repair",
            card("ZC-2"): "on_loan",
            card("ZC-3"): "unavailable",
            card("ZC-4"): "ready",
        }

    def test_a_returned_device_is_ready_again(self, engine: Engine) -> None:
        """The class follows the loan's return on apply."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l1", card("ZC-1"), "JY-1", ER, at=T0 + HOUR))
        feed(returned("b1", card("ZC-1"), "JY-1", at=T0 + 2 * HOUR))
        assert _classes(engine) == {card("ZC-1"): "ready"}

    def test_calibration_decides_readiness_as_of_the_query_day(self, engine: Engine) -> None:
        """Failed calibration is due; an expired one is due on days after its validity; a valid one is ready."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), hrp("r2", "ZC-2"), hrp("r3", "ZC-3"))
        feed(
            calibrated("c1", card("ZC-1"), on=date(2024, 1, 1), until=date(2025, 1, 1), result="failed"),
            calibrated("c2", card("ZC-2"), on=date(2023, 5, 1), until=date(2024, 5, 31)),
            calibrated("c3", card("ZC-3"), on=date(2024, 1, 1), until=date(2024, 6, 1)),
        )
        assert _classes(engine) == {
            card("ZC-1"): "calibration_due",
            card("ZC-2"): "calibration_due",
            card("ZC-3"): "ready",
        }

    def test_a_category_requiring_calibration_is_not_ready_without_one(self, pooled: Feed) -> None:
        """Configured categories need a recorded valid calibration to be ready."""
        pooled(hrp("r1", "ZC-1", category={"code": "6821", "name": "医用电子仪器设备"}))
        assert _classes(pooled.engine) == {card("ZC-1"): "calibration_due"}
        pooled(calibrated("c1", card("ZC-1"), on=date(2024, 5, 1), until=date(2025, 5, 1)))
        assert _classes(pooled.engine) == {card("ZC-1"): "ready"}

    def test_decommissioned_devices_leave_the_availability_view(self, engine: Engine) -> None:
        """A scrapped device is not counted anywhere."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), scrapped("d1", card("ZC-1"), at=T0 + HOUR))
        assert _classes(engine) == {}


class TestSummary:
    @pytest.fixture
    def fleet(self, pooled: Feed) -> Engine:
        """Ventilators in the ICU, the ER and 设备科 (the pool), and one monitor."""
        pooled(
            hrp("r1", "ZC-ICU-1"),
            hrp("r2", "ZC-ICU-2"),
            hrp("r3", "ZC-ER-1", department=ER, model="Savina 300"),
            hrp("r4", "ZC-EQ-1", department=EQUIP),
            hrp("r5", "ZC-EQ-2", department=EQUIP),
            hrp("r6", "ZC-MON-1", name="监护仪", model="iMEC10", category={"code": "6821"}),
        )
        pooled(
            status("s1", card("ZC-ICU-2"), "under_repair", at=T0 + HOUR),
            loaned("l1", card("ZC-EQ-2"), "JY-1", ER, at=T0 + HOUR),
        )
        return pooled.engine

    def test_counts_per_department_with_pool(self, fleet: Engine) -> None:
        """type=呼吸机: ready, on loan and under repair per department, most ready first, pool counted."""
        depts = {d["department_name"]: d for d in _summary(fleet, type="呼吸机")}
        assert set(depts) == {"重症医学科", "急诊科", "设备科"}
        icu, er, equip = depts["重症医学科"], depts["急诊科"], depts["设备科"]
        assert (icu["ready"], icu["under_repair"], icu["total"], icu["pool"], icu["pool_ready"]) == (
            1,
            1,
            2,
            1,
            1,
        )
        assert (er["ready"], er["total"], er["pool"]) == (1, 1, 0)
        assert (equip["ready"], equip["on_loan"], equip["pool"], equip["pool_ready"]) == (1, 1, 2, 1)

    def test_type_matches_the_model_too_case_insensitively(self, fleet: Engine) -> None:
        """type= is a substring of name or model, ignoring case."""
        assert [(d["department_name"], d["total"]) for d in _summary(fleet, type="savina")] == [("急诊科", 1)]

    def test_category_selects_by_code(self, fleet: Engine) -> None:
        """category= alone selects devices of that class code."""
        assert [(d["department_name"], d["calibration_due"]) for d in _summary(fleet, category="6821")] == [
            ("重症医学科", 1)
        ]

    def test_an_unknown_type_is_empty(self, fleet: Engine) -> None:
        """No kind matches: no departments."""
        assert _summary(fleet, type="透析机") == []


class TestKinds:
    def test_the_kinds_table_holds_exactly_the_kinds_in_use(self, engine: Engine) -> None:
        """Renaming the only device of a kind drops that kind; a scrapped device's kind goes too."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), hrp("r2", "ZC-2", name="除颤仪", model="R Series"))
        feed(
            corrected("c1", card("ZC-1"), ["name"], name="高端呼吸机"),
            scrapped("d2", card("ZC-2"), at=T0 + HOUR),
        )
        with engine.connect() as conn:
            assert conn.execute(select(kinds.c.name, kinds.c.model)).all() == [("高端呼吸机", "SV300")]

    def test_a_merged_record_leaves_no_availability_row_behind(self, engine: Engine) -> None:
        """After a provisional record merges, only the golden record is counted."""
        spd = mint("spd.code", "S-1")
        feed = Feed(engine)
        feed(status("s1", spd, "idle", system="spd"), hrp("r1", "ZC-1"))
        feed(link("k1", card("ZC-1"), "spd.code", "S-1"))
        with engine.connect() as conn:
            assert conn.execute(select(availability.c.asset_id)).scalars().all() == [card("ZC-1")]


class TestPoolConfig:
    def test_rules_ids_and_cards(self) -> None:
        """A device is in the pool by asset id, by HRP card, or by matching every field of a rule."""
        config = AvailabilityConfig(
            pool_asset_ids=frozenset({"LOCAL-1"}),
            pool_cards=frozenset({"ZC-9"}),
            pool_rules=(PoolRule(department="0901", name_contains="呼吸机", category="6854"),),
        )
        base = {
            "department_code": "0101",
            "department_name": "重症医学科",
            "name": "呼吸机",
            "category_code": "6854",
        }
        assert config.in_pool({**base, "asset_id": "LOCAL-1"})
        assert config.in_pool({**base, "asset_id": card("ZC-9")})
        assert not config.in_pool({**base, "asset_id": card("ZC-8")})
        assert config.in_pool({**base, "asset_id": "X", "department_code": "0901"})
        assert not config.in_pool(
            {**base, "asset_id": "X", "department_code": "0901", "category_code": "6821"}
        )

    def test_the_pool_follows_a_relocation(self, pooled: Feed) -> None:
        """A ventilator moved into 设备科 joins the pool on apply."""
        pooled(
            hrp("r1", "ZC-1"), moved("m1", card("ZC-1"), DeptRef(code="0901", name="设备科"), at=T0 + HOUR)
        )
        with pooled.engine.connect() as conn:
            assert conn.execute(select(availability.c.pool)).scalar_one() is True
