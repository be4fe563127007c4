"""Asset registry read model (first cut): one golden row per hub asset id, plus its identifiers.

Tables: `asset_registry_assets` (descriptive fields, department, location, status, money) and
`asset_registry_identifiers` ((scheme, value) -> asset_id, the crosswalk).

Rules, and why:
- `asset.registered` inserts the row, or fills only the fields still empty: a second system
  registering the same device adds what it knows without overriding the first.
- State changes (`asset.relocated`, `asset.status_changed`, `asset.decommissioned`) apply only
  when their `occurred_at` is not older than the newest state change already applied, so a
  late-arriving old fact does not overwrite newer state. `decommissioned` is a terminal fact
  and is always recorded; only its status change obeys the ordering rule.
- `asset.details_corrected` applies only its `changed_fields`, in recorded order: it is a
  correction (e.g. a re-export), not a new business fact.
- An identifier keeps the first asset it was linked to; conflicts are for the identity
  resolution work (asset.identity_conflict), not for this first cut.
- Events about an asset not yet registered create a provisional row: nothing arriving early is
  dropped.

A batch is folded in memory from the rows as stored, then written with one upsert per table,
so applying a stream in any batching yields the same tables. `list_assets`, `get_asset` and
`count_assets` are the queries the API serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Column, Date, MetaData, String, Table, Text, func, or_, select

from projections.sqltypes import ExactDecimal, UtcDateTime
from projections.upsert import chunks, in_values, upsert
from schemas.assets import (
    AssetDecommissioned,
    AssetDetails,
    AssetDetailsCorrected,
    AssetIdentifierLinked,
    AssetRegistered,
    AssetRelocated,
    AssetStatus,
    AssetStatusChanged,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

NAME = "asset_registry"
TOPICS = ("canonical.asset.v1",)
METADATA = MetaData()

# No secondary indexes on the filter columns (department, category, status) yet: each upsert
# would maintain them (about 15% of apply throughput), while a filtered list over a hospital's
# 10^4-10^5 devices is a scan of milliseconds. Add them when a measurement asks for it.
assets = Table(
    f"{NAME}_assets",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("name", Text),
    Column("model", Text),
    Column("manufacturer", Text),
    Column("serial_number", Text),
    Column("udi", Text),
    Column("category_code", String(64)),
    Column("category_name", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("location", Text),
    Column("status", String(32)),
    Column("status_text", Text),
    Column("acquired_on", Date),
    Column("original_value", ExactDecimal),
    Column("accumulated_depreciation", ExactDecimal),
    Column("net_value", ExactDecimal),
    Column("currency", String(3)),
    Column("funding_source", Text),
    Column("useful_life_years", ExactDecimal),
    Column("source_system", String(16)),
    Column("first_recorded_at", UtcDateTime),
    Column("last_occurred_at", UtcDateTime),
    Column("updated_event_id", String(36)),
    Column("decommissioned", Boolean, nullable=False, default=False),
)

identifiers = Table(
    f"{NAME}_identifiers",
    METADATA,
    Column("scheme", String(40), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("asset_id", String(64), nullable=False, index=True),
)

_ASSET_COLUMNS = tuple(c.name for c in assets.columns)
_PLAIN_FIELDS = (
    "name", "model", "manufacturer", "serial_number", "udi", "location", "status_text",
    "acquired_on", "funding_source", "useful_life_years",
)  # fmt: skip
_MONEY_FIELDS = ("original_value", "accumulated_depreciation", "net_value")


def detail_columns(details: AssetDetails, fields: Sequence[str]) -> dict[str, Any]:
    """Column values for the named AssetDetails fields (None where the field is unset)."""
    out: dict[str, Any] = {}
    for field_name in fields:
        value = getattr(details, field_name, None)
        if field_name in _PLAIN_FIELDS:
            out[field_name] = value
        elif field_name in _MONEY_FIELDS:
            out[field_name] = value.amount if value is not None else None
            if value is not None:
                out["currency"] = value.currency
        elif field_name == "status":
            out["status"] = value.value if value is not None else None
        elif field_name in {"category", "department"}:
            out[f"{field_name}_code"] = value.code if value is not None else None
            out[f"{field_name}_name"] = value.name if value is not None else None
        # Any other name is not a field of AssetDetails: a correction cannot touch it.
    return out


_ALL_DETAIL_FIELDS = tuple(AssetDetails.model_fields)


class _Fold:
    """In-memory state of the rows one batch touches, starting from what is stored."""

    def __init__(self, stored: dict[str, dict[str, Any]]) -> None:
        self.rows = stored
        self.dirty: set[str] = set()
        self.links: dict[tuple[str, str], str] = {}

    def row(self, event: EventBase) -> dict[str, Any]:
        row = self.rows.get(event.subject)
        if row is None:
            row = dict.fromkeys(_ASSET_COLUMNS)
            row.update(
                asset_id=event.subject,
                source_system=event.source.system.value,
                first_recorded_at=event.recorded_at,
                decommissioned=False,
            )
            self.rows[event.subject] = row
        self.dirty.add(event.subject)
        row["updated_event_id"] = str(event.event_id)
        return row

    def is_current(self, event: EventBase) -> bool:
        """True when `event` is not older than the newest state change applied to its asset."""
        row = self.rows.get(event.subject)
        last = row["last_occurred_at"] if row is not None else None
        return last is None or event.occurred_at >= last

    def link(self, scheme: str, value: str, asset_id: str) -> None:
        self.links.setdefault((scheme, value), asset_id)


def _registered(fold: _Fold, event: AssetRegistered) -> None:
    row = fold.row(event)
    for column, value in detail_columns(event.payload.details, _ALL_DETAIL_FIELDS).items():
        if row[column] is None and value is not None:
            row[column] = value
    last = row["last_occurred_at"]
    row["last_occurred_at"] = event.occurred_at if last is None else max(last, event.occurred_at)
    for ident in event.payload.identifiers:
        fold.link(ident.scheme, ident.value, event.subject)


def _details_corrected(fold: _Fold, event: AssetDetailsCorrected) -> None:
    fold.row(event).update(detail_columns(event.payload.details, event.payload.changed_fields))


def _relocated(fold: _Fold, event: AssetRelocated) -> None:
    if not fold.is_current(event):
        return
    row = fold.row(event)
    to = event.payload.to
    if to.department.code is not None or to.department.name is not None:
        row["department_code"], row["department_name"] = to.department.code, to.department.name
        row["location"] = to.location
    elif to.location is not None:
        row["location"] = to.location
    row["last_occurred_at"] = event.occurred_at


def _status_changed(fold: _Fold, event: AssetStatusChanged) -> None:
    if not fold.is_current(event):
        return
    row = fold.row(event)
    row["status"] = event.payload.status.value
    row["status_text"] = event.payload.status_text
    row["last_occurred_at"] = event.occurred_at


def _decommissioned(fold: _Fold, event: AssetDecommissioned) -> None:
    current = fold.is_current(event)
    row = fold.row(event)
    row["decommissioned"] = True
    if current:
        row["status"] = AssetStatus.SCRAPPED.value
        row["status_text"] = None
        row["last_occurred_at"] = event.occurred_at


def _identifier_linked(fold: _Fold, event: AssetIdentifierLinked) -> None:
    ident = event.payload.identifier
    fold.link(ident.scheme, ident.value, event.subject)


HANDLERS: dict[type[EventBase], Callable[[_Fold, Any], None]] = {
    AssetRegistered: _registered,
    AssetDetailsCorrected: _details_corrected,
    AssetRelocated: _relocated,
    AssetStatusChanged: _status_changed,
    AssetDecommissioned: _decommissioned,
    AssetIdentifierLinked: _identifier_linked,
}


class AssetRegistry:
    """The asset registry projection (see the module docstring for its rules)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        """Fold `events` in order over the stored rows they touch, then upsert the result."""
        handled = [(HANDLERS[type(e)], e) for e in events if type(e) in HANDLERS]
        if not handled:
            return
        fold = _Fold(_load(conn, {e.subject for _, e in handled}))
        for handler, event in handled:
            handler(fold, event)
        upsert(conn, assets, [fold.rows[a] for a in sorted(fold.dirty)], key=("asset_id",))
        links = [{"scheme": s, "value": v, "asset_id": a} for (s, v), a in sorted(fold.links.items())]
        upsert(conn, identifiers, links, key=("scheme", "value"), update=False)


