"""Read model `device_health`: device telemetry per device, and early warnings by tick.

Fed by `asset.telemetry_recorded` on `canonical.asset.v1`. `apply` folds every record into its
device-day (`days`: what the rules judge), keeps each device's recent records raw (its last
`raw_days` days, the window moving once a day at an hour fixed per device: rollup.horizon;
keyed by event id: a resend changes nothing) and rolls older ones up (`rollups`: per metric and
site-local hour and day; rollup.py), keeps each device's latest figures (the record latest by
(time, event id), whatever order they arrive in), and marks the first site day whose judgement
the new records may change. A record older than the raw window is not kept by id: the
runtime's ledger of applied event ids (exactly once) is what stops a resend of it counting
twice. Every fold merges in any order, and the raw window moves only with a device's latest
record, so a replay builds the same tables as the live run.

A database written before the rollups existed (raw records, no device-days) is folded once, on
the first apply or tick that finds it so.

`tick` judges each marked device's complete site days (before the tick's day), oldest first,
with the rules of its type (projections.device_health.rules; the rule set from YAML) against its
own history and its fleet (devices of the same type) as of that day:
- a finding with no open warning of the same rule (and error code) on the device opens one:
  `asset.early_warning` (id: uuid5 over rule, device, key and first day: a re-tick stages the same
  one), and, when its rule says `open_work_order: true`, `workorder.requested` (channel
  `telemetry`, work order `WO-` minted from the warning id) for clinical engineering;
- a finding that continues an open warning extends its window and figures;
- an open warning its rule no longer finds on a judged day is cleared: `asset.early_warning_cleared`.

The golden asset, the department when the telemetry names none, and the last preventive
maintenance come from `facts` (the asset registry, wired by hub.bootstrap; read models do not
import each other). Without it, the device's own subject stands in and no PM rule fires. Being
read from another model at tick time, they are the registry's state then: a rebuild judges with
the registry as it stands at the rebuild (a PM recorded since may close what live opened).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select, update

from projections.device_health.rollup import MICRO, compact, fold_days, horizon, merge_days, roll
from projections.device_health.rules import Day, Device, Fleet, RuleSet, evaluate, fleet_of, load_rule_set
from projections.device_health.tables import METADATA, NAME, days, devices, telemetry, warnings
from projections.runtime.upsert import upsert
from schemas._base import DeptRef, Identifier, SourceSystem
from schemas.envelope import Source
from schemas.ids import workorder_id_for
from schemas.telemetry import (
    AssetEarlyWarning,
    AssetEarlyWarningCleared,
    AssetTelemetryRecorded,
    EarlyWarningClearedPayload,
    EarlyWarningPayload,
    Evidence,
)
from schemas.work_orders import Priority, RequestedPayload, WorkOrderRequested

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection

    from projections.device_health.rules import Finding
    from schemas.catalogue import Event
    from schemas.envelope import EventBase

TOPICS = ("canonical.asset.v1",)
WARNING_NAMESPACE = uuid5(NAMESPACE_URL, "hub:device-health")  # fixed: ids must never change
ADAPTER_VERSION = "hub/device_health/1"
_DEFAULT_TYPE = "unknown"


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What the registry knows of a device: its golden id, home department, last PM."""

    asset_id: str
    dept_code: str | None = None
    dept_name: str | None = None
    last_pm: date | None = None


@dataclass(frozen=True, slots=True)
class DeviceHealthConfig:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    rules: RuleSet = field(default_factory=load_rule_set)
    site: str = "hub"
    facts: Callable[[Connection, str], AssetFacts | None] | None = None
    raw_days: int = (
        30  # site days of raw records kept before a device's latest; 0: all (HUB_TELEMETRY_RAW_DAYS)
    )


def warning_id_for(rule_id: str, subject: str, key: str, first_day: date) -> str:
    return "EW-" + uuid5(WARNING_NAMESPACE, f"{rule_id}\x1f{subject}\x1f{key}\x1f{first_day}").hex[:24]


