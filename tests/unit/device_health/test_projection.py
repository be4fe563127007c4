"""The device_health read model: telemetry in, early warnings (and work orders) out by tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, func, select

from adapters.base import TranslateContext
from adapters.devlog.mapping import default_mapping
from adapters.devlog.translate import translate
from bench.telemetry_synth import generate, write_csv
from hub.ports import RawRecord
from projections.device_health import AssetFacts, DeviceHealth, DeviceHealthConfig
from projections.device_health.queries import device_health, open_warnings_of, telemetry_of
from projections.device_health.tables import days, telemetry, warnings
from schemas._base import Identifier
from schemas.ids import asset_id_for
from schemas.telemetry import AssetEarlyWarning, AssetEarlyWarningCleared, AssetTelemetryRecorded, DeviceCode
from schemas.work_orders import WorkOrderRequested

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Connection, Engine

    from bench.telemetry_synth import Fleet

CTX = TranslateContext(site="main", tz=__import__("zoneinfo").ZoneInfo("Asia/Shanghai"),
                       adapter_version="devlog/test", mapping_version="t")  # fmt: skip
NOW = datetime(2024, 6, 30, 4, 0, tzinfo=UTC)


def _events(fleet: Fleet, tmp_path: Path) -> list[AssetTelemetryRecorded]:
    path = tmp_path / "fleet.csv"
    write_csv(fleet, path)
    raw = RawRecord(raw_ref="r", system="devlog", site="main", message_id="fleet.csv", sha256="x", size=0,
                    transport="file", received_at=NOW, metadata={"filename": "fleet.csv"})  # fmt: skip
    result = translate(raw, path.read_bytes(), default_mapping(), CTX)
    assert not result.failures
    return [e.event for e in result.events if isinstance(e.event, AssetTelemetryRecorded)]


def _model(fleet: Fleet) -> DeviceHealth:
    by_subject = {asset_id_for(Identifier(scheme="eui64", value=e)): pm for e, pm in fleet.last_pm.items()}

    def facts(_conn: Connection, subject: str) -> AssetFacts | None:
        return AssetFacts(asset_id=f"GOLD-{subject[-6:]}", last_pm=by_subject.get(subject))

    return DeviceHealth(DeviceHealthConfig(facts=facts))


def _engine(model: DeviceHealth) -> Engine:
    engine = create_engine("sqlite://")
    model.metadata.create_all(engine)
    return engine


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate(30, 60, 5, share=0.125)


@pytest.fixture(scope="module")
def fleet_events(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> list[AssetTelemetryRecorded]:
    return _events(fleet, tmp_path_factory.mktemp("fleet"))


class TestEndToEnd:
    def test_the_synthetic_fleet_through_translation_apply_and_tick_finds_the_labels(
        self, fleet: Fleet, fleet_events: list[AssetTelemetryRecorded]
    ) -> None:
        """Device log -> devlog -> apply -> tick: warnings open on the labelled (device, category)."""
        model = _model(fleet)
        engine = _engine(model)
        events = fleet_events
        with engine.begin() as conn:
            model.apply(conn, events)
            derived = model.tick(conn, NOW)
        subject_of = {asset_id_for(Identifier(scheme="eui64", value=e)): e for e, _, _ in fleet.devices}
        with engine.connect() as conn:
            still_open = {(subject_of[r.subject], r.category) for r in conn.execute(
                select(warnings).where(warnings.c.cleared_at.is_(None)))}  # fmt: skip
        found = still_open & fleet.labels
        assert len(found) >= 0.9 * len(fleet.labels)
        assert len(still_open - fleet.labels) <= 0.2 * len(still_open)
        opened = [e for e in derived if isinstance(e, AssetEarlyWarning)]
        assert opened
        assert all(e.payload.asset_id.startswith("GOLD-") for e in opened)
        assert all(e.payload.evidence.window_end > e.payload.evidence.window_start for e in opened)

    def test_work_orders_follow_the_rules_that_ask_for_them(
        self, fleet: Fleet, fleet_events: list[AssetTelemetryRecorded]
    ) -> None:
        """Error recurrence and PM overdue file `workorder.requested` (channel telemetry); battery does not."""
        model = _model(fleet)
        engine = _engine(model)
        with engine.begin() as conn:
            model.apply(conn, fleet_events)
            derived = model.tick(conn, NOW)
        orders = [e for e in derived if isinstance(e, WorkOrderRequested)]
        asked = {
            e.payload.rule_id
            for e in derived
            if isinstance(e, AssetEarlyWarning) and e.payload.open_work_order
        }
        assert orders
        assert asked <= {"error-recurrence", "pm-overdue"}
        assert {o.payload.channel for o in orders} == {"telemetry"}
        causes = {str(e.event_id) for e in derived if isinstance(e, AssetEarlyWarning)}
        assert {o.causation_id for o in orders} <= causes

    def test_applying_twice_and_ticking_again_changes_nothing(
        self, fleet: Fleet, fleet_events: list[AssetTelemetryRecorded]
    ) -> None:
        """Resent telemetry of the raw window is one record; a second tick with nothing new concludes
        nothing. (A resend of an older record is stopped by the runtime's ledger of applied ids.)"""
        model = _model(fleet)
        engine = _engine(model)
        events = fleet_events
        recent = [e for e in events if e.occurred_at.date() >= date(2024, 4, 25)]
        with engine.begin() as conn:
            model.apply(conn, events)
            model.apply(conn, recent[:50])
            model.tick(conn, NOW)
            again = model.tick(conn, NOW + timedelta(hours=1))
            rows = conn.execute(select(func.count()).select_from(telemetry)).scalar_one()
            folded = conn.execute(select(func.sum(days.c.records))).scalar_one()
        assert rows == len([e for e in events if e.occurred_at.date() >= date(2024, 3, 30)])  # 30 days + last
        assert folded == len(events)
        assert again == []


class TestLifecycle:
    def test_a_warning_clears_when_its_rule_no_longer_finds_it(self, tmp_path: Path) -> None:
        """An error code on three days opens a warning; two quiet weeks later it is cleared."""
        fleet = generate(6, 40, 3, share=0.0)
        model = _model(fleet)
        engine = _engine(model)
        events = _events(fleet, tmp_path)
        target = events[0].subject
        noisy = []
        for e in events:
            day = e.occurred_at.date()
            if e.subject == target and day in {date(2024, 3, 2), date(2024, 3, 4), date(2024, 3, 6)}:
                payload = e.payload.model_copy(update={"error_codes": [DeviceCode(code="E-999")]})
                e = e.model_copy(update={"payload": payload})  # noqa: PLW2901
            noisy.append(e)
        with engine.begin() as conn:
            model.apply(conn, noisy)
            derived = model.tick(conn, NOW)
        kinds = [
            (type(e).__name__, getattr(e.payload, "rule_id", None))
            for e in derived
            if e.subject.endswith(target[-6:])
        ]
        assert ("AssetEarlyWarning", "error-recurrence") in kinds
        assert ("AssetEarlyWarningCleared", "error-recurrence") in kinds
        cleared = next(e for e in derived if isinstance(e, AssetEarlyWarningCleared))
        assert "no longer found" in cleared.payload.reason


class TestQueries:
    def test_health_lists_devices_with_open_warnings_and_telemetry_reads_back(
        self, fleet: Fleet, fleet_events: list[AssetTelemetryRecorded]
    ) -> None:
        """`device_health` lists warned devices by department; `telemetry_of` returns a device's records."""
        model = _model(fleet)
        engine = _engine(model)
        events = fleet_events
        with engine.begin() as conn:
            model.apply(conn, events)
            model.tick(conn, NOW)
        with engine.connect() as conn:
            rows, total = device_health(conn, department=None, warned_only=True, limit=500, offset=0)
            assert total == len(rows) > 0
            assert all(r["warnings"] for r in rows)
            icu, _ = device_health(conn, department="重症医学科", warned_only=False, limit=500, offset=0)
            assert icu
            assert {r["dept_name"] for r in icu} == {"重症医学科"}
            subject = rows[0]["subject"]
            records = telemetry_of(conn, [subject], start=None, end=None, limit=1000)
            assert len(records) == 31  # the raw window: the latest day and the 30 before it
            assert records[0]["at"] > records[-1]["at"]  # newest first
            flags = open_warnings_of(conn, [subject, "AST-nothing"])
            assert set(flags) == {subject}


class TestBothDoors:
    def test_the_fleet_as_pcd01_messages_gives_the_same_warnings_as_its_device_log(
        self, tmp_path: Path
    ) -> None:
        """The same fleet through the HIS door (PCD-01 over MLLP) and the devlog door: same open warnings."""
        from adapters.his import ADAPTER as HIS
        from adapters.his.mapping import default_mapping as his_mapping
        from bench.telemetry_synth import hl7_messages

        fleet = generate(10, 40, 8, share=0.1)
        payload = "".join(hl7_messages(fleet)).encode("utf-8")
        raw = RawRecord(raw_ref="r", system="his", site="main", message_id="fleet.hl7", sha256="x", size=0,
                        transport="file", received_at=NOW, metadata={"filename": "fleet.hl7"})  # fmt: skip
        translated = HIS.translate(raw, payload, his_mapping(), CTX)
        assert not translated.failures
        assert translated.accounting.unclaimed == {}
        by_hl7 = [e.event for e in translated.events if isinstance(e.event, AssetTelemetryRecorded)]
        by_log = _events(fleet, tmp_path)
        assert len(by_hl7) == len(by_log) == len(fleet.rows)

        def warned(events: list[AssetTelemetryRecorded]) -> set[tuple[str, str]]:
            model = _model(fleet)
            engine = _engine(model)
            with engine.begin() as conn:
                model.apply(conn, events)
                model.tick(conn, NOW)
                rows = conn.execute(select(warnings.c.subject, warnings.c.rule_id, warnings.c.cleared_at))
                return {(s, r) for s, r, cleared in rows if cleared is None}

        found = warned(by_hl7)
        assert found
        assert found == warned(by_log)
