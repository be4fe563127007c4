"""Identity conflicts: stored for a person to resolve, announced once as `asset.identity_conflict`.

A conflict is keyed by (identifier, holder, claimant) as they were when the link was refused; its
id is uuid5 over that key, and so is the derived event's: the same refused link, applied again or
rebuilt, is the same conflict and the same event, never a second one. A person's link of the
identifier (projections.identity.Resolution) resolves the open conflicts over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from projections.asset_tables import NAME, conflicts
from projections.identity import Conflict, Resolution, repoint
from projections.upsert import chunks, in_values, upsert
from schemas._base import SourceSystem
from schemas.derived import AssetIdentityConflict, IdentityConflictPayload
from schemas.envelope import Source
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from sqlalchemy import Connection


OPEN, RESOLVED = "open", "resolved"
ADAPTER_VERSION = f"hub/{NAME}/1"


def conflict_key(conflict: Conflict) -> str:
    ident = conflict.identifier
    parts = (ident.scheme, ident.value, conflict.holder, conflict.claimant)
    return f"{NAME}:identity_conflict:" + "\x1f".join(parts)


def derived_event(conflict: Conflict) -> AssetIdentityConflict:
    """The event announcing `conflict`, with an id fixed by the conflict itself."""
    trigger = conflict.event
    key = conflict_key(conflict)
    return AssetIdentityConflict(
        event_id=event_id_for(SourceSystem.HUB.value, key, 0),
        occurred_at=trigger.occurred_at,
        recorded_at=trigger.recorded_at,
        source=Source(
            system=SourceSystem.HUB,
            site=trigger.source.site,
            message_id=key,
            raw_ref=trigger.source.raw_ref,
            adapter_version=ADAPTER_VERSION,
        ),
        subject=conflict.holder,
        correlation_id=trigger.correlation_id,
        causation_id=str(trigger.event_id),
        payload=IdentityConflictPayload(
            identifier=conflict.identifier, asset_ids=[conflict.holder, conflict.claimant]
        ),
    )


def write(
    conn: Connection,
    verdicts: Sequence[Conflict | Resolution],
    retired: Iterable[str],
    final: Callable[[str], str],
) -> list[AssetIdentityConflict]:
    """Store new conflicts and resolutions, follow merges; return the events of conflicts never seen.

    `verdicts` are the batch's refused links and a person's links, in the order they happened:
    a resolution resolves the conflicts raised before it, stored or in this batch.
    """
    rows: dict[str, dict[str, Any]] = {}
    events: dict[str, AssetIdentityConflict] = {}
    resolutions: list[Resolution] = []
    for verdict in verdicts:
        if isinstance(verdict, Resolution):
            ident = verdict.identifier
            for row in rows.values():
                if (row["scheme"], row["value"], row["status"]) == (ident.scheme, ident.value, OPEN):
                    _resolve(row, verdict, final)
            resolutions.append(verdict)
        else:
            event = derived_event(verdict)
            rows.setdefault(str(event.event_id), _row(verdict, str(event.event_id)))
            events.setdefault(str(event.event_id), event)
    stored: set[str] = set()
    for chunk in chunks(conn, sorted(rows)):
        query = select(conflicts.c.conflict_id).where(in_values(conn, conflicts.c.conflict_id, chunk))
        stored.update(conn.execute(query).scalars())
    c = conflicts.c
    for resolution in resolutions:  # before this batch's inserts: only earlier conflicts are stored
        ident = resolution.identifier
        conn.execute(
            update(conflicts)
            .where(c.value == ident.value, c.scheme == ident.scheme, c.status == OPEN)
            .values(
                status=RESOLVED,
                resolved_asset_id=final(resolution.asset_id),
                resolved_by_event_id=str(resolution.event.event_id),
            )
        )
    fresh = [r for k, r in sorted(rows.items()) if k not in stored]
    for row in fresh:
        row["holder_asset_id"] = final(row["holder_asset_id"])
        row["claimant_asset_id"] = final(row["claimant_asset_id"])
    upsert(conn, conflicts, fresh, key=("conflict_id",))
    _follow_merges(conn, retired, final)
    return [e for k, e in sorted(events.items()) if k not in stored]


def _follow_merges(conn: Connection, retired: Iterable[str], final: Callable[[str], str]) -> None:
    """Point stored conflicts at the golden records their assets were merged into."""
    old = sorted(retired)
    c = conflicts.c
    named: set[str] = set()
    for chunk in chunks(conn, old):
        # Conflicts are few and merges many: find the ones concerned before updating any.
        query = select(c.holder_asset_id, c.claimant_asset_id).where(
            or_(in_values(conn, c.holder_asset_id, chunk), in_values(conn, c.claimant_asset_id, chunk))
        )
        for holder, claimant in conn.execute(query):
            named.update((holder, claimant))
    concerned = named.intersection(old)
    repoint(conn, c.holder_asset_id, concerned, final)
    repoint(conn, c.claimant_asset_id, concerned, final)


def _row(conflict: Conflict, conflict_id: str) -> dict[str, Any]:
    trigger = conflict.event
    return {
        "conflict_id": conflict_id,
        "scheme": conflict.identifier.scheme,
        "value": conflict.identifier.value,
        "holder_asset_id": conflict.holder,
        "claimant_asset_id": conflict.claimant,
        "status": OPEN,
        "event_id": str(trigger.event_id),
        "source_system": trigger.source.system.value,
        "occurred_at": trigger.occurred_at,
        "recorded_at": trigger.recorded_at,
        "resolved_asset_id": None,
        "resolved_by_event_id": None,
    }


def _resolve(row: dict[str, Any], resolution: Resolution, final: Callable[[str], str]) -> None:
    row["status"] = RESOLVED
    row["resolved_asset_id"] = final(resolution.asset_id)
    row["resolved_by_event_id"] = str(resolution.event.event_id)
