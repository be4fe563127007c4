"""Asset registry read model: one golden record per physical device, across HRP, SPD, HIS, OA and FHIR.

What it owns (tables in projections.assets.tables): golden records with their current state
(status, department and location, loan, calibration, inspection, contracts, valuation,
decommissioning), the identifier crosswalk, merges of provisional records, identity conflicts,
every event's history row, and the emergency-availability tables.

How a batch is applied: every name the batch uses is resolved in a few queries
(projections.assets.identity), the rows it touches are loaded, events are folded in order in memory
(links first, so an event lands on the record its link chose; projections.assets.state for the
state rules), and the differences are written back with one upsert per table (golden records:
only the columns some record of the batch changed, see `changed_columns`). Applying a stream
in any batching therefore yields the same tables, and applying it twice changes nothing (event
ids are claimed by projections.runtime.tracking).

Derived events: `asset.identity_conflict`, once per conflict (projections.assets.conflicts).

Configuration (`RegistryConfig`, passed to the constructor; defaults need nothing):
- `availability`: the emergency pool and calibration requirements, see
  projections.assets.availability.AvailabilityConfig. Default: no pool, calibration required of none.
  `DEMO_CONFIG` puts the ventilators (呼吸机) of 设备科 in the pool.
- `site_tz` (Asia/Shanghai): the zone in which the API reads "today" (calibration validity,
  ready devices); business times are stored in UTC.

`list_assets`, `get_asset`, `count_assets`, `asset_history`, `list_conflicts` (projections.assets.queries)
are the queries the API serves; `demo_summary` is what `hub demo` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update

from projections.assets import availability as avail
from projections.assets import conflicts as asset_conflicts
from projections.assets.availability import AvailabilityConfig, PoolRule
from projections.assets.history import corrected_summary, history_row
from projections.assets.identity import ANCHOR_SCHEME, Crosswalk, Rekey, link_identifiers, minted_id, repoint
from projections.assets.queries import (
    asset_history,
    count_assets,
    get_asset,
    list_assets,
    list_conflicts,
    resolve_asset_id,
)
from projections.assets.state import COLUMNS, HANDLERS, apply, combine, new_row
from projections.assets.tables import METADATA, NAME, assets, history, identifiers
from projections.runtime.fetch import select_in
from projections.runtime.upsert import chunks, in_values, upsert
from schemas.assets import AssetIdentifierLinked, AssetRegistered, AssetUsageCorrected

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID

    from sqlalchemy import Connection

    from schemas._base import Identifier
    from schemas.catalogue import Event
    from schemas.envelope import EventBase

__all__ = [
    "DEMO_CONFIG",
    "METADATA",
    "NAME",
    "TOPICS",
    "AssetRegistry",
    "RegistryConfig",
    "asset_history",
    "assets",
    "count_assets",
    "demo_summary",
    "get_asset",
    "identifiers",
    "list_assets",
    "list_conflicts",
    "resolve_asset_id",
]

TOPICS = ("canonical.asset.v1",)
_LINKING = (AssetRegistered, AssetIdentifierLinked)
_HISTORY_KEY = ("asset_id", "occurred_at", "recorded_at", "event_id")
_KEY = ("asset_id",)
# The INSERT half of an upsert is checked before the conflict: NOT NULL columns always go.
_ALWAYS = frozenset(c.name for c in assets.columns if not c.nullable)


@dataclass(frozen=True)
class RegistryConfig:
    """The registry's knobs (see the module docstring)."""

    availability: AvailabilityConfig = field(default_factory=AvailabilityConfig)
    site_tz: str = "Asia/Shanghai"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.site_tz)


DEMO_CONFIG = RegistryConfig(
    availability=AvailabilityConfig(pool_rules=(PoolRule(department="设备科", name_contains="呼吸机"),))
)


