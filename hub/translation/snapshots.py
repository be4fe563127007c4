"""Snapshot differ: ledgers are re-exported whole, the log must only carry what changed.

A source whose export repeats every record (the HRP asset ledger) declares its snapshot event
types. For each such event the differ compares the payload with the last one seen for the same
subject: the same -> nothing is published; new -> published as is; changed -> the change is
published as its correction event (`asset.details_corrected` with only the changed fields, plus
`asset.identifier_linked` for identifiers the ledger newly names). Correction ids are uuid5 over
the subject and the new content, so a crash and a re-run publish the same ids.

The same store remembers the events of noted units (hub.translation.corrections): `correct`
turns a changed one into its correction event; its state is committed with the rest.

State is written (`commit`) only after the events are on the bus: a crash in between re-publishes
the same ids, which projections ignore. A file is diffed chunk by chunk (the worker commits each
chunk's state after publishing it), so a re-run after a crash finds the chunks already published
unchanged and publishes only the rest.

What is kept per row is its content hash. Comparing needs nothing else; only a row whose hash
changed needs more, and only for `asset.registered`: its correction names the changed fields and
their previous values (`previous`, part of the event's contract), which no hash can give back.
So the state keeps, beside the hash, the previous payload of `asset.registered` rows only (other
snapshot types republish their whole new state and keep the hash alone), and reads it back only
for the rows whose hash changed: a diff holds hashes in memory, never the previous payloads of
unchanged rows.

The state lives in a `SnapshotStore` (hub.translation.snapshot_state): the node's SQLite archive
file, or PostgreSQL beside a shared archive (HUB_ARCHIVE_URL), where every node diffs against
what any node has seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.translation.corrections import CORRECTABLE, correction
from hub.translation.snapshot_state import SnapshotStore, SqliteSnapshotStore
from schemas._base import Identifier
from schemas.assets import (
    AssetDetails,
    AssetDetailsCorrected,
    AssetDetailsCorrectedPayload,
    AssetIdentifierLinked,
    AssetRegistered,
    IdentifierLinkedPayload,
)
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas.envelope import EventBase


def content_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class DiffResult:
    events: list[EventBase] = field(default_factory=list)
    new: int = 0
    corrected: int = 0
    unchanged: int = 0
    state: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    noted: list[tuple[str, str, str, str]] = field(default_factory=list)  # events of noted units


# Snapshot types whose change is published as a correction computed from the previous payload.
_KEEPS_PAYLOAD = frozenset({"asset.registered"})


def _correction(event: AssetRegistered, before: dict[str, Any], digest: str) -> list[EventBase]:
    old = AssetRegistered.model_validate({**event.model_dump(mode="json"), "payload": before})
    new_details, old_details = event.payload.details, old.payload.details
    changed = [
        name for name in AssetDetails.model_fields if getattr(new_details, name) != getattr(old_details, name)
    ]
    base = event.model_dump(exclude={"event_id", "type", "schema_version", "payload", "occurred_at"})
    out: list[EventBase] = []
    if changed:
        out.append(
            AssetDetailsCorrected(
                **base,
                event_id=event_id_for(event.source.system, f"snapshot:{event.subject}", digest),
                # a re-export states the change as of its export, not of the acquisition
                occurred_at=event.recorded_at,
                payload=AssetDetailsCorrectedPayload(
                    details=AssetDetails(**{n: getattr(new_details, n) for n in changed}),
                    changed_fields=changed,
                    previous=AssetDetails(**{n: getattr(old_details, n) for n in changed}),
                ),
            )
        )
    known = {(i.scheme, i.value) for i in old.payload.identifiers}
    out.extend(
        AssetIdentifierLinked(
            **base,
            event_id=event_id_for(
                event.source.system, f"link:{event.subject}", f"{ident.scheme}:{ident.value}"
            ),
            occurred_at=event.recorded_at,
            payload=IdentifierLinkedPayload(
                identifier=Identifier(scheme=ident.scheme, value=ident.value), linked_by="mapping"
            ),
        )
        for ident in event.payload.identifiers
        if (ident.scheme, ident.value) not in known
    )
    return out


class SnapshotDiffer:
    """Diffs against `store` (hub.translation.snapshot_state): a path is a SQLite file of its own."""

    def __init__(self, store: SnapshotStore | Path) -> None:
        self.store = SqliteSnapshotStore(store) if isinstance(store, Path) else store

    def close(self) -> None:
        self.store.close()

    async def diff(
        self, system: str, events: Sequence[EventBase], snapshot_types: frozenset[str]
    ) -> DiffResult:
        return await asyncio.to_thread(self._diff, system, events, snapshot_types)

    def _diff(self, system: str, events: Sequence[EventBase], snapshot_types: frozenset[str]) -> DiffResult:
        result = DiffResult()
        keys = [(e.subject, e.type) for e in events if e.type in snapshot_types]
        known = self.store.hashes(system, keys)
        digests = {}
        for event in events:
            if event.type in snapshot_types:
                payload = event.model_dump(mode="json", by_alias=True)["payload"]
                digests[id(event)] = (content_hash(payload), payload)
        changed = [
            (e.subject, e.type)
            for e in events
            if id(e) in digests and known.get((e.subject, e.type)) not in (None, digests[id(e)][0])
        ]
        before = self.store.payloads(system, changed)
        for event in events:
            if event.type not in snapshot_types:
                result.events.append(event)
                continue
            digest, payload = digests[id(event)]
            key = (event.subject, event.type)
            previous = known.get(key)
            if previous is None:
                result.events.append(event)
                result.new += 1
            elif previous == digest:
                result.unchanged += 1
                continue
            else:
                result.events.extend(self._changed(event, before.get(key), digest))
                result.corrected += 1
            kept = json.dumps(payload, ensure_ascii=False) if event.type in _KEEPS_PAYLOAD else ""
            known[key] = digest
            before[key] = payload  # a subject twice in one chunk is diffed against its first row
            result.state.append((system, event.subject, event.type, digest, kept))
        return result

    @staticmethod
    def _changed(event: EventBase, before: dict[str, Any] | None, digest: str) -> list[EventBase]:
        if isinstance(event, AssetRegistered) and before is not None:
            return _correction(event, before, digest)
        # Other snapshot types carry their full state: publish the new state under a content id.
        return [
            event.model_copy(
                update={
                    "event_id": event_id_for(
                        event.source.system, f"snapshot:{event.subject}:{event.type}", digest
                    )
                }
            )
        ]

    def correct(self, system: str, result: DiffResult, noted: set[str]) -> DiffResult:
        """Replace each event published before for a noted unit, now with another payload, by its
        correction; remember the events of `noted` units (hub.translation.corrections)."""
        ids = [str(e.event_id) for e in result.events if e.type in CORRECTABLE]
        if not ids:
            return result
        known = self.store.noted(system, ids)
        if not known and not noted:
            return result
        events: list[EventBase] = []
        for event in result.events:
            event_id = str(event.event_id)
            if event.type not in CORRECTABLE or (event_id not in known and event_id not in noted):
                events.append(event)
                continue
            payload = event.model_dump(mode="json", by_alias=True)["payload"]
            digest = content_hash(payload)
            before = known.get(event_id)
            if before is None:
                events.append(event)  # first published: remembered as it reads
            elif before[0] != digest:
                events.append(correction(event, json.loads(before[1]), digest))
                result.corrected += 1
            else:
                # On the log already, as the original or its latest correction: never the changed
                # payload under the original's id.
                result.unchanged += 1
                continue
            result.noted.append((system, event_id, digest, json.dumps(payload, ensure_ascii=False)))
        result.events = events
        return result

    async def commit(self, result: DiffResult) -> None:
        if result.state or result.noted:
            await asyncio.to_thread(self.store.commit, result.state, result.noted)
