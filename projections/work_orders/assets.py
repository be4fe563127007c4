"""The work-order projection's own copy of asset facts: grouping fields, crosswalk, usage.

Work orders name their asset by a source identifier (`hrp.card`, `oa.no`...), and KPIs group by
the asset's category and department, so this projection folds the few asset events it needs
into its own tables (it never reads the asset registry's):

- `work_orders_assets`: name, category and department per hub asset id. Registration fills
  only empty fields (a second system adds, never overrides); a correction overwrites the fields
  it names; a relocation applies unless an older one than the newest state time applied.
- `work_orders_identifiers`: (scheme, value) -> asset id, with the id minted from that
  identifier. A link to another asset replaces an identifier's link to the id minted from
  itself (that one says nothing); between two real links the first one stays, as in the
  registry. One hop only: a link to an asset that is itself provisional is not followed.
- `work_orders_usage`: every `asset.used` interval, for utilisation (start = `started_at`, else
  `occurred_at`; no end means no measurable duration); an `asset.usage_corrected` rewrites the
  interval of the usage it corrects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections.runtime.fetch import select_in
from projections.runtime.upsert import upsert
from projections.work_orders.tables import assets, identifiers, usage
from schemas.assets import (
    AssetDecommissioned,
    AssetDetailsCorrected,
    AssetIdentifierLinked,
    AssetRegistered,
    AssetRelocated,
    AssetUsageCorrected,
    AssetUsed,
)
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from schemas._base import Identifier
    from schemas.envelope import EventBase

ASSET_EVENT_TYPES: tuple[type[EventBase], ...] = (
    AssetRegistered,
    AssetDetailsCorrected,
    AssetRelocated,
    AssetDecommissioned,
    AssetIdentifierLinked,
    AssetUsed,
    AssetUsageCorrected,
)
_COLUMNS = tuple(c.name for c in assets.columns)


def apply_asset_events(conn: Connection, events: Sequence[EventBase]) -> None:
    """Fold the batch's asset events into the grouping fields, the crosswalk and the usage rows."""
    facts = [e for e in events if not isinstance(e, AssetUsed | AssetUsageCorrected | AssetIdentifierLinked)]
    if facts:
        _fold_details(conn, facts)
    links: list[tuple[Identifier, str]] = []
    for e in events:
        if isinstance(e, AssetRegistered):
            links += [(ident, e.subject) for ident in e.payload.identifiers]
        elif isinstance(e, AssetIdentifierLinked):
            links.append((e.payload.identifier, e.subject))
    if links:
        _link(conn, links)
    used = [
        {
            "event_id": str(e.event_id),
            "asset_ref": e.subject,
            "started_at": e.payload.started_at or e.occurred_at,
            "ended_at": e.payload.ended_at,
        }
        for e in events
        if isinstance(e, AssetUsed)
    ]
    upsert(conn, usage, used, key=("event_id",), update=False)
    corrected = {
        str(e.payload.corrects): {
            "event_id": str(e.payload.corrects),
            "asset_ref": e.subject,
            "started_at": e.payload.usage.started_at or e.occurred_at,
            "ended_at": e.payload.usage.ended_at,
        }
        for e in events
        if isinstance(e, AssetUsageCorrected)
    }
    upsert(conn, usage, [corrected[k] for k in sorted(corrected)], key=("event_id",))


def _fold_details(conn: Connection, facts: Sequence[EventBase]) -> None:
    rows = _load(conn, sorted({e.subject for e in facts}))
    for e in facts:
        row = rows.setdefault(
            e.subject, {**dict.fromkeys(_COLUMNS), "asset_id": e.subject, "decommissioned": False}
        )
        last = row["last_occurred_at"]
        if isinstance(e, AssetRegistered):
            details = e.payload.details
            values = {
                "name": details.name,
                "category_code": details.category.code if details.category else None,
                "category_name": details.category.name if details.category else None,
                "department_code": details.department.code if details.department else None,
                "department_name": details.department.name if details.department else None,
            }
            for column, value in values.items():
                if row[column] is None:
                    row[column] = value
            row["last_occurred_at"] = e.occurred_at if last is None else max(last, e.occurred_at)
        elif isinstance(e, AssetDetailsCorrected):
            _correct(row, e)
        elif isinstance(e, AssetRelocated):
            if last is not None and e.occurred_at < last:
                continue  # an older move than the newest state already applied
            dept = e.payload.to.department
            if dept.code is not None or dept.name is not None:
                row["department_code"], row["department_name"] = dept.code, dept.name
            row["last_occurred_at"] = e.occurred_at
        elif isinstance(e, AssetDecommissioned):
            row["decommissioned"] = True
    upsert(conn, assets, [rows[a] for a in sorted(rows)], key=("asset_id",))


def _correct(row: dict[str, Any], event: AssetDetailsCorrected) -> None:
    details, changed = event.payload.details, event.payload.changed_fields
    if "name" in changed:
        row["name"] = details.name
    if "category" in changed:
        row["category_code"] = details.category.code if details.category else None
        row["category_name"] = details.category.name if details.category else None
    if "department" in changed:
        row["department_code"] = details.department.code if details.department else None
        row["department_name"] = details.department.name if details.department else None


def _load(conn: Connection, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {r["asset_id"]: r for r in select_in(conn, assets, "asset_id", asset_ids)}


def _link(conn: Connection, links: Sequence[tuple[Identifier, str]]) -> None:
    minted = {(i.scheme, i.value): asset_id_for(i) for i, _ in links}
    found = select_in(conn, identifiers, "minted_id", sorted(set(minted.values())))
    stored: dict[str, dict[str, Any]] = {r["minted_id"]: r for r in found}
    changed: dict[str, dict[str, Any]] = {}
    for ident, asset_id in links:
        own = minted[(ident.scheme, ident.value)]
        current = stored.get(own)
        if current is None or (current["asset_id"] == own and asset_id != own):
            stored[own] = changed[own] = {
                "scheme": ident.scheme,
                "value": ident.value,
                "asset_id": asset_id,
                "minted_id": own,
            }
    # In key order (an identifier is changed once per batch: one row per key).
    rows = sorted(changed.values(), key=lambda r: (r["scheme"], r["value"]))
    upsert(conn, identifiers, rows, key=("scheme", "value"))