class DeviceHealth:
    """The device-health read model (see the module docstring)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: DeviceHealthConfig | None = None) -> None:
        self.config = config or DeviceHealthConfig()

    # -- apply ---------------------------------------------------------------------------
    def apply(self, conn: Connection, events: Sequence[Event]) -> list[EventBase]:
        rows: dict[str, dict[str, Any]] = {}
        heads: dict[str, dict[str, Any]] = {}
        for event in events:
            if isinstance(event, AssetTelemetryRecorded):
                row = self._row(event)
                rows[row["event_id"]] = row
                head = heads.get(event.subject)
                if head is None or (row["at"], row["event_id"]) > (head["last_at"], head["last_event_id"]):
                    heads[event.subject] = self._head(event, row) | {
                        "pending_from": min(row["day"], head["pending_from"]) if head else row["day"]
                    }
                else:
                    head["pending_from"] = min(head["pending_from"], row["day"])
        if not rows:
            return []
        self._upgrade(conn)
        known = {r["event_id"] for r in conn.execute(select(telemetry.c.event_id).where(
            telemetry.c.event_id.in_(list(rows)))).mappings()}  # fmt: skip
        fresh = [r for k, r in sorted(rows.items()) if k not in known]
        touched = {r["subject"] for r in fresh}
        moved = self._heads(conn, {s: h for s, h in heads.items() if s in touched})
        tz, keep_days = self.config.tz, self.config.raw_days
        edge = {s: horizon(s, new, keep_days, tz) for s, (_, new) in moved.items()}
        raw = [r for r in fresh if (h := edge[r["subject"]]) is None or r["at"] >= h]
        old = [r for r in fresh if (h := edge[r["subject"]]) is not None and r["at"] < h]
        upsert(conn, telemetry, raw, key=("event_id",), update=False)
        roll(conn, old, tz)  # late records of days already rolled up
        merge_days(conn, fold_days(fresh))
        for subject, (before, _) in sorted(moved.items()):
            h = edge[subject]
            if h is not None and before is not None and h > (horizon(subject, before, keep_days, tz) or h):
                compact(conn, subject, h, tz)
        return []

    def _upgrade(self, conn: Connection) -> None:
        """Fold a database written before device-days and rollups (raw records only), once."""
        if conn.execute(select(exists().select_from(days))).scalar_one():
            return
        if not conn.execute(select(exists().select_from(telemetry))).scalar_one():
            return
        t = telemetry.c
        for head in [dict(r) for r in conn.execute(select(devices).order_by(devices.c.subject)).mappings()]:
            after: tuple[Any, str] | None = None
            while True:
                query = select(telemetry).where(t.subject == head["subject"])
                if after is not None:
                    query = query.where((t.at > after[0]) | ((t.at == after[0]) & (t.event_id > after[1])))
                chunk = [
                    dict(r) for r in conn.execute(query.order_by(t.at, t.event_id).limit(20_000)).mappings()
                ]
                if not chunk:
                    break
                merge_days(conn, fold_days(chunk))
                after = (chunk[-1]["at"], chunk[-1]["event_id"])
            h = horizon(head["subject"], head["last_at"], self.config.raw_days, self.config.tz)
            if h is not None:
                compact(conn, head["subject"], h, self.config.tz)

    def _row(self, event: AssetTelemetryRecorded) -> dict[str, Any]:
        p = event.payload
        at = event.occurred_at.astimezone(UTC)
        return {
            "event_id": str(event.event_id),
            "subject": event.subject,
            "at": at,
            "day": at.astimezone(self.config.tz).date(),
            "usage_hours": None if p.usage_hours is None else float(p.usage_hours),
            "power_on_cycles": p.power_on_cycles,
            "battery_pct": None if p.battery_capacity_pct is None else float(p.battery_capacity_pct),
            "battery_cycles": p.battery_cycles,
            "alarm_count": p.alarm_count if p.alarm_count is not None else len(p.alarms),
            "alarms": json.dumps([a.model_dump(mode="json") for a in p.alarms], ensure_ascii=False),
            "errors": json.dumps([e.model_dump(mode="json") for e in p.error_codes], ensure_ascii=False),
            "metrics": json.dumps([m.model_dump(mode="json") for m in p.metrics], ensure_ascii=False),
            "source_system": event.source.system.value,
        }

    @staticmethod
    def _head(event: AssetTelemetryRecorded, row: dict[str, Any]) -> dict[str, Any]:
        p = event.payload
        dept = p.department
        return {
            "subject": event.subject,
            "scheme": p.device.scheme,
            "value": p.device.value,
            "device_type": p.device_type,
            "dept_code": dept.code if dept else None,
            "dept_name": dept.name if dept else None,
            "last_at": row["at"],
            "last_event_id": row["event_id"],
            **{k: row[k] for k in ("usage_hours", "power_on_cycles", "battery_pct", "battery_cycles")},
        }

    def _heads(
        self, conn: Connection, heads: dict[str, dict[str, Any]]
    ) -> dict[str, tuple[datetime | None, datetime]]:
        """The latest record wins each figure it carries; older records only move `pending_from`.

        Returns each device's latest record time before (None: a new device) and after."""
        if not heads:
            return {}
        d = devices.c
        stored = {r["subject"]: dict(r) for r in conn.execute(
            select(devices).where(d.subject.in_(list(heads)))).mappings()}  # fmt: skip
        out = []
        moved: dict[str, tuple[datetime | None, datetime]] = {}
        for subject, head in sorted(heads.items()):
            old = stored.get(subject)
            if old is None:
                out.append(head)
                moved[subject] = (None, head["last_at"])
                continue
            pending = min(x for x in (old["pending_from"], head["pending_from"]) if x is not None)
            if (head["last_at"], head["last_event_id"]) > (old["last_at"], old["last_event_id"]):
                merged = {k: (old[k] if v is None else v) for k, v in head.items()}
            else:
                merged = old
            out.append(merged | {"pending_from": pending})
            moved[subject] = (old["last_at"], merged["last_at"])
        upsert(conn, devices, out, key=("subject",), update=True)
        return moved

    # -- tick ----------------------------------------------------------------------------
    def tick(self, conn: Connection, now: datetime) -> list[EventBase]:
        today = now.astimezone(self.config.tz).date()
        self._upgrade(conn)
        pending = [dict(r) for r in conn.execute(
            select(devices).where(devices.c.pending_from.is_not(None), devices.c.pending_from < today)
            .order_by(devices.c.subject)).mappings()]  # fmt: skip
        if not pending:
            return []
        types = sorted({p["device_type"] or _DEFAULT_TYPE for p in pending})
        fleet = self._fleet(conn, types)
        peers: dict[tuple[str, date], Fleet] = {}
        out: list[EventBase] = []
        for head in pending:
            out += self._judge(conn, head, fleet, peers, today, now)
        return out

    def _fleet(self, conn: Connection, types: list[str]) -> dict[str, Device]:
        """Every device of the given types with its daily history (the `days` rollup)."""
        heads = {r["subject"]: dict(r) for r in conn.execute(select(devices)).mappings()
                 if (r["device_type"] or _DEFAULT_TYPE) in types}  # fmt: skip
        history: dict[str, list[Day]] = {s: [] for s in heads}
        d = days.c
        query = select(days).where(d.subject.in_(list(heads))).order_by(d.subject, d.day)
        for r in conn.execute(query).mappings():
            battery = None if not r["battery_n"] else r["battery_micro"] / r["battery_n"] / MICRO
            history[r["subject"]].append(
                Day(r["day"], r["usage_hours"], r["power_on_cycles"], battery, r["alarms"],
                    tuple(json.loads(r["errors"])))
            )  # fmt: skip
        facts = self.config.facts
        out = {}
        for subject, head in heads.items():
            fact = facts(conn, subject) if facts is not None else None
            out[subject] = Device(
                subject, head["device_type"] or _DEFAULT_TYPE, tuple(history[subject]),
                None if fact is None else fact.last_pm,
            )  # fmt: skip
        return out

    def _judge(  # noqa: PLR0917  (the tick's state, passed down once)
        self,
        conn: Connection,
        head: dict[str, Any],
        fleet: dict[str, Device],
        peers: dict[tuple[str, date], Fleet],
        today: date,
        now: datetime,
    ) -> list[EventBase]:
        device = fleet[head["subject"]]
        kind = device.device_type
        same = [p for p in fleet.values() if p.device_type == kind]
        judged = [x.day for x in device.days if head["pending_from"] <= x.day < today]
        w = warnings.c
        query = select(warnings).where(w.subject == device.subject, w.cleared_at.is_(None))
        opened = {(r["rule_id"], r["finding_key"]): dict(r) for r in conn.execute(query).mappings()}
        facts = self.config.facts(conn, device.subject) if self.config.facts is not None else None
        out: list[EventBase] = []
        for day in judged:
            if (kind, day) not in peers:
                peers[kind, day] = fleet_of(same, self.config.rules, day)
            found = {
                (f.rule_id, f.key): f for f in evaluate(device, peers[kind, day], self.config.rules, day)
            }
            for key, finding in sorted(found.items()):
                if key in opened:
                    self._extend(conn, opened[key], finding)
                else:
                    row = self._open(conn, head, finding, facts, day)
                    opened[key] = row
                    out += self._opened(row, head, now)
            for key in [k for k in opened if k not in found]:
                row = opened.pop(key)
                end = self._midnight(day + timedelta(days=1))
                conn.execute(update(warnings).where(w.warning_id == row["warning_id"]).values(cleared_at=end))
                out.append(self._cleared(row, day, now))
        conn.execute(update(devices).where(devices.c.subject == device.subject).values(pending_from=None))
        return out

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.config.tz).astimezone(UTC)

    def _extend(self, conn: Connection, row: dict[str, Any], finding: Finding) -> None:
        end = self._midnight(finding.end + timedelta(days=1))
        values = {"window_end": end, "observed": finding.observed, "baseline": finding.baseline,
                  "reason": finding.reason, "samples": finding.samples}  # fmt: skip
        row.update(values)
        conn.execute(update(warnings).where(warnings.c.warning_id == row["warning_id"]).values(**values))

    def _open(
        self, conn: Connection, head: dict[str, Any], finding: Finding, facts: AssetFacts | None, day: date
    ) -> dict[str, Any]:
        wid = warning_id_for(finding.rule_id, finding.subject, finding.key, day)
        dept_code, dept_name = head["dept_code"], head["dept_name"]
        if dept_code is None and dept_name is None and facts is not None:
            dept_code, dept_name = facts.dept_code, facts.dept_name
        row = {
            "warning_id": wid, "subject": finding.subject,
            "asset_id": facts.asset_id if facts is not None else finding.subject,
            "rule_id": finding.rule_id, "category": finding.category, "finding_key": finding.key,
            "device_type": head["device_type"], "dept_code": dept_code, "dept_name": dept_name,
            "severity": finding.severity, "window_start": self._midnight(finding.start),
            "window_end": self._midnight(finding.end + timedelta(days=1)),
            "baseline": finding.baseline, "observed": finding.observed, "unit": finding.unit,
            "samples": finding.samples, "reason": finding.reason,
            "open_work_order": finding.open_work_order,
            "workorder_id": workorder_id_for("hub", wid) if finding.open_work_order else None,
            "cleared_at": None,
        }  # fmt: skip
        upsert(conn, warnings, [row], key=("warning_id",), update=False)
        return row

    def _source(self, key: str) -> Source:
        return Source(
            system=SourceSystem.HUB, site=self.config.site, message_id=key, adapter_version=ADAPTER_VERSION
        )

    def _opened(self, row: dict[str, Any], head: dict[str, Any], now: datetime) -> list[EventBase]:
        wid = row["warning_id"]
        dept = _dept(row)
        warning = AssetEarlyWarning(
            event_id=uuid5(WARNING_NAMESPACE, f"{wid}\x1fdetected"),
            occurred_at=row["window_end"],
            recorded_at=now,
            source=self._source(wid),
            subject=row["asset_id"],
            payload=EarlyWarningPayload(
                warning_id=wid, rule_id=row["rule_id"], category=row["category"], asset_id=row["asset_id"],
                device_type=row["device_type"], department=dept, severity=row["severity"],
                reason=row["reason"],
                evidence=Evidence(
                    baseline=_decimal(row["baseline"]), observed=_decimal(row["observed"]), unit=row["unit"],
                    window_start=row["window_start"], window_end=row["window_end"], samples=row["samples"],
                ),
                open_work_order=row["open_work_order"],
            ),
        )  # fmt: skip
        if not row["open_work_order"]:
            return [warning]
        order = WorkOrderRequested(
            event_id=uuid5(WARNING_NAMESPACE, f"{wid}\x1fworkorder"),
            occurred_at=row["window_end"],
            recorded_at=now,
            source=self._source(wid),
            subject=row["workorder_id"],
            causation_id=str(warning.event_id),
            payload=RequestedPayload(
                asset=Identifier(scheme=head["scheme"], value=head["value"]),
                reporting_department=dept or DeptRef(),
                symptom=f"设备预警（{row['rule_id']}）：{row['reason']}"[:500],
                priority=Priority.HIGH if row["severity"] == "critical" else Priority.NORMAL,
                channel="telemetry",
                requested_by="device_health",
            ),
        )
        return [warning, order]

    def _cleared(self, row: dict[str, Any], day: date, now: datetime) -> EventBase:
        wid = row["warning_id"]
        return AssetEarlyWarningCleared(
            event_id=uuid5(WARNING_NAMESPACE, f"{wid}\x1fcleared"),
            occurred_at=self._midnight(day + timedelta(days=1)),
            recorded_at=now,
            source=self._source(wid),
            subject=row["asset_id"],
            payload=EarlyWarningClearedPayload(
                warning_id=wid, rule_id=row["rule_id"], category=row["category"], asset_id=row["asset_id"],
                department=_dept(row), reason=f"{row['rule_id']} no longer found on {day}",
            ),
        )  # fmt: skip


def _dept(row: dict[str, Any]) -> DeptRef | None:
    if row["dept_code"] is None and row["dept_name"] is None:
        return None
    return DeptRef(code=row["dept_code"], name=row["dept_name"])


def _decimal(value: float | None) -> Any:
    from decimal import Decimal  # noqa: PLC0415

    return None if value is None else Decimal(str(round(value, 4)))
