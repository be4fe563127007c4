"""Compliance read model (projection `compliance`): what each device is due for, and when.

Fed by `canonical.asset.v1`. Facts are folded into `compliance_assets` (name, category,
department, acquisition / acceptance / commissioning dates), `compliance_activities` (every
calibration and inspection) and `compliance_contracts`; after each batch, every touched asset's
obligations (`compliance_items`) are recomputed from all its facts
(projections.compliance.schedule), so late or out-of-order events land where they belong.

Asset rules, as in the registry: a registration fills only empty fields; a correction
overwrites the fields it names; a relocation applies unless older than the newest state time
applied; the latest commissioning and passing acceptance dates count; decommissioning retires
the asset's obligations. A contract number registered twice keeps its latest version.

Time-based conclusions come from `tick(conn, now)` (projections.compliance.notices), for confirmed
obligations only: one the hub merely projected from a start of service (`projected`, see
projections.compliance.schedule) is listed by the queries but concludes no notice, so a first
import of a legacy ledger publishes no per-asset overdue or scheduled events for dates nobody
recorded; the first calibration or inspection of its kind confirms it, and notices follow.
Configuration: projections.compliance.rules.ComplianceConfig. Queries: projections.compliance.queries.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import bindparam, delete, func, inspect, or_, select, text

from projections.compliance.notices import due_notices
from projections.compliance.rules import INTERVAL_KINDS, ComplianceConfig
from projections.compliance.schedule import obligations
from projections.compliance.tables import METADATA, NAME, activities, assets, contracts, items, notices
from projections.runtime.fetch import select_in
from projections.runtime.upsert import upsert
from schemas.assets import (
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetDetailsCorrected,
    AssetInspected,
    AssetRegistered,
    AssetRelocated,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import date, datetime

    from sqlalchemy import Connection, Table

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

logger = structlog.get_logger()

TOPICS = ("canonical.asset.v1",)
_TYPES = (
    AssetRegistered,
    AssetDetailsCorrected,
    AssetRelocated,
    AssetAccepted,
    AssetCommissioned,
    AssetDecommissioned,
    AssetCalibrated,
    AssetInspected,
    AssetContractRegistered,
)
_ASSET_COLUMNS = tuple(c.name for c in assets.columns)
Rows = dict[str, list[dict[str, Any]]]
_FLAG = {"due": "due_notice", "overdue": "overdue_notice", "scheduled": "scheduled"}


class Compliance:
    """The compliance projection (see the module docstring)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: ComplianceConfig | None = None) -> None:
        self.config = config or ComplianceConfig()

    def upgrade_schema(self, conn: Connection) -> None:
        """Add `projected` to items written before it (called by ensure_tables), set as apply would."""
        if "projected" in {column["name"] for column in inspect(conn).get_columns(items.name)}:
            return
        conn.execute(text(f"ALTER TABLE {items.name} ADD COLUMN projected BOOLEAN NOT NULL DEFAULT FALSE"))
        c = items.c
        conn.execute(
            items.update()
            .where(
                c.kind.in_(INTERVAL_KINDS),
                c.last_result.is_(None),  # no record of the kind, passing or not
                c.basis.in_(sorted(self.config.projected_bases)),
            )
            .values(projected=True)
        )

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        """Fold the facts of a batch, then recompute the obligations of every asset it touched."""
        handled = [e for e in events if isinstance(e, _TYPES)]
        if not handled:
            return
        ids = sorted({e.subject for e in handled})
        rows = {r["asset_id"]: r for r in _load(conn, assets, assets.c.asset_id, ids)}
        # Only an asset with a stored row can have stored activities, contracts, notices or items
        # (each is written with its asset's row): the others' facts are all in this batch, so a
        # ledger import reads nothing more back.
        known = sorted(rows)
        stored_contracts = {
            (c["asset_id"], c["contract_no"]): c for c in _load(conn, contracts, contracts.c.asset_id, known)
        }
        new_activities: dict[str, dict[str, Any]] = {}
        changed_contracts: dict[tuple[str, str], dict[str, Any]] = {}
        for event in handled:
            row = rows.get(event.subject)
            if row is None:
                row = rows[event.subject] = _blank(event)
            if isinstance(event, AssetCalibrated | AssetInspected):
                new_activities[str(event.event_id)] = _activity(event)
            elif isinstance(event, AssetContractRegistered):
                contract = _contract(event)
                key = (event.subject, contract["contract_no"])
                current = stored_contracts.get(key)
                if current is None or (current["occurred_at"], current["event_id"]) < (
                    contract["occurred_at"],
                    contract["event_id"],
                ):
                    stored_contracts[key] = changed_contracts[key] = contract
            else:
                _FOLDS[type(event)](row, event)
        upsert(conn, assets, [rows[a] for a in ids], key=("asset_id",))
        upsert(conn, activities, list(new_activities.values()), key=("event_id",), update=False)
        upsert(
            conn,
            contracts,
            [changed_contracts[k] for k in sorted(changed_contracts)],
            key=("asset_id", "contract_no"),
        )
        stored_before = set(known)
        self._recompute(
            conn,
            ids,
            rows,
            known=known,
            new_activities=[a for a in new_activities.values() if a["asset_id"] not in stored_before],
            new_contracts=[c for c in changed_contracts.values() if c["asset_id"] not in stored_before],
        )

    def _recompute(
        self,
        conn: Connection,
        ids: Sequence[str],
        rows: dict[str, dict[str, Any]],
        *,
        known: Sequence[str],
        new_activities: list[dict[str, Any]],
        new_contracts: list[dict[str, Any]],
    ) -> None:
        """Recompute the items of `ids`: `known` had rows before this batch; the others' activities
        and contracts are `new_activities` and `new_contracts`, and they have no notices or items."""
        done = _group(_load(conn, activities, activities.c.asset_id, known) + new_activities)
        signed = _group(_load(conn, contracts, contracts.c.asset_id, known) + new_contracts)
        concluded: dict[tuple[str, str, date], set[str]] = defaultdict(set)
        for n in _load(conn, notices, notices.c.asset_id, known):
            concluded[(n["asset_id"], n["kind"], n["due_on"])].add(n["notice"])
        fresh: list[dict[str, Any]] = []
        for asset_id in ids:
            for item in obligations(rows[asset_id], done[asset_id], signed[asset_id], self.config):
                found = concluded.get((asset_id, item["kind"], item["due_on"]), set())
                item["due_notice"] = bool(found & {"due", "overdue"})
                item["overdue_notice"] = "overdue" in found
                item["scheduled"] = "scheduled" in found
                fresh.append(item)
        # Only the items that changed are written (a batch's events move few of its devices'
        # obligations; rewriting every item and its due-date index was most of the recompute).
        stored = {(i["asset_id"], i["kind"]): i for i in _load(conn, items, items.c.asset_id, known)}
        wanted = {(i["asset_id"], i["kind"]) for i in fresh}
        gone = [{"a": a, "k": k} for a, k in sorted(stored) if (a, k) not in wanted]
        if gone:
            where = (items.c.asset_id == bindparam("a"), items.c.kind == bindparam("k"))
            conn.execute(delete(items).where(*where), gone)
        changed = [i for i in fresh if stored.get((i["asset_id"], i["kind"])) != i]
        upsert(conn, items, changed, key=("asset_id", "kind"))
        projected = sum(1 for item in fresh if item["projected"])
        if projected:
            # Stated once per batch, not once per device: what a ledger import left to confirm.
            logger.info("compliance_schedules_projected", items=projected, assets=len(ids))

    def tick(self, conn: Connection, now: datetime) -> list[EventBase]:
        """Conclude the due, overdue and scheduled notices the site's date calls for."""
        today = now.astimezone(self.config.zone).date()
        horizon = today + timedelta(days=self.config.due_within_days)
        c = items.c
        scheduling = c.kind.in_(sorted(self.config.schedule_kinds)) & ~c.scheduled
        query = (
            select(items)
            .where(
                c.active.is_(True),
                c.projected.is_(False),  # the hub's own estimate: listed, never notified
                c.due_on.is_not(None),
                c.due_on <= horizon,
                or_(~c.due_notice, (~c.overdue_notice) & (c.due_on < today), scheduling),
            )
            .order_by(c.asset_id, c.kind)
        )
        derived: list[EventBase] = []
        touched: list[dict[str, Any]] = []
        concluded: list[dict[str, Any]] = []
        for stored in conn.execute(query).mappings():
            item = dict(stored)
            found = due_notices(item, today, self.config, now=now)
            if today > item["due_on"]:
                item["due_notice"] = True  # an overdue item's "due" is superseded by "overdue"
            for n in found:
                item[_FLAG[n.notice]] = True
                derived.append(n.event)
                concluded.append(
                    {
                        "asset_id": item["asset_id"],
                        "kind": item["kind"],
                        "due_on": item["due_on"],
                        "notice": n.notice,
                        "event_id": str(n.event.event_id),
                    }
                )
            touched.append(item)
        upsert(conn, notices, concluded, key=("asset_id", "kind", "due_on", "notice"), update=False)
        upsert(conn, items, touched, key=("asset_id", "kind"))
        return derived