class AssetRegistry:
    """The asset registry projection (see the module docstring for its rules)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: RegistryConfig | None = None) -> None:
        self.config = config or RegistryConfig()

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase] | None:
        """Fold `events` in order over the stored rows they touch, then write the differences."""
        handled = [e for e in events if type(e) in HANDLERS or isinstance(e, _LINKING)]
        if not handled:
            return None
        fold = _Fold(conn, self.config.availability)
        fold.load(handled)
        for event in handled:
            fold.apply(event)
        return fold.flush() or None


class _Fold:
    """In-memory state of the records one batch touches, starting from what is stored."""

    def __init__(self, conn: Connection, config: AvailabilityConfig) -> None:
        self.conn = conn
        self.config = config
        self.crosswalk = Crosswalk()
        self.rows: dict[str, dict[str, Any]] = {}
        self.before: dict[str, dict[str, Any] | None] = {}  # stored availability, by asset id
        self.stored: dict[str, dict[str, Any]] = {}  # stored golden rows as loaded, by asset id
        self.dirty: set[str] = set()
        self.retired: set[str] = set()
        self.history: list[dict[str, Any]] = []
        self.links: dict[UUID, list[Identifier]] = {}  # identifiers each linking event names
        self.resummarised: dict[str, tuple[str, str]] = {}  # usage event id -> (asset, corrected summary)

    def load(self, events: Sequence[EventBase]) -> None:
        names = {e.subject for e in events}
        cluster_names: set[str] = set()
        keys: set[tuple[str, str]] = set()  # non-card identifiers linked: their claims settle contests
        for event in events:
            if isinstance(event, _LINKING):
                self.links[event.event_id] = idents = link_identifiers(event)
                minted = {minted_id(i) for i in idents}
                names |= minted
                cluster_names |= minted | {event.subject}
                keys.update((i.scheme, i.value) for i in idents if i.scheme != ANCHOR_SCHEME)
        self.crosswalk.load(self.conn, names, cluster_names, keys)
        goldens = sorted(set(self.crosswalk.owner.values()))
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) keeps a
        # second runner of the same group, mid-rebalance, from folding over the same rows.
        for stored in select_in(self.conn, assets, "asset_id", goldens, for_update=True):
            self.stored[stored["asset_id"]] = stored
            self.rows[stored["asset_id"]] = dict(stored)
            self.before[stored["asset_id"]] = avail.availability_row(stored, self.config)

    def apply(self, event: EventBase) -> None:
        if isinstance(event, _LINKING):
            # linked_by "person" lets a link move an identifier between anchored records.
            linked_by = event.payload.linked_by if isinstance(event, AssetIdentifierLinked) else "registered"
            declare = isinstance(event, AssetRegistered)
            for op in self.crosswalk.link(
                event.subject, self.links[event.event_id], linked_by, event, declare=declare
            ):
                self._rekey(op)
        golden = self.crosswalk.ensure(event.subject)
        row = self.rows.get(golden)
        if row is None:
            row = self.rows[golden] = new_row(golden, event)
        event_id = str(event.event_id)  # once: UUID.__str__ is not free, a million times over
        apply(row, event, event_id)
        self.dirty.add(golden)
        self.history.append(history_row(event, golden, event_id))
        if isinstance(event, AssetUsageCorrected):
            corrected, text = corrected_summary(event)
            self.resummarised[corrected] = (golden, text)

    def _rekey(self, op: Rekey) -> None:
        sources = [self.rows.pop(s) for s in op.sources if s in self.rows]
        for source in op.sources:
            if source != op.target:
                self.retired.add(source)
                self.dirty.discard(source)
        self.retired.discard(op.target)
        self.rows[op.target] = (
            combine(sources, op.target, op.event) if sources else new_row(op.target, op.event)
        )
        self.dirty.add(op.target)

    def flush(self) -> list[EventBase]:
        conn, final = self.conn, self.crosswalk.final
        self.crosswalk.flush(conn)
        for chunk in chunks(conn, sorted(self.retired)):
            conn.execute(delete(assets).where(in_values(conn, assets.c.asset_id, chunk)))
        upsert(
            conn, assets, changed_columns([self.rows[a] for a in sorted(self.dirty)], self.stored), key=_KEY
        )
        repoint(conn, history.c.asset_id, self.crosswalk.retired, final)
        if self.crosswalk.retired:  # most batches merge nothing: skip a call per event
            for row in self.history:
                row["asset_id"] = final(row["asset_id"])
        for row in self.history:  # a usage corrected in this batch
            if row["event_id"] in self.resummarised:
                row["summary"] = self.resummarised[row["event_id"]][1]
        # In key order (stable), not event order: each page of the key is visited once per batch.
        upsert(conn, history, sorted(self.history, key=_history_key), key=_HISTORY_KEY, update=False)
        for event_id, (asset_id, text) in sorted(self.resummarised.items()):  # ... or stored before it
            where = (history.c.asset_id == final(asset_id), history.c.event_id == event_id)
            conn.execute(update(history).where(*where).values(summary=text))
        self._flush_availability()
        return asset_conflicts.write(conn, self.crosswalk)

    def _flush_availability(self) -> None:
        changed: dict[str, dict[str, Any] | None] = {}
        names: dict[str, tuple[str | None, str | None]] = {}
        for asset_id in self.dirty:
            row = self.rows[asset_id]
            want = avail.availability_row(row, self.config)
            if want != self.before.get(asset_id):
                changed[asset_id] = want
                if want is not None and want["kind_id"] is not None:
                    names[want["kind_id"]] = (row["name"], row["model"])
        for asset_id in self.retired:
            if self.before.get(asset_id) is not None:
                changed[asset_id] = None
        before = {a: (self.before.get(a) or {}).get("kind_id") for a in changed}
        avail.write(self.conn, changed, before, names)


def _history_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in _HISTORY_KEY)


def changed_columns(rows: list[dict[str, Any]], stored: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` narrowed to the key and the columns some row changes (vs its stored row, or vs NULL
    for a row not stored yet): what an upsert must write to leave the same table.

    A batch of registrations touches a third of the 60 columns, and binding (and, on SQLite,
    setting on conflict) the untouched ones was the largest single cost of a batch.
    """
    # Only the columns no row has changed yet are compared: that set shrinks within a few rows.
    same = [c for c in COLUMNS if c not in _ALWAYS]
    for row in rows:
        old = stored.get(row["asset_id"])
        if old is None:
            same = [c for c in same if row[c] is None]
        else:
            # Decimal("1.0") == Decimal("1.00"), but the stored text keeps the scale it was given.
            same = [
                c
                for c in same
                if (v := row[c]) == (o := old[c]) and (v.__class__ is not Decimal or str(v) == str(o))
            ]
        if not same:
            return rows
    unchanged = set(same)
    keep = [c for c in COLUMNS if c not in unchanged]
    return [{c: row[c] for c in keep} for row in rows]


def demo_summary(conn: Connection, today: date | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """Tables for `hub demo`: ventilator availability, loans, identity work, calibration.

    `today` defaults to the day of the newest dated state fact (status, location, loan,
    calibration) in the registry: sample data is dated, and judging it against the wall clock
    would show every calibration expired and every loan overdue.
    """
    if today is None:
        a = assets.c
        clocks = (a.status_at, a.location_at, a.loan_at, a.calibration_at)
        found = [conn.execute(select(func.max(c))).scalar() for c in clocks]
        newest = max((f for f in found if f is not None), default=None)
        today = newest.date() if newest is not None else date.today()  # noqa: DTZ011  (an empty registry)
    from projections.assets.demo import summary_tables  # noqa: PLC0415  (only the demo needs it)

    return summary_tables(conn, today)
