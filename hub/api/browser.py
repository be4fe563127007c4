"""The message browser's service (GET /messages): the raw archive's metadata, with what each
message became (events, ACK, dead letters, ledger positions) from the other stores.

Department scope: a scoped key sees only the raw messages that are its department's alone
(projections.raw_scope), exactly as /raw and /dlq decide it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from adapters._files.encoding import decode_export
from adapters.his.decode import decode as decode_hl7
from projections.audit.ledger import entries
from projections.raw_scope.projection import events_of, refs_of_department
from projections.runtime.upsert import chunks, in_values

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.ports import MessageStatus, RawArchive, RawQuery, RawRecord, RawSummary
    from hub.translation.deadletters import DeadLetter
    from hub.translation.retry import HubDeadLetters


MAX_LINES = 5_000  # of an export file shown as text: the bytes themselves are at /raw


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """A payload as text: the codec the hub reads it with, and its segments (HL7) or lines (files)."""

    charset: str
    lines: list[str]
    truncated: bool


Encodings = Callable[[str], "str | None"]
"""system -> the encoding its current mapping forces (None: the adapter's own detection)."""


def decode_message(system: str, payload: bytes, filename: str | None, forced: str | None) -> DecodedMessage:
    """Decode as the hub's translators do: HL7 by channel setting, BOM, MSH-18, UTF-8, GB18030;
    exports by the file rules (BOM, UTF-16, UTF-8, GB18030). Raises MalformedMessage."""
    if system == "his":  # HL7 whatever the transport (MLLP, a batch file)
        decoded = decode_hl7(payload, forced)
        text, charset = decoded.text, decoded.encoding
        lines = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]
    else:
        export = decode_export(payload, filename=filename or "message", encoding=forced or "auto")
        text, charset = export.text, export.encoding
        lines = text.splitlines()
    return DecodedMessage(charset, lines[:MAX_LINES], len(lines) > MAX_LINES)


class MessageBrowser:
    """Finds archived messages and gathers one message's trail (see the module docstring)."""

    def __init__(
        self,
        archive: RawArchive,
        engine: Engine,
        dead_letters: HubDeadLetters,
        encodings: Encodings = lambda _system: None,
    ) -> None:
        self._archive = archive
        self._engine = engine
        self._dead_letters = dead_letters
        self._encodings = encodings

    async def text(self, record: RawRecord) -> DecodedMessage:
        """The payload of `record` decoded as its system's translator reads it (patient data:
        the route checks the raw_payload permission and records the read first)."""
        payload = await self._archive.payload(record.raw_ref)
        filename = record.metadata.get("filename")
        forced = self._encodings(record.system)
        return await asyncio.to_thread(decode_message, record.system, payload, filename, forced)

    async def department_refs(self, department: str) -> list[str]:
        """Every raw reference that is `department`'s alone (what a scoped key may browse)."""

        def read() -> list[str]:
            with self._engine.connect() as conn:
                return refs_of_department(conn, department)

        return await asyncio.to_thread(read)

    async def browse(self, query: RawQuery) -> tuple[list[RawSummary], int]:
        return await self._archive.browse(query)

    async def record(self, raw_ref: str) -> RawRecord | None:
        return await self._archive.lookup(raw_ref)

    async def status(self, raw_ref: str) -> MessageStatus | None:
        return await self._archive.status(raw_ref)

    async def answer(self, raw_ref: str) -> bytes | None:
        return await self._archive.answer(raw_ref)

    async def dead_letters(self, raw_ref: str) -> list[DeadLetter]:
        return await self._dead_letters.of_message(raw_ref)

    async def events(self, raw_ref: str) -> list[dict[str, Any]]:
        """The events `raw_ref` became, each with its audit-ledger position (None until recorded)."""

        def read() -> list[dict[str, Any]]:
            with self._engine.connect() as conn:
                became = events_of(conn, raw_ref)
                ids = [e["event_id"] for e in became]
                e = entries.c
                where: dict[str, dict[str, Any]] = {}
                for chunk in chunks(conn, ids):
                    rows = conn.execute(
                        select(e.event_id, e.topic, e.partition, e.seq, e.offset, e.entry_hash).where(
                            in_values(conn, e.event_id, chunk)
                        )
                    )
                    for event_id, topic, partition, seq, offset, entry_hash in rows:
                        where[event_id] = {
                            "topic": topic,
                            "partition": partition,
                            "seq": seq,
                            "offset": offset,
                            "entry_hash": entry_hash,
                        }
            return [{**ev, "ledger": where.get(ev["event_id"])} for ev in became]

        return await asyncio.to_thread(read)
