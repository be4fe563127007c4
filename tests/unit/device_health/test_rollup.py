"""device_health keeps a bounded raw window and rolls older records up (hour/day per metric).

What must hold: records older than the window leave the raw table and their figures are in the
rollups, exactly; the rules judge the same days (same warnings) whatever the window; any order
of arrival and any batching (a replay) gives the same tables; a database written before the
rollups is folded on its first tick; charts (the series query) read the same buckets whether the
days are raw or rolled up.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid4, uuid5
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, delete, func, select, text

from projections.device_health import DeviceHealth, DeviceHealthConfig
from projections.device_health.queries import raw_since, telemetry_series
from projections.device_health.rollup import stagger
from projections.device_health.tables import METADATA, days, devices, rollups, telemetry, warnings
from schemas._base import Identifier, SourceSystem
from schemas.envelope import Source
from schemas.telemetry import AssetTelemetryRecorded, DeviceCode, TelemetryMetric, TelemetryRecordedPayload
from tests.unit.device_health.test_projection import _events, _model
from tests.unit.device_health.test_projection import fleet as fleet  # noqa: PLC0414  (a fixture)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqlalchemy import Connection, Engine

    from bench.telemetry_synth import Fleet

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 30, 4, 0, tzinfo=UTC)
DEVICE = Identifier(scheme="eui64", value="0012A3FFFE000001")


def _record(at: datetime, n: int, *, battery: float | None, alarms: int, pressure: float | None = None,
            error: str | None = None) -> AssetTelemetryRecorded:  # fmt: skip
    metrics = [] if pressure is None else [
        TelemetryMetric(code="MDC_PRESS_AWAY", system="MDC", value=Decimal(f"{pressure:.1f}"), unit="cmH2O")]  # fmt: skip
    return AssetTelemetryRecorded(
        event_id=uuid5(NAMESPACE_URL, f"test:{at.isoformat()}:{n}"),
        occurred_at=at,
        recorded_at=at,
        source=Source(system=SourceSystem.HIS, site="main", message_id=f"m{n}", adapter_version="t"),
        subject="AST-test-device",
        payload=TelemetryRecordedPayload(
            device=DEVICE, device_type="MDC_DEV_SYS_PT_VENT_MDS", usage_hours=Decimal(1000 + n),
            battery_capacity_pct=None if battery is None else Decimal(f"{battery:.2f}"), alarm_count=alarms,
            error_codes=[DeviceCode(code=error)] if error else [], metrics=metrics,
        ),
    )  # fmt: skip


@pytest.fixture
def new_engine(db_url: str) -> Iterator[Callable[[], Engine]]:
    """Fresh read-model databases: in-memory SQLite, or a schema of its own on PostgreSQL."""
    made: list[Engine] = []

    def make() -> Engine:
        if db_url.startswith("sqlite"):
            engine = create_engine("sqlite://")
        else:
            schema = f"t_{uuid4().hex[:12]}"
            admin = create_engine(db_url)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            engine = create_engine(db_url, connect_args={"options": f"-c search_path={schema}"})
        METADATA.create_all(engine)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def _table(conn: Connection, table: Any, *, skip: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    cols = [c for c in table.c if c.name not in skip]
    return [tuple(r) for r in conn.execute(select(*cols).order_by(*table.primary_key.columns))]


def _state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name.removeprefix("device_health_"): _table(conn, t)
                for t in (telemetry, days, rollups, devices, warnings)}  # fmt: skip


def _hourly_records() -> list[AssetTelemetryRecorded]:
    """One device: 3 records an hour from 2024-05-01 to 2024-05-20 (site time), with a pressure."""
    out = []
    start = datetime(2024, 5, 1, tzinfo=TZ)
    n = 0
    for h in range(20 * 24):
        for minute in (5, 25, 45):
            n += 1
            at = start + timedelta(hours=h, minutes=minute)
            out.append(_record(at, n, battery=90.0 - h * 0.01 + minute / 100, alarms=minute // 20,
                               pressure=20.0 + (n % 7), error="E-1" if h % 50 == 0 else None))  # fmt: skip
    return out


class TestRollup:
    def test_records_older_than_the_window_are_rolled_up_with_exact_figures(
        self, new_engine: Callable[[], Engine]
    ) -> None:
        """Raw records kept: the last 3 days back from the latest day's cut (at the device's own hour
        of the day); every older hour is a rollup row per metric with the count, min, max, mean and
        last of its records, and so is every older day (the cut's day partly)."""
        model = DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=3))
        engine = new_engine()
        events = _hourly_records()
        with engine.begin() as conn:
            model.apply(conn, events)
        with engine.connect() as conn:
            first_raw = conn.execute(select(func.min(telemetry.c.day))).scalar_one()
            assert first_raw == date(2024, 5, 17)  # latest day 2024-05-20, minus 3
            cut = stagger("AST-test-device")  # the hour of the day this device's window moves at
            assert raw_since(conn, ["AST-test-device"]) == datetime(2024, 5, 17, cut, 5, tzinfo=TZ)
            assert (
                conn.execute(select(func.count()).select_from(telemetry)).scalar_one() == (4 * 24 - cut) * 3
            )
            hour = datetime(2024, 5, 2, 10, tzinfo=TZ).astimezone(UTC)
            rows = {r["metric"]: r for r in conn.execute(select(rollups).where(
                rollups.c.grain == "hour", rollups.c.bucket == hour)).mappings()}  # fmt: skip
            mine = [
                e for e in events if e.occurred_at.astimezone(TZ).replace(minute=0) == hour.astimezone(TZ)
            ]
            assert len(mine) == 3
            battery = [float(e.payload.battery_capacity_pct or 0) for e in mine]
            r = rows["battery_pct"]
            assert (r["count"], r["min"], r["max"], r["last"]) == (3, min(battery), max(battery), battery[-1])
            assert r["sum_micro"] == sum(round(b * 1_000_000) for b in battery)
            assert (
                rows["alarm_count"]["sum_micro"] == sum(e.payload.alarm_count or 0 for e in mine) * 1_000_000
            )
            pressure = [float(e.payload.metrics[0].value or 0) for e in mine]
            assert rows["MDC_PRESS_AWAY"]["unit"] == "cmH2O"
            assert (rows["MDC_PRESS_AWAY"]["min"], rows["MDC_PRESS_AWAY"]["max"]) == (
                min(pressure),
                max(pressure),
            )
            day = datetime(2024, 5, 2, tzinfo=TZ).astimezone(UTC)
            daily = conn.execute(select(rollups).where(rollups.c.grain == "day", rollups.c.bucket == day,
                                                       rollups.c.metric == "battery_pct")).mappings().one()  # fmt: skip
            assert daily["count"] == 72
            # nothing of the raw window is rolled up, and every older record is
            latest = conn.execute(
                select(func.max(rollups.c.bucket)).where(rollups.c.grain == "day")
            ).scalar_one()
            assert latest == datetime(2024, 5, 17 if cut else 16, tzinfo=TZ).astimezone(UTC)
            rolled = conn.execute(select(func.sum(rollups.c.count)).where(
                rollups.c.grain == "day", rollups.c.metric == "alarm_count")).scalar_one()  # fmt: skip
            assert rolled == (16 * 24 + cut) * 3
            hours = conn.execute(select(func.count()).select_from(rollups).where(
                rollups.c.grain == "hour", rollups.c.metric == "alarm_count")).scalar_one()  # fmt: skip
            assert hours == 16 * 24 + cut  # whole hours only: none split between raw and rolled up

    def test_the_window_moves_with_the_device_and_late_records_join_their_rollup(
        self, new_engine: Callable[[], Engine]
    ) -> None:
        """Records fed day by day: each day's arrival rolls up the day leaving the window; a late
        record of a rolled-up day is added to its rollup. Same tables as all at once."""
        events = _hourly_records()
        late = events.pop(100)  # 2024-05-02, fed last
        by_day = sorted({e.occurred_at.astimezone(TZ).date() for e in events})
        model = DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=3))
        stepwise, whole = new_engine(), new_engine()
        for day in by_day:
            with stepwise.begin() as conn:
                model.apply(conn, [e for e in events if e.occurred_at.astimezone(TZ).date() == day])
                first = conn.execute(select(func.min(telemetry.c.day))).scalar_one()
                assert first == max(by_day[0], day - timedelta(days=3))
        with stepwise.begin() as conn:
            model.apply(conn, [late])
        with whole.begin() as conn:
            model.apply(conn, [*events, late])
        assert _state(stepwise) == _state(whole)

    def test_any_order_and_batching_gives_the_same_tables(
        self, new_engine: Callable[[], Engine], fleet: Fleet, tmp_path: Path
    ) -> None:
        """A replay (one batch, in order) and a live run (shuffled, small batches) build equal tables,
        and their ticks conclude the same warnings."""
        events = _events(fleet, tmp_path)
        model = _model(fleet)
        live, replay = new_engine(), new_engine()
        shuffled = events[:]
        random.Random(3).shuffle(shuffled)
        for start in range(0, len(shuffled), 37):
            with live.begin() as conn:
                model.apply(conn, shuffled[start : start + 37])
        with replay.begin() as conn:
            model.apply(conn, events)
        assert _state(live) == _state(replay)
        for engine in (live, replay):
            with engine.begin() as conn:
                model.tick(conn, NOW)
        assert _state(live) == _state(replay)


