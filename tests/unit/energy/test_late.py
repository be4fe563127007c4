"""Late readings re-judge hours already judged: an anomaly they refute is cleared, one they reveal
is raised, and judging again changes nothing more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from projections.energy import Energy
from projections.energy.tables import anomalies, rejudge
from schemas.facility import FacilityAnomalyCleared, FacilityAnomalyDetected, FacilityMeterRead
from tests.unit.energy.factories import engine_with, reading

H = timedelta(hours=1)
Q = timedelta(minutes=15)
BEGIN = datetime(2023, 12, 11, 16, tzinfo=UTC)  # local midnight; three weeks of history follow


def _register(quarters: int, extra: dict[datetime, float] | None = None) -> list[FacilityMeterRead]:
    """Quarter-hour readings of one meter: 0.5 kWh a quarter at night (local), 2.5 by day."""
    value, out = 1000.0, []
    for i in range(quarters + 1):
        at = BEGIN + i * Q
        if i:
            value += (0.5 if (at + timedelta(hours=8)).hour < 6 else 2.5) + (extra or {}).get(at, 0.0)
        out.append(reading("E1", at, round(value, 3)))
    return out


def _kinds(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_late_readings_reveal_a_surge_the_spread_had_hidden() -> None:
    """Four hours arrive late; the hour between them that used 26 kWh (not 10) was spread as 14 a
    hour, no surge. When they land, those hours are judged again: the surge is raised, with its
    evidence, once."""
    noon = BEGIN + timedelta(weeks=3, days=2, hours=12)
    surge = noon + H
    extra = {surge + k * Q: 4.0 for k in range(1, 5)}  # +16 kWh within the surge hour
    evs = _register(4 * 24 * (21 + 3), extra)
    late = [e for e in evs if noon < e.occurred_at < noon + 4 * H]
    first = [e for e in evs if e not in late]
    p = Energy()
    engine = engine_with(p)
    now = evs[-1].occurred_at + timedelta(minutes=5)
    with engine.begin() as conn:
        p.apply(conn, first)
        before = list(p.tick(conn, now))
        assert [e.payload.kind for e in _kinds(before, FacilityAnomalyDetected)] == ["gap"]

        p.apply(conn, late)
        assert conn.execute(select(rejudge.c.since)).scalar() == noon  # the gap's window, judged whole
        after = list(p.tick(conn, now))
        again = list(p.tick(conn, now + H))
        left = conn.execute(select(rejudge)).all()
    (raised,) = _kinds(after, FacilityAnomalyDetected)
    assert raised.payload.kind == "surge"
    assert (raised.payload.window_start, raised.payload.window_end) == (surge, surge + H)
    assert (float(raised.payload.baseline or 0), float(raised.payload.observed or 0)) == (10.0, 26.0)
    assert again == []
    assert left == []


def test_late_readings_clear_a_gap_they_fill() -> None:
    """Two hours without a reading, at the edge of what was judged: an open gap. The readings
    arrive late; judged again, the hours are whole and the gap is cleared, saying why."""
    evs = _register(4 * 24 * 22 + 2)  # the last reading at half past: its hour is not complete
    edge = evs[-1].occurred_at - timedelta(hours=2, minutes=30)
    late = [e for e in evs if edge < e.occurred_at < evs[-1].occurred_at]
    first = [e for e in evs if e not in late]
    p = Energy()
    engine = engine_with(p)
    now = evs[-1].occurred_at + timedelta(minutes=5)
    with engine.begin() as conn:
        p.apply(conn, first)
        (gap,) = _kinds(list(p.tick(conn, now)), FacilityAnomalyDetected)
        assert (gap.payload.kind, gap.payload.window_start, gap.payload.window_end) == (
            "gap",
            edge,
            edge + 2 * H,
        )
        assert conn.execute(select(anomalies.c.cleared_at)).scalar() is None

        p.apply(conn, late)
        after = list(p.tick(conn, now))
        again = list(p.tick(conn, now + timedelta(minutes=1)))
        cleared_at = conn.execute(select(anomalies.c.cleared_at)).scalar()
    (cleared,) = _kinds(after, FacilityAnomalyCleared)
    assert cleared.payload.anomaly_id == gap.payload.anomaly_id
    assert "late readings" in cleared.payload.reason
    assert _kinds(after, FacilityAnomalyDetected) == []
    assert cleared_at is not None
    assert again == []
