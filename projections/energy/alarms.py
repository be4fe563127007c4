"""The energy model's tick: judge newly complete hours, conclude anomalies detected and cleared.

For each series, the hours before its latest reading's hour are complete; those after its
watermark (`energy_evaluated`) are judged with the detectors (projections.energy.detect), with
`history_weeks` of history. A zone's valves are judged together, up to the later-lagging valve.

- An episode that continues an open anomaly of the same kind and scope (overlapping, or within a
  grace: a day for nightly leaks) extends it; otherwise it is a new anomaly and concludes
  `facility.anomaly_detected` (id: uuid5 over kind, scope, start; a re-tick stages the same id).
- An open anomaly no longer seen once the judged hours pass its end (plus grace) is cleared:
  `facility.anomaly_cleared`.
- A meter that stops answering has no complete hours to judge: after `gap_hours` without a
  reading (by the clock `tick` is given), a gap is concluded from its last reading on. Nothing is
  filled in; when readings resume, the gap's hours are judged as missing and it is cleared.
- Late readings that change hours already judged (projections.energy.rejudge) have those hours
  judged again: an open anomaly inside them that is no longer seen is cleared, saying so; one
  newly seen is detected; one seen again as it was changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import select, update

from projections.energy.detect.judge import judge_series, judge_zone
from projections.energy.detect.model import HOUR, DetectConfig, Episode, Series
from projections.energy.registers import floor_hour
from projections.energy.rejudge import VALVES, Start, inside, judge_from, known, pending, settled
from projections.energy.tables import anomalies, evaluated, hourly, series
from projections.runtime.upsert import upsert
from schemas._base import DeptRef, SourceSystem
from schemas.envelope import Source
from schemas.facility import (
    CONSUMPTION,
    AnomalyClearedPayload,
    AnomalyPayload,
    FacilityAnomalyCleared,
    FacilityAnomalyDetected,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from schemas.envelope import EventBase

ANOMALY_NAMESPACE = uuid5(NAMESPACE_URL, "hub:energy-anomalies")  # fixed: ids must never change
ADAPTER_VERSION = "hub/energy/1"
GRACE = {"base_load_leak": timedelta(hours=24)}


def anomaly_id_for(kind: str, scope: str, start: datetime) -> str:
    return "ANM-" + uuid5(ANOMALY_NAMESPACE, f"{kind}\x1f{scope}\x1f{start.isoformat()}").hex[:24]


def tick(conn: Connection, now: datetime, config: DetectConfig, *, site: str = "hub") -> list[EventBase]:
    heads = [dict(r) for r in conn.execute(select(series).order_by(series.c.series)).mappings()]
    marks = dict(conn.execute(select(evaluated.c.scope, evaluated.c["through"])).all())
    again = pending(conn)  # hours late readings changed (projections.energy.rejudge)
    opened = _Opened(conn)
    out: list[EventBase] = []
    zones: dict[str, dict[str, Mapping[str, Any]]] = {}
    for head in heads:
        if head["quantity"] in VALVES and head["zone"]:
            zones.setdefault(head["zone"], {})[head["quantity"]] = head
        out += _judge_series(conn, head, judge_from(marks.get(head["series"]), again.get(head["series"])),
                             config, site, opened=opened)  # fmt: skip
        out += _silence(conn, head, now, config, site, opened=opened)
    for zone, valves in sorted(zones.items()):
        if len(valves) == len(VALVES):
            scope = f"zone:{zone}"
            start = judge_from(marks.get(scope), again.get(scope))
            out += _judge_zone(conn, zone, valves, start, config, site=site, opened=opened)
    return out


def _judge_series(
    conn: Connection,
    head: Mapping[str, Any],
    start: Start,
    config: DetectConfig,
    site: str,
    *,
    opened: _Opened,
) -> list[EventBase]:
    name = head["series"]
    until = floor_hour(head["last_at"])
    since, redo = start
    if since is not None and since >= until:  # nothing newly complete: no read at all
        return []
    out: list[EventBase] = []
    values, sampled = _load(conn, [name], since, until, config)
    hours = _hours(since or min(values.get(name, {until: 0.0}), default=until), until)
    if hours:
        found = judge_series(
            Series(name, values.get(name, {}), head["unit"]),
            sampled.get(name, set()),
            hours,
            config,
            consumption=head["quantity"] in CONSUMPTION,
        )
        out += _settle(conn, name, found, until=until, head=head, site=site, redo=redo, index=opened)
        _mark(conn, name, until)
    if redo is not None:
        settled(conn, name)
    return out


def _judge_zone(
    conn: Connection, zone: str, valves: Mapping[str, Mapping[str, Any]], start: Start, config: DetectConfig,
    *, site: str, opened: _Opened,
) -> list[EventBase]:  # fmt: skip
    scope = f"zone:{zone}"
    until = min(floor_hour(v["last_at"]) for v in valves.values())
    names = [valves[q]["series"] for q in VALVES]
    since, redo = start
    if since is not None and since >= until:
        return []
    out: list[EventBase] = []
    values, _ = _load(conn, names, since, until, config)
    first = min((min(v) for v in values.values() if v), default=until)
    hours = _hours(since or first, until)
    if hours:
        heat, cool = (Series(n, values.get(n, {}), "%") for n in names)
        found = judge_zone(zone, heat, cool, hours, config)
        out += _settle(conn, scope, found, until=until, head=valves[VALVES[0]], site=site, redo=redo,
                       index=opened)  # fmt: skip
        _mark(conn, scope, until)
    if redo is not None:
        settled(conn, scope)
    return out


def _hours(since: datetime, until: datetime) -> list[datetime]:
    hours, hour = [], since
    while hour < until:
        hours.append(hour)
        hour += HOUR
    return hours


def _load(
    conn: Connection, names: list[str], since: datetime | None, until: datetime, config: DetectConfig
) -> tuple[dict[str, dict[datetime, float]], dict[str, set[datetime]]]:
    h = hourly.c
    where = [h.series.in_(names), h.hour < until]
    if since is not None:
        where.append(h.hour >= since - timedelta(weeks=config.history_weeks, days=1))
    values: dict[str, dict[datetime, float]] = {}
    sampled: dict[str, set[datetime]] = {}
    for name, hour, quantity, total, samples in conn.execute(
        select(h.series, h.hour, h.quantity, h.total, h.samples).where(*where)
    ):
        mean = total if quantity in CONSUMPTION else total / max(samples, 1)
        values.setdefault(name, {})[hour] = mean
        if samples:
            sampled.setdefault(name, set()).add(hour)
    return values, sampled


def _mark(conn: Connection, scope: str, through: datetime) -> None:
    upsert(conn, evaluated, [{"scope": scope, "through": through}], key=("scope",))


def _source(key: str, site: str) -> Source:
    return Source(system=SourceSystem.HUB, site=site, message_id=key, adapter_version=ADAPTER_VERSION)


class _Opened:
    """What may have an open anomaly: the series and zones of those open when a tick starts,
    and of those it raises. A scope outside them has none, and is not asked (most scopes, most
    ticks): the same answer as the query, without it."""

    def __init__(self, conn: Connection) -> None:
        a = anomalies.c
        rows = conn.execute(select(a.series, a.zone).where(a.cleared_at.is_(None))).all()
        self.series = {s for s, _ in rows if s is not None}
        self.zones = {z for _, z in rows if z is not None}

    def may(self, scope: str) -> bool:
        return scope[5:] in self.zones if scope.startswith("zone:") else scope in self.series

    def raised(self, row: Mapping[str, Any]) -> None:
        if row["series"] is not None:
            self.series.add(row["series"])
        if row["zone"] is not None:
            self.zones.add(row["zone"])


def _open(conn: Connection, scope: str, opened: _Opened) -> list[dict[str, Any]]:
    if not opened.may(scope):
        return []
    a = anomalies.c
    key = a.zone if scope.startswith("zone:") else a.series
    value = scope.removeprefix("zone:")
    rows = conn.execute(
        select(anomalies).where(key == value, a.cleared_at.is_(None)).order_by(a.window_start)
    )
    return [dict(r) for r in rows.mappings()]


def _settle(
    conn: Connection,
    scope: str,
    found: list[Episode],
    *,
    until: datetime,
    head: Mapping[str, Any],
    site: str,
    redo: tuple[datetime, datetime] | None = None,
    index: _Opened,
) -> list[EventBase]:
    out: list[EventBase] = []
    opened = _open(conn, scope, index)
    seen: set[str] = set()
    for episode in sorted(found, key=lambda e: (e.start, e.kind)):
        grace = GRACE.get(episode.kind, timedelta(0))
        same = next(
            (o for o in opened if o["kind"] == episode.kind and episode.start <= o["window_end"] + grace
             and (redo is None or o["window_start"] < episode.end)),
            None,
        )  # fmt: skip
        if same is not None:
            same["window_end"] = max(same["window_end"], episode.end)
            seen.add(same["anomaly_id"])
            conn.execute(
                update(anomalies)
                .where(anomalies.c.anomaly_id == same["anomaly_id"])
                .values(window_end=same["window_end"])
            )
            continue
        row = _row(scope, episode, head)
        if redo is not None and known(conn, row["anomaly_id"]):
            continue  # judged again as it was: the same anomaly, already concluded
        upsert(conn, anomalies, [row], key=("anomaly_id",), update=False)
        index.raised(row)
        opened.append(row)
        seen.add(row["anomaly_id"])
        out.append(_detected(row, episode, head, site))
    for row in opened:
        if redo is not None and row["anomaly_id"] not in seen and inside(row, redo):
            reason = "not seen when judged again with late readings"
        elif until > row["window_end"] + GRACE.get(row["kind"], timedelta(0)):
            reason = None
        else:
            continue
        conn.execute(
            update(anomalies).where(anomalies.c.anomaly_id == row["anomaly_id"]).values(cleared_at=until)
        )
        out.append(_cleared(row, site, until, reason))
    return out


def _row(scope: str, episode: Episode, head: Mapping[str, Any]) -> dict[str, Any]:
    zone_scope = scope.startswith("zone:")
    return {
        "anomaly_id": anomaly_id_for(episode.kind, scope, episode.start),
        "kind": episode.kind,
        "series": None if zone_scope else scope,
        "meter_id": None if zone_scope else head["meter_id"],
        "zone": head["zone"],
        "building": head["building"],
        "dept_code": head["dept_code"],
        "dept_name": head["dept_name"],
        "window_start": episode.start,
        "window_end": episode.end,
        "baseline": episode.baseline,
        "observed": episode.observed,
        "unit": "%" if zone_scope else head["unit"],
        "reason": episode.reason,
        "cleared_at": None,
    }


def _dept(row: Mapping[str, Any]) -> DeptRef | None:
    if row["dept_code"] is None and row["dept_name"] is None:
        return None
    return DeptRef(code=row["dept_code"], name=row["dept_name"])


def _detected(row: Mapping[str, Any], episode: Episode, head: Mapping[str, Any], site: str) -> EventBase:
    aid = row["anomaly_id"]
    return FacilityAnomalyDetected(
        event_id=uuid5(ANOMALY_NAMESPACE, f"{aid}\x1fdetected"),
        occurred_at=episode.end,
        recorded_at=head["last_at"],
        source=_source(aid, site),
        subject=episode.scope,
        payload=AnomalyPayload(
            anomaly_id=aid, kind=episode.kind, meter_id=row["meter_id"], zone=row["zone"],
            building=row["building"], department=_dept(row), window_start=episode.start,
            window_end=episode.end,
            baseline=None if episode.baseline is None else _decimal(episode.baseline),
            observed=None if episode.observed is None else _decimal(episode.observed),
            unit=row["unit"], reason=episode.reason,
        ),
    )  # fmt: skip


def _cleared(row: Mapping[str, Any], site: str, until: datetime, reason: str | None = None) -> EventBase:
    aid = row["anomaly_id"]
    scope = f"zone:{row['zone']}" if row["series"] is None else row["series"]
    return FacilityAnomalyCleared(
        event_id=uuid5(ANOMALY_NAMESPACE, f"{aid}\x1fcleared"),
        occurred_at=row["window_end"],
        recorded_at=until,
        source=_source(aid, site),
        subject=scope,
        payload=AnomalyClearedPayload(
            anomaly_id=aid, kind=row["kind"], meter_id=row["meter_id"], zone=row["zone"],
            department=_dept(row), window_start=row["window_start"], window_end=row["window_end"],
            reason=reason or f"not seen since {row['window_end'].astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        ),
    )  # fmt: skip


def _silence(
    conn: Connection,
    head: Mapping[str, Any],
    now: datetime,
    config: DetectConfig,
    site: str,
    *,
    opened: _Opened,
) -> list[EventBase]:
    """A meter silent for `gap_hours` by the clock: a gap from its last reading (none invented)."""
    last = head["last_at"]
    if now - last < timedelta(hours=config.gap_hours):
        return []
    start = last
    end = floor_hour(now)
    hours = int((now - last).total_seconds() // 3600)
    episode = Episode("gap", head["series"], start, end, None, None,
                      f"no reading since {last.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({hours} h)")  # fmt: skip
    if any(o["kind"] == "gap" and o["window_end"] >= start for o in _open(conn, head["series"], opened)):
        return []
    return _settle(
        conn, head["series"], [episode], until=floor_hour(last), head=head, site=site, index=opened
    )


def _decimal(value: float) -> Any:
    from decimal import Decimal  # noqa: PLC0415

    return Decimal(str(value))