class TestRules:
    def test_warnings_are_the_same_with_a_short_window_and_with_every_record_kept(
        self, new_engine: Callable[[], Engine], fleet: Fleet, tmp_path: Path
    ) -> None:
        """The rules judge the device-days, which every record feeds whatever the window: a window of
        2 days (most of the history rolled up) concludes exactly what keeping everything does."""
        events = _events(fleet, tmp_path)
        base = _model(fleet)
        derived = {}
        state = {}
        for raw_days in (0, 2):
            model = DeviceHealth(DeviceHealthConfig(facts=base.config.facts, raw_days=raw_days))
            engine = new_engine()
            with engine.begin() as conn:
                model.apply(conn, events)
                derived[raw_days] = [e.model_dump(mode="json") for e in model.tick(conn, NOW)]
            state[raw_days] = _state(engine)
        assert derived[0]
        assert derived[0] == derived[2]
        assert state[0]["warnings"] == state[2]["warnings"]
        assert state[0]["days"] == state[2]["days"]
        assert len(state[2]["telemetry"]) < len(state[0]["telemetry"]) / 10


class TestUpgrade:
    def test_a_database_of_raw_records_only_is_folded_on_its_first_tick(
        self, new_engine: Callable[[], Engine], fleet: Fleet, tmp_path: Path
    ) -> None:
        """Written before device-days and rollups existed (all raw, no days): the first tick folds the
        days and rolls up what is older than the window, giving what a fresh build gives."""
        events = _events(fleet, tmp_path)
        base = _model(fleet)
        old, fresh = new_engine(), new_engine()
        keep_all = DeviceHealth(DeviceHealthConfig(facts=base.config.facts, raw_days=0))
        with old.begin() as conn:
            keep_all.apply(conn, events)
            conn.execute(delete(days))  # what a database of the earlier version holds: no days
        model = DeviceHealth(DeviceHealthConfig(facts=base.config.facts, raw_days=5))
        with old.begin() as conn:
            upgraded = model.tick(conn, NOW)
        with fresh.begin() as conn:
            model.apply(conn, events)
            built = model.tick(conn, NOW)
        assert upgraded
        assert [e.model_dump(mode="json") for e in upgraded] == [e.model_dump(mode="json") for e in built]
        assert _state(old) == _state(fresh)


