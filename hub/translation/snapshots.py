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

Each snapshot event is serialised once, in the differ's thread: the event's wire bytes (its bus
record, `DiffResult.records`, so publishing does no JSON on the event loop) are its payload's bytes
spliced into the envelope's, the content hash is over those payload bytes, and the kept payload is
those bytes decoded. State written by an earlier hub holds the hash of the payload as sorted
`json.dumps` (`content_hash`): a row whose stored hash is of that form is compared by it, and when
unchanged its state is rewritten in the current form, so the next export takes the fast path.

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

from hub.ports import OutRecord, event_out_record
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
from schemas.catalogue import dump_event
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas.envelope import EventBase


def content_hash(payload: dict[str, Any]) -> str:
    """The hash of a payload as sorted JSON: noted units, and snapshot state of earlier hubs."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


WIRE_HASH = "w1:"  # marks a snapshot hash over the payload's wire bytes (`content_hash` has no prefix)
_PAYLOAD_KEY = b',"payload":'
_SPLICES: dict[type, bool] = {}  # event class -> its wire bytes are envelope + payload spliced


def serialise(event: EventBase) -> tuple[bytes, bytes]:
    """(the event's wire bytes as `dump_event` writes them, its payload's bytes), serialising the
    payload once: the envelope without it, then the payload spliced in as its last field."""
    payload = event.payload  # type: ignore[attr-defined]
    body: bytes = payload.__pydantic_serializer__.to_json(payload, by_alias=True)
    kind = type(event)
    splices = _SPLICES.get(kind)
    if splices is None:
        # Checked once per class: payload is the last field and serialises as on its own.
        whole = dump_event(event)
        splices = _SPLICES[kind] = whole.endswith(_PAYLOAD_KEY + body + b"}") and (
            _envelope(event)[:-1] + _PAYLOAD_KEY + body + b"}" == whole
        )
        return whole, body
    if not splices:
        return dump_event(event), body
    return _envelope(event)[:-1] + _PAYLOAD_KEY + body + b"}", body


def _envelope(event: EventBase) -> bytes:
    out: bytes = event.__pydantic_serializer__.to_json(event, by_alias=True, exclude={"payload"})
    return out


def wire_hash(body: bytes) -> str:
    return WIRE_HASH + hashlib.sha256(body).hexdigest()


@dataclass
class DiffResult:
    events: list[EventBase] = field(default_factory=list)
    new: int = 0
    corrected: int = 0
    unchanged: int = 0
    state: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    noted: list[tuple[str, str, str, str]] = field(default_factory=list)  # events of noted units
    # Bus records made in the differ's thread, by id() of the event they carry (kept beside it, so
    # the id cannot be reused by another event while the record is here).
    records: dict[int, tuple[EventBase, OutRecord]] = field(default_factory=dict)

    def out_records(self) -> list[tuple[EventBase, OutRecord]]:
        """Each event with its record, in order: made by the differ already, or now."""
        out: list[tuple[EventBase, OutRecord]] = []
        for event in self.events:
            made = self.records.get(id(event))
            out.append((event, made[1] if made is not None and made[0] is event else event_out_record(event)))
        return out


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


Key = tuple[str, str]  # (subject, event type)


def _serialise_snapshots(
    events: Sequence[EventBase], snapshot_types: frozenset[str], known: dict[Key, str]
) -> tuple[dict[int, tuple[str, bytes, bytes]], set[Key], list[Key]]:
    """Serialise each snapshot event once: by id(event), (digest, payload bytes, wire bytes); the
    keys whose stored state, of an earlier form, is the same content (`known` moved to the new
    digest); the keys whose stored hash differs (their kept payloads are read)."""
    serialised: dict[int, tuple[str, bytes, bytes]] = {}
    upgraded: set[Key] = set()
    changed: list[Key] = []
    for event in events:
        if event.type not in snapshot_types:
            continue
        wire, body = serialise(event)
        digest = wire_hash(body)
        serialised[id(event)] = (digest, body, wire)
        key = (event.subject, event.type)
        previous = known.get(key)
        if previous is None or previous == digest:
            continue
        if not previous.startswith(WIRE_HASH) and previous == content_hash(json.loads(body)):
            known[key] = digest
            upgraded.add(key)
        else:
            changed.append(key)
    return serialised, upgraded, changed


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
        serialised, upgraded, changed = _serialise_snapshots(events, snapshot_types, known)
        before = self.store.payloads(system, changed)
        fresh: dict[Key, bytes] = {}  # payloads of this chunk, by key, decoded on need
        for event in events:
            if event.type not in snapshot_types:
                result.events.append(event)
                continue
            digest, body, wire = serialised[id(event)]
            key = (event.subject, event.type)
            previous = known.get(key)
            if previous is None:
                result.events.append(event)
                result.records[id(event)] = (event, event_out_record(event, wire))
                result.new += 1
            elif previous == digest:
                result.unchanged += 1
                if key not in upgraded:
                    continue
                upgraded.discard(key)
            else:
                prior = json.loads(fresh[key]) if key in fresh else before.get(key)
                result.events.extend(self._changed(event, prior, digest))
                result.corrected += 1
            kept = body.decode() if event.type in _KEEPS_PAYLOAD else ""
            known[key] = digest
            fresh[key] = body  # a subject twice in one chunk is diffed against its first row
            result.state.append((system, event.subject, event.type, digest, kept))
        # The rest (corrections, other types) serialised here too, off the event loop.
        for event in result.events:
            if id(event) not in result.records:
                result.records[id(event)] = (event, event_out_record(event))
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
