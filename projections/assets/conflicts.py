"""Identity conflicts: stored for a person to resolve, announced once as `asset.identity_conflict`.

A conflict is keyed by (identifier, holder, claimant) as they were when it was raised; its id is
uuid5 over that key, and so is the derived event's, whose envelope comes from the trigger (the
refused link): the same conflict, applied again or rebuilt, is the same row and the same event,
never a second one.

Two kinds, by identifier (see projections.assets.identity and projections.assets.claims for the rules):
- over a non-card identifier, one per pair of anchored records claiming it, holder = the record
  whose first claim comes first; resolved iff the latest person's link of the identifier is no
  earlier (business time) than the trigger, naming that link and the record it chose;
- over an HRP card, one per refused link, as it arrived; a person's link of the card to the
  record holding it (projections.assets.identity.Resolution) resolves the open ones raised before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from projections.assets.identity import Conflict, Key, Resolution, repoint
from projections.assets.tables import NAME, conflicts
from projections.runtime.upsert import chunks, in_values, upsert
from schemas._base import SourceSystem
from schemas.derived import AssetIdentityConflict, IdentityConflictPayload
from schemas.envelope import Source
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sqlalchemy import Connection

    from projections.assets.claims import Claim
    from projections.assets.identity import Crosswalk
    from schemas.envelope import EventBase

OPEN, RESOLVED = "open", "resolved"
ADAPTER_VERSION = f"hub/{NAME}/1"


def conflict_key(conflict: Conflict) -> str:
    ident = conflict.identifier
    parts = (ident.scheme, ident.value, conflict.holder, conflict.claimant)
    return f"{NAME}:identity_conflict:" + "\x1f".join(parts)


def derived_event(conflict: Conflict) -> AssetIdentityConflict:
    """The event announcing `conflict`, with an id fixed by the conflict itself."""
    trigger = conflict.trigger
    key = conflict_key(conflict)
    return AssetIdentityConflict(
        event_id=event_id_for(SourceSystem.HUB.value, key, 0),
        occurred_at=trigger.occurred_at,
        recorded_at=trigger.recorded_at,
        source=Source(
            system=SourceSystem.HUB,
            site=trigger.site,
            message_id=key,
            raw_ref=trigger.raw_ref,
            adapter_version=ADAPTER_VERSION,
        ),
        subject=conflict.holder,
        correlation_id=trigger.correlation_id,
        causation_id=str(trigger.event_id),
        payload=IdentityConflictPayload(
            identifier=conflict.identifier, asset_ids=[conflict.holder, conflict.claimant]
        ),
    )


def write(conn: Connection, crosswalk: Crosswalk) -> list[EventBase]:
    """Store the batch's new conflicts and resolutions, follow merges; return the events of
    conflicts never seen.

    `crosswalk.verdicts`: refused links of HRP cards and people's links of cards, in the order
    they happened (a resolution resolves the card conflicts raised before it, stored or in this
    batch). `crosswalk.contests`: new pairs of records claiming another identifier, whose
    status `crosswalk.claims` decides (the latest person's link of the identifier, if any).
    """
    final, claims = crosswalk.final, crosswalk.claims
    rows: dict[str, dict[str, Any]] = {}
    events: dict[str, EventBase] = {}
    for contest in crosswalk.contests:
        row = _raise(contest, rows, events)
        decider = claims.latest_person(_key(contest))
        if decider is not None and decider[1].occurred_at >= contest.trigger.occurred_at:
            _decide(row, *decider, final)
    resolutions = _card_verdicts(crosswalk, rows, events)
    stored: set[str] = set()
    for chunk in chunks(conn, sorted(rows)):
        query = select(conflicts.c.conflict_id).where(in_values(conn, conflicts.c.conflict_id, chunk))
        stored.update(conn.execute(query).scalars())
    for resolution in resolutions:  # before this batch's inserts: only earlier conflicts are stored
        _resolve_stored(conn, resolution, final)
    fresh = [r for k, r in sorted(rows.items()) if k not in stored]
    for row in fresh:
        row["holder_asset_id"] = final(row["holder_asset_id"])
        row["claimant_asset_id"] = final(row["claimant_asset_id"])
    upsert(conn, conflicts, fresh, key=("conflict_id",))
    for key in sorted(claims.decided):
        decider = claims.latest_person(key)
        if decider is not None:
            _decide_stored(conn, key, *decider, final)
    _follow_merges(conn, crosswalk.retired, final)
    return [e for k, e in sorted(events.items()) if k not in stored]


def _card_verdicts(
    crosswalk: Crosswalk, rows: dict[str, dict[str, Any]], events: dict[str, EventBase]
) -> list[Resolution]:
    """Raise the batch's card conflicts and resolve them in order; return the resolutions."""
    resolutions: list[Resolution] = []
    for verdict in crosswalk.verdicts:
        if isinstance(verdict, Resolution):
            ident = verdict.identifier
            for row in rows.values():
                if (row["scheme"], row["value"], row["status"]) == (ident.scheme, ident.value, OPEN):
                    _resolve(row, verdict, crosswalk.final)
            resolutions.append(verdict)
        else:
            _raise(verdict, rows, events)
    return resolutions


def _raise(
    conflict: Conflict, rows: dict[str, dict[str, Any]], events: dict[str, EventBase]
) -> dict[str, Any]:
    event = derived_event(conflict)
    events.setdefault(str(event.event_id), event)
    return rows.setdefault(str(event.event_id), _row(conflict, str(event.event_id)))


def _resolve_stored(conn: Connection, resolution: Resolution, final: Callable[[str], str]) -> None:
    c, ident = conflicts.c, resolution.identifier
    conn.execute(
        update(conflicts)
        .where(c.value == ident.value, c.scheme == ident.scheme, c.status == OPEN)
        .values(
            status=RESOLVED,
            resolved_asset_id=final(resolution.asset_id),
            resolved_by_event_id=str(resolution.event.event_id),
        )
    )


def _key(conflict: Conflict) -> Key:
    return (conflict.identifier.scheme, conflict.identifier.value)


def _decide(row: dict[str, Any], golden: str, claim: Claim, final: Callable[[str], str]) -> None:
    row["status"] = RESOLVED
    row["resolved_asset_id"] = final(golden)
    row["resolved_by_event_id"] = claim.event_id


def _decide_stored(
    conn: Connection, key: Key, golden: str, claim: Claim, final: Callable[[str], str]
) -> None:
    """The latest person's link of `key` resolves every conflict over it raised no later than it."""
    c = conflicts.c
    conn.execute(
        update(conflicts)
        .where(c.value == key[1], c.scheme == key[0], c.occurred_at <= claim.occurred_at)
        .values(status=RESOLVED, resolved_asset_id=final(golden), resolved_by_event_id=claim.event_id)
    )


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
    trigger = conflict.trigger
    return {
        "conflict_id": conflict_id,
        "scheme": conflict.identifier.scheme,
        "value": conflict.identifier.value,
        "holder_asset_id": conflict.holder,
        "claimant_asset_id": conflict.claimant,
        "status": OPEN,
        "event_id": trigger.event_id,
        "source_system": trigger.source_system,
        "occurred_at": trigger.occurred_at,
        "recorded_at": trigger.recorded_at,
        "resolved_asset_id": None,
        "resolved_by_event_id": None,
    }


def _resolve(row: dict[str, Any], resolution: Resolution, final: Callable[[str], str]) -> None:
    row["status"] = RESOLVED
    row["resolved_asset_id"] = final(resolution.asset_id)
    row["resolved_by_event_id"] = str(resolution.event.event_id)
