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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.sqlite import connect_durable
from hub.translation.corrections import CORRECTABLE, correction
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
    from pathlib import Path

    from schemas.envelope import EventBase

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot_state (
    system TEXT NOT NULL,
    subject TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, subject, event_type)
);
CREATE TABLE IF NOT EXISTS noted_state (
    system TEXT NOT NULL,
    event_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, event_id)
);
"""


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
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = connect_durable(path)
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def diff(
        self, system: str, events: Sequence[EventBase], snapshot_types: frozenset[str]
    ) -> DiffResult:
        return await asyncio.to_thread(self._diff, system, events, snapshot_types)

    def _diff(self, system: str, events: Sequence[EventBase], snapshot_types: frozenset[str]) -> DiffResult:
        result = DiffResult()
        keys = [(e.subject, e.type) for e in events if e.type in snapshot_types]
        known = self._hashes(system, keys)
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
        before = self._payloads(system, changed)
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
        with self._lock:
            known = {
                event_id: (digest, payload)
                for i in range(0, len(ids), 400)
                for event_id, digest, payload in self._conn.execute(
                    "SELECT event_id, content_hash, payload FROM noted_state"  # nosec B608: placeholders only
                    f" WHERE system = ? AND event_id IN ({','.join('?' * len(ids[i : i + 400]))})",
                    (system, *ids[i : i + 400]),
                )
            }
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

    def _hashes(self, system: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for subject, etype, digest, _ in self._select(system, keys, "''"):
            out[(subject, etype)] = digest
        return out

    def _payloads(
        self, system: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        wanted = set(keys)
        return {
            (subject, etype): json.loads(payload)
            for subject, etype, _, payload in self._select(system, keys, "payload")
            if (subject, etype) in wanted and payload
        }

    def _select(
        self, system: str, keys: Sequence[tuple[str, str]], payload_column: str
    ) -> list[tuple[str, str, str, str]]:
        rows: list[tuple[str, str, str, str]] = []
        with self._lock:
            for i in range(0, len(keys), 400):
                chunk = keys[i : i + 400]
                subjects = sorted({s for s, _ in chunk})
                marks = ",".join("?" * len(subjects))
                rows.extend(
                    self._conn.execute(
                        f"SELECT subject, event_type, content_hash, {payload_column} FROM snapshot_state"  # nosec B608: column lists are our constants; values are bound
                        f" WHERE system = ? AND subject IN ({marks})",
                        (system, *subjects),
                    )
                )
        return rows

    async def commit(self, result: DiffResult) -> None:
        def write() -> None:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT INTO snapshot_state (system, subject, event_type, content_hash, payload)"
                    " VALUES (?,?,?,?,?) ON CONFLICT (system, subject, event_type) DO UPDATE SET"
                    " content_hash=excluded.content_hash, payload=excluded.payload",
                    result.state,
                )
                self._conn.executemany(
                    "INSERT INTO noted_state (system, event_id, content_hash, payload) VALUES (?,?,?,?)"
                    " ON CONFLICT (system, event_id) DO UPDATE SET"
                    " content_hash=excluded.content_hash, payload=excluded.payload",
                    result.noted,
                )
                self._conn.execute("COMMIT")

        if result.state or result.noted:
            await asyncio.to_thread(write)