def _load(conn: Connection, asset_ids: set[str]) -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = {}
    for chunk in chunks(conn, sorted(asset_ids)):
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) keeps a
        # second runner of the same group, mid-rebalance, from folding over the same rows.
        query = select(assets).where(in_values(conn, assets.c.asset_id, chunk)).with_for_update()
        stored.update((row["asset_id"], dict(row)) for row in conn.execute(query).mappings())
    return stored


def list_assets(
    conn: Connection,
    *,
    department: str | None = None,
    status: str | None = None,
    name: str | None = None,
    category: str | None = None,
    identifier: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of assets (ordered by asset id) and the total matching the filters.

    `department` and `category` match a code or a name exactly; `name` is a case-insensitive
    substring; `identifier` matches the value of any linked identifier (any scheme).
    """
    conditions: list[Any] = []
    if department is not None:
        conditions.append(or_(assets.c.department_code == department, assets.c.department_name == department))
    if status is not None:
        conditions.append(assets.c.status == status)
    if name is not None:
        conditions.append(func.lower(assets.c.name).contains(name.lower(), autoescape=True))
    if category is not None:
        conditions.append(or_(assets.c.category_code == category, assets.c.category_name == category))
    if identifier is not None:
        conditions.append(
            assets.c.asset_id.in_(select(identifiers.c.asset_id).where(identifiers.c.value == identifier))
        )
    total = conn.execute(select(func.count()).select_from(assets).where(*conditions)).scalar_one()
    page = conn.execute(
        select(assets).where(*conditions).order_by(assets.c.asset_id).limit(limit).offset(offset)
    ).mappings()
    rows = [dict(row) for row in page]
    links = _identifiers_of(conn, [row["asset_id"] for row in rows])
    for row in rows:
        row["identifiers"] = links.get(row["asset_id"], [])
    return rows, int(total)


def get_asset(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    """One asset with its identifiers, or None when the registry does not know it."""
    row = conn.execute(select(assets).where(assets.c.asset_id == asset_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["identifiers"] = _identifiers_of(conn, [asset_id]).get(asset_id, [])
    return out


def count_assets(conn: Connection) -> int:
    """How many assets the registry holds (decommissioned included)."""
    return int(conn.execute(select(func.count()).select_from(assets)).scalar_one())


def _identifiers_of(conn: Connection, asset_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    if not asset_ids:
        return {}
    query = (
        select(identifiers.c.asset_id, identifiers.c.scheme, identifiers.c.value)
        .where(in_values(conn, identifiers.c.asset_id, asset_ids))
        .order_by(identifiers.c.asset_id, identifiers.c.scheme, identifiers.c.value)
    )
    out: dict[str, list[dict[str, str]]] = {}
    for asset_id, scheme, value in conn.execute(query):
        out.setdefault(asset_id, []).append({"scheme": scheme, "value": value})
    return out