def _blank(event: EventBase) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_ASSET_COLUMNS)
    row.update(asset_id=event.subject, site=event.source.site, decommissioned=False)
    return row


def _registered(row: dict[str, Any], event: AssetRegistered) -> None:
    d, last = event.payload.details, row["last_occurred_at"]
    values = {
        "name": d.name,
        "category_code": d.category.code if d.category else None,
        "category_name": d.category.name if d.category else None,
        "department_code": d.department.code if d.department else None,
        "department_name": d.department.name if d.department else None,
        "acquired_on": d.acquired_on,
        "registered_event_id": str(event.event_id),
    }
    row.update({k: v for k, v in values.items() if row[k] is None})
    row["last_occurred_at"] = event.occurred_at if last is None else max(last, event.occurred_at)


def _corrected(row: dict[str, Any], event: AssetDetailsCorrected) -> None:
    d, changed = event.payload.details, event.payload.changed_fields
    if "name" in changed:
        row["name"] = d.name
    if "acquired_on" in changed:
        row["acquired_on"] = d.acquired_on
    if "category" in changed:
        row["category_code"] = d.category.code if d.category else None
        row["category_name"] = d.category.name if d.category else None
    if "department" in changed:
        row["department_code"] = d.department.code if d.department else None
        row["department_name"] = d.department.name if d.department else None


