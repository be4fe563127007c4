"""Explainable detection: each detector on a small series, the tick's events, and quality on the
synthetic campus (precision and recall against injected labels, printed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bench.energy_eval import evaluate
from projections.energy import Energy
from projections.energy.detect.gaps import gaps
from projections.energy.detect.hvac import simultaneous
from projections.energy.detect.judge import judge_series
from projections.energy.detect.model import DetectConfig, Series
from projections.energy.detect.stuck import stuck
from projections.energy.detect.surges import surges
from projections.energy.tables import anomalies
from schemas.facility import FacilityAnomalyCleared, FacilityAnomalyDetected
from tests.unit.energy.factories import engine_with, reading

H = timedelta(hours=1)
START = datetime(2024, 1, 1, 16, tzinfo=UTC)  # local midnight, Tuesday 2 January
CONFIG = DetectConfig()


def _weeks(weeks: int, profile: dict[int, float] | None = None) -> dict[datetime, float]:
    """Hourly use: 2 at night, 10 by day (local), a little variation from hour to hour."""
    out = {}
    for i in range(weeks * 7 * 24):
        hour = START + i * H
        local = (hour + timedelta(hours=8)).hour
        base = 2.0 if local < 6 else 10.0
        out[hour] = (profile or {}).get(i, base * (1 + 0.02 * ((i * 7) % 5 - 2)))
    return out


def _judged(weeks: int) -> list[datetime]:
    return [START + timedelta(weeks=weeks - 1) + i * H for i in range(7 * 24)]


class TestDetectors:
    def test_a_surge_names_the_baseline_and_what_it_saw(self) -> None:
        """An hour at 4x the same hour of the previous weeks is a surge, with both figures."""
        values = _weeks(5)
        hot = START + timedelta(weeks=4, hours=14)
        values[hot] = 40.0
        (episode,) = surges(Series("MTR-E/electricity_kwh", values, "kWh"), _judged(5), CONFIG)
        assert (episode.kind, episode.start, episode.end, episode.observed) == ("surge", hot, hot + H, 40.0)
        assert episode.baseline is not None
        assert 9 < episode.baseline < 11
        assert "40.00 kWh/h against" in episode.reason

    def test_a_night_leak_is_reported_once_not_as_surges(self) -> None:
        """Water running all night at 3x the base load: one base-load leak, the night its window."""
        values = _weeks(5)
        for i in range(4 * 7 * 24 + 24, 4 * 7 * 24 + 48):
            values[START + i * H] += 6.0
        found = judge_series(Series("MTR-W/water_m3", values, "m3"), set(values), _judged(5), CONFIG,
                             consumption=True)  # fmt: skip
        assert [e.kind for e in found] == ["base_load_leak"]
        assert found[0].observed is not None
        assert found[0].observed > 7
        assert "night base load" in found[0].reason

    def test_a_frozen_register_is_stuck(self) -> None:
        """Eight hours of zero use while the same hours usually use 10 kWh: stuck, not a gap."""
        values = _weeks(5)
        for i in range(4 * 7 * 24 + 10, 4 * 7 * 24 + 18):
            values[START + i * H] = 0.0
        (episode,) = stuck(Series("MTR-E/electricity_kwh", values, "kWh"), _judged(5), CONFIG)
        assert (episode.kind, (episode.end - episode.start) / H) == ("stuck_meter", 8)

    def test_hours_without_a_reading_are_a_gap(self) -> None:
        """Three hours nobody read: a gap of 3 h; the value is not filled in."""
        hours = _judged(1)
        sampled = set(hours) - set(hours[5:8])
        (episode,) = gaps("MTR-E/electricity_kwh", sampled, hours, CONFIG)
        assert (episode.start, episode.end, episode.observed) == (hours[5], hours[8], None)

    def test_both_valves_open_is_simultaneous_heating_and_cooling(self) -> None:
        """Heating at 60 % and cooling at 45 % for 3 hours in one zone."""
        hours = _judged(1)
        heat = Series("h", {h: (60.0 if 3 <= i < 6 else 0.0) for i, h in enumerate(hours)})
        cool = Series("c", dict.fromkeys(hours, 45.0))
        (episode,) = simultaneous("B-3F-ICU", heat, cool, hours, CONFIG)
        assert (episode.scope, episode.start, episode.observed) == ("zone:B-3F-ICU", hours[3], 45.0)

    def test_too_little_history_judges_nothing(self) -> None:
        """One week of data has no baseline: no surge is invented from it."""
        values = _weeks(1)
        values[START + 14 * H] = 100.0
        assert surges(Series("s", values), _judged(1), CONFIG) == []


class TestTick:
    def test_a_surge_is_detected_then_cleared_with_evidence(self) -> None:
        """A 3-hour surge concludes one anomaly_detected with its window, then anomaly_cleared."""
        q = timedelta(minutes=15)
        value, evs = 1000.0, []
        begin = START - timedelta(weeks=3)
        for i in range(4 * 7 * 24 * 4):
            at = begin + i * q
            local = (at + timedelta(hours=8)).hour
            use = 0.5 if local < 6 else 2.5
            if timedelta(weeks=3, days=2, hours=12) < at - begin <= timedelta(weeks=3, days=2, hours=15):
                use *= 4
            value += use
            evs.append(reading("E1", at, round(value, 3)))
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, evs)
            out = list(p.tick(conn, evs[-1].occurred_at + timedelta(minutes=5)))
            again = list(p.tick(conn, evs[-1].occurred_at + timedelta(minutes=10)))
            rows = conn.execute(select(anomalies)).mappings().all()
        detected = [e for e in out if isinstance(e, FacilityAnomalyDetected)]
        cleared = [e for e in out if isinstance(e, FacilityAnomalyCleared)]
        assert [e.payload.kind for e in detected] == ["surge"]
        payload = detected[0].payload
        surge_start = begin + timedelta(weeks=3, days=2, hours=12)
        assert (payload.window_start, payload.window_end) == (surge_start, surge_start + 3 * H)
        assert payload.department is not None
        assert payload.department.code == "0301"
        assert [e.payload.anomaly_id for e in cleared] == [payload.anomaly_id]
        assert again == []  # judged hours are not judged again
        assert rows[0]["cleared_at"] is not None

    def test_a_meter_that_stops_answering_is_a_gap_from_its_last_reading(self) -> None:
        """No reading for 3 hours by the clock: a gap starting at the last reading; nothing filled in."""
        evs = [reading("E1", START + i * timedelta(minutes=15), 100.0 + i) for i in range(9)]
        p = Energy()
        engine = engine_with(p)
        last = evs[-1].occurred_at
        with engine.begin() as conn:
            p.apply(conn, evs)
            assert [e for e in p.tick(conn, last + H) if e.payload.kind == "gap"] == []
            out = list(p.tick(conn, last + 3 * H))
            repeat = list(p.tick(conn, last + 4 * H))
        (gap,) = out
        assert (gap.type, gap.payload.kind, gap.payload.window_start) == (
            "facility.anomaly_detected",
            "gap",
            last,
        )
        assert repeat == []


def test_detection_quality_on_the_synthetic_campus() -> None:
    """8 weeks, 8 meters and 2 HVAC zones, 20 injected anomalies: recall >= 0.9 at precision >= 0.8."""
    score = evaluate(weeks=8, buildings=2, zones=2, per_kind=4, seed=11)
    print(f"\nenergy detection: recall {score.recall:.3f} ({score.found}/{score.labels}), "
          f"precision {score.precision:.3f} ({score.right}/{score.episodes})")  # fmt: skip
    assert score.labels == 20
    assert score.recall >= 0.9
    assert score.precision >= 0.8
