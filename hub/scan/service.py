"""Scan-to-report: what the phone page shows about one device, and filing a fault report.

A report becomes `workorder.requested` (channel `scan`, subject a new work-order id) unless the
device already has an open work order: then it is merged into it as `workorder.report_added`
(subject that work order: one more reporter, symptom and note; the lifecycle does not change),
so a ward that scans the same broken pump five times files one repair, not five.

"Open" is what the work-order read model says, plus the reports this process filed in the last
minutes that the read model has not applied yet (its lag): without that, two nurses scanning a
second apart would each open an order. Reports of one device are filed one at a time (a lock per
device), and the page's nonce makes a resubmitted form (a double tap, a retry after a dropped
connection) the same report: same event ids, same answer.

Nothing about patients is read or shown: the device's registry row, its work orders and its
calibration state only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from projections.compliance.tables import items as compliance_items
from projections.work_orders.lifecycle import OPEN_STATES
from projections.work_orders.queries import WorkOrderFilter, list_work_orders, reports_of
from projections.work_orders.tables import orders
from schemas._base import DeptRef, Identifier, SourceSystem
from schemas.envelope import Source
from schemas.ids import event_id_for
from schemas.work_orders import (
    ReportAddedPayload,
    RequestedPayload,
    WorkOrderReportAdded,
    WorkOrderRequested,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from sqlalchemy import Connection, Engine

    from hub.ports import Clock
    from hub.scan.keys import ReportKeyStore
    from hub.scan.limits import RateLimiter
    from hub.scan.symptoms import Symptoms
    from schemas.envelope import EventBase

ADAPTER_VERSION = "hub/scan/1"
PENDING_FOR = timedelta(minutes=15)  # how long a filed report counts as open without the read model
RECENT_DONE = timedelta(days=7)  # finished work orders still shown, so the reporter sees the outcome
MAX_ORDERS = 10
PREFERRED_SCHEMES = ("hrp.card", "oa.no", "spd.code", "his.code", "udi", "serial")

STATUS_TEXT = {
    "requested": "已报修，待受理",
    "approved": "已审批",
    "assigned": "已派工",
    "started": "维修中",
    "on_hold": "暂停（等待配件等）",
    "completed": "已修复",
    "closed": "已关闭",
    "cancelled": "已撤销",
    "rejected": "未受理",
}


@dataclass(frozen=True, slots=True)
class Filed:
    """The answer to one report."""

    workorder_id: str
    merged: bool
    event_id: str


def card_of(asset: dict[str, Any]) -> Identifier:
    """The identifier a scan report names the device by: its HRP card when it has one."""
    links = asset.get("identifiers") or []
    for scheme in PREFERRED_SCHEMES:
        for link in links:
            if link.get("scheme") == scheme:
                return Identifier(scheme=scheme, value=link["value"])
    if links:
        return Identifier(scheme=links[0]["scheme"], value=links[0]["value"])
    return Identifier(scheme="hub.asset", value=asset["asset_id"])


class ScanService:
    """The page's reads and the report (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        publish: Callable[[EventBase], Awaitable[None]],
        clock: Clock,
        symptoms: Symptoms,
        *,
        site: str,
    ) -> None:
        self._engine = engine
        self._publish = publish
        self._clock = clock
        self.symptoms = symptoms
        self._site = site
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, tuple[str, datetime]] = {}  # asset id -> (work order, filed at)
        self._answers: dict[str, Filed] = {}  # nonce -> answer (bounded below)

    def choices(self, asset: dict[str, Any]) -> tuple[str, ...]:
        return self.symptoms.for_category(asset.get("category_code"), asset.get("category_name"))

    def _orders(self, conn: Connection, asset_id: str, department: str | None) -> list[dict[str, Any]]:
        now = self._clock.now()
        where = WorkOrderFilter(asset=asset_id, scope=department)
        rows, _ = list_work_orders(conn, where, now=now, limit=50)
        shown = [
            r
            for r in rows
            if r["status"] in OPEN_STATES
            or (r["status_at"] is not None and r["status_at"] >= now - RECENT_DONE)
        ][:MAX_ORDERS]
        reports = reports_of(conn, [r["workorder_id"] for r in shown])
        for r in shown:
            r["reports"] = reports.get(r["workorder_id"], [])
        return shown

    def view(self, asset: dict[str, Any], department: str | None) -> dict[str, Any]:
        """What the page shows: device, status, calibration, open and recent work orders."""
        asset_id = asset["asset_id"]
        with self._engine.connect() as conn:
            orders = self._orders(conn, asset_id, department)
            due = conn.execute(
                select(
                    compliance_items.c.kind, compliance_items.c.due_on, compliance_items.c.projected
                ).where(
                    compliance_items.c.asset_id == asset_id,
                    compliance_items.c.active.is_(True),
                    compliance_items.c.due_on.is_not(None),
                )
            ).all()
        today = self._clock.now().date()
        known = {o["workorder_id"] for o in orders}
        pending = self._pending.get(asset_id)
        if pending is not None and pending[0] not in known and pending[1] > self._clock.now() - PENDING_FOR:
            orders.insert(
                0, {"workorder_id": pending[0], "status": "requested", "pending": True, "reports": []}
            )
        valid_until = asset.get("calibration_valid_until")
        return {
            "asset": asset,
            "card": card_of(asset).value,
            "orders": orders,
            "calibration": {
                "calibrated_on": asset.get("calibrated_on"),
                "valid_until": valid_until,
                "result": asset.get("calibration_result"),
                "expired": valid_until is not None and valid_until < today,
            },
            "due": [{"kind": k, "due_on": d, "overdue": d < today, "projected": p} for k, d, p in due],
            "symptoms": list(self.choices(asset)),
        }

    def _open_order(self, asset_id: str) -> str | None:
        """The device's open work order: in the read model, or filed here and not applied yet."""
        now = self._clock.now()
        pending = self._pending.get(asset_id)
        with self._engine.connect() as conn:
            rows, _ = list_work_orders(conn, WorkOrderFilter(asset=asset_id, status="open"), now=now, limit=1)
            applied = pending is not None and (
                conn.execute(select(orders.c.workorder_id).where(orders.c.workorder_id == pending[0])).first()
                is not None
            )
        if rows:
            return str(rows[0]["workorder_id"])
        if pending is not None and not applied and pending[1] > now - PENDING_FOR:
            return pending[0]
        return None

    async def report(
        self,
        asset: dict[str, Any],
        *,
        symptom: str,
        note: str | None,
        nonce: str,
        department: DeptRef,
        reporter: str,
    ) -> Filed:
        """File one report of `asset` (merged into its open work order if it has one)."""
        asset_id = asset["asset_id"]
        once = f"{asset_id}:{nonce}"  # a nonce names one report of one device
        if once in self._answers:
            return self._answers[once]
        lock = self._locks.setdefault(asset_id, asyncio.Lock())
        async with lock:
            if once in self._answers:
                return self._answers[once]
            open_id = await asyncio.to_thread(self._open_order, asset_id)
            now = self._clock.now()
            message_id = f"scan:{once}"
            source = Source(
                system=SourceSystem.HUB,
                site=self._site,
                message_id=message_id,
                adapter_version=ADAPTER_VERSION,
            )
            event_id = event_id_for(SourceSystem.HUB.value, message_id, 0)
            identifier = card_of(asset)
            event: EventBase
            if open_id is not None:
                event = WorkOrderReportAdded(
                    event_id=event_id,
                    occurred_at=now,
                    recorded_at=now,
                    source=source,
                    subject=open_id,
                    payload=ReportAddedPayload(
                        asset=identifier,
                        reporting_department=department,
                        symptom=symptom,
                        note=note,
                        channel="scan",
                        reported_by=reporter,
                    ),
                )
                filed = Filed(open_id, merged=True, event_id=str(event_id))
            else:
                workorder_id = "WO-SCAN-" + event_id.hex[:12].upper()
                text = f"{symptom}：{note}" if note else symptom
                event = WorkOrderRequested(
                    event_id=event_id,
                    occurred_at=now,
                    recorded_at=now,
                    source=source,
                    subject=workorder_id,
                    payload=RequestedPayload(
                        asset=identifier,
                        reporting_department=department,
                        symptom=text,
                        channel="scan",
                        requested_by=reporter,
                    ),
                )
                filed = Filed(workorder_id, merged=False, event_id=str(event_id))
                self._pending[asset_id] = (workorder_id, now)
            await self._publish(event)
            if len(self._answers) > 10_000:
                self._answers.clear()
            self._answers[once] = filed
            return filed


@dataclass(frozen=True)
class ScanDesk:
    """What the /r routes use, built by the composition root: the service, the labels' keys and
    the rate limits (per reporting key and per client address)."""

    service: ScanService
    keys: ReportKeyStore
    reports_per_key: RateLimiter
    reports_per_client: RateLimiter
    views_per_client: RateLimiter