class TestSeries:
    @pytest.mark.parametrize("grain", ["hour", "day"])
    def test_a_chart_reads_the_same_buckets_whether_the_days_are_raw_or_rolled_up(
        self, new_engine: Callable[[], Engine], grain: str
    ) -> None:
        """The series over the whole history: from the rollups for old days and the raw window for
        recent ones, equal to folding every raw record (nothing counted twice, nothing lost)."""
        events = _hourly_records()
        answers = []
        for raw_days in (0, 3):
            engine = new_engine()
            with engine.begin() as conn:
                DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=raw_days)).apply(conn, events)
            with engine.connect() as conn:
                answers.append(telemetry_series(
                    conn, ["AST-test-device"], metrics=["battery_pct", "alarm_count", "MDC_PRESS_AWAY"],
                    start=datetime(2024, 5, 1, tzinfo=TZ), end=datetime(2024, 5, 21, tzinfo=TZ),
                    grain=grain, tz=TZ,
                ))  # fmt: skip
        assert answers[0] == answers[1]
        series = {s["metric"]: s for s in answers[1]}
        assert list(series) == ["battery_pct", "alarm_count", "MDC_PRESS_AWAY"]
        buckets = series["alarm_count"]["buckets"]
        assert len(buckets) == (20 * 24 if grain == "hour" else 20)
        assert sum(b["sum"] for b in buckets) == sum(e.payload.alarm_count or 0 for e in events)
        assert series["MDC_PRESS_AWAY"]["unit"] == "cmH2O"


class TestExactlyOnce:
    def test_a_record_resent_after_it_was_rolled_up_counts_once_through_the_runtime(
        self, new_engine: Callable[[], Engine]
    ) -> None:
        """A translator re-publishes a record (same event id, new offset) after its day left the raw
        window: the runtime's ledger of applied ids drops it, so the rollups and days are unchanged."""
        from projections.runtime.tracking import apply_once, ensure_tables
        from tests.unit.projections.test_work_orders_factories import to_records

        events = _hourly_records()
        model = DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=3))
        engine = new_engine()
        ensure_tables(engine, model)
        with engine.begin() as conn:
            apply_once(conn, model, to_records(events))
        before = _state(engine)
        old = events[:5]  # 2024-05-01: rolled up, no longer in the raw table
        with engine.connect() as conn:
            raw = {r[0] for r in conn.execute(select(telemetry.c.event_id))}
        assert not {str(e.event_id) for e in old} & raw
        with engine.begin() as conn:
            apply_once(conn, model, to_records(old, start=len(events)))
        assert _state(engine) == before