def _relocated(row: dict[str, Any], event: AssetRelocated) -> None:
    dept, last = event.payload.to.department, row["last_occurred_at"]
    if (last is None or event.occurred_at >= last) and (dept.code is not None or dept.name is not None):
        row["department_code"], row["department_name"] = dept.code, dept.name
        row["last_occurred_at"] = event.occurred_at


def _commissioned(row: dict[str, Any], event: AssetCommissioned) -> None:
    row["commissioned_on"] = _later(row["commissioned_on"], event.payload.commissioned_on)


def _accepted(row: dict[str, Any], event: AssetAccepted) -> None:
    if event.payload.result != "failed":
        row["accepted_on"] = _later(row["accepted_on"], event.payload.accepted_on)


def _decommissioned(row: dict[str, Any], event: AssetDecommissioned) -> None:
    del event
    row["decommissioned"] = True


_FOLDS: dict[type[EventBase], Callable[[dict[str, Any], Any], None]] = {
    AssetRegistered: _registered,
    AssetDetailsCorrected: _corrected,
    AssetRelocated: _relocated,
    AssetCommissioned: _commissioned,
    AssetAccepted: _accepted,
    AssetDecommissioned: _decommissioned,
}


def _later(current: date | None, new: date) -> date:
    return new if current is None else max(current, new)


def _activity(event: AssetCalibrated | AssetInspected) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": str(event.event_id),
        "asset_id": event.subject,
        "result": event.payload.result,
        "occurred_at": event.occurred_at,
        "next_due_on": None,
        "valid_until": None,
        "reference": None,
    }
    if isinstance(event, AssetCalibrated):
        p = event.payload
        row.update(
            kind="calibration", done_on=p.calibrated_on, valid_until=p.valid_until, reference=p.certificate_no
        )
    else:
        row.update(
            kind=event.payload.kind, done_on=event.payload.inspected_on, next_due_on=event.payload.next_due_on
        )
    return row


def _contract(event: AssetContractRegistered) -> dict[str, Any]:
    p = event.payload
    return {
        "asset_id": event.subject,
        "contract_no": p.contract_no,
        "kind": "warranty" if p.kind == "warranty" else "contract",
        "ends_on": p.ends_on,
        "vendor": p.vendor,
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at,
    }


def _load(conn: Connection, table: Table, column: Any, ids: Sequence[str]) -> list[dict[str, Any]]:
    return select_in(conn, table, column.name, ids)


def _basis(basis: str, projected: bool) -> str:
    return f"{basis}, projected" if projected else basis


def _group(rows: list[dict[str, Any]]) -> Rows:
    out: Rows = defaultdict(list)
    for r in rows:
        out[r["asset_id"]].append(r)
    return out


def demo_summary(conn: Connection) -> list[tuple[str, list[str], list[list[str]]]]:
    """What `hub demo` prints: what was overdue, or due within 30 days, on the newest activity's date.

    The sample data is from the past: judged at today's date everything would be overdue, so the
    demo reports as of the newest calibration or inspection on record.
    """
    as_of = conn.execute(select(func.max(activities.c.done_on))).scalar()
    if as_of is None:
        return [("Compliance", ["note"], [["no calibration or inspection on record yet"]])]
    c = items.c
    counts = conn.execute(
        select(
            c.kind,
            func.count(),
            func.count().filter(c.due_on < as_of),
            func.count().filter(c.projected.is_(True)),
        )
        .where(c.active.is_(True), c.due_on.is_not(None), c.due_on <= as_of + timedelta(days=30))
        .group_by(c.kind)
        .order_by(c.kind)
    ).all()
    # Lapsed calibrations first (a certificate on record that ran out), the most recent first;
    # then devices with none on record, dated from their start of service.
    overdue = conn.execute(
        select(c.asset_name, c.department_name, c.kind, c.due_on, c.basis, c.projected)
        .where(c.active.is_(True), c.kind == "calibration", c.due_on < as_of)
        .order_by((c.basis != "calibrated"), c.due_on.desc(), c.asset_id)
        .limit(8)
    ).all()
    return [
        (
            f"Compliance due by {as_of + timedelta(days=30)} (as of {as_of}, the newest activity)",
            ["kind", "due within 30 days or overdue", "overdue", "of which projected (to confirm)"],
            [[str(v) for v in r] for r in counts],
        ),
        (
            f"Overdue calibrations as of {as_of}",
            ["device", "department", "kind", "due on", "from"],
            [[*("" if v is None else str(v) for v in r[:4]), _basis(r[4], r[5])] for r in overdue],
        ),
    ]
