"""The message browser's service (GET /messages): the raw archive's metadata, with what each
message became (events, ACK, dead letters, ledger positions) from the other stores.

Department scope: a scoped key sees only the raw messages that are its department's alone
(projections.raw_scope), exactly as /raw and /dlq decide it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from projections.audit.ledger import entries
from projections.raw_scope.projection import events_of, refs_of_department
from projections.runtime.upsert import chunks, in_values

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.ports import MessageStatus, RawArchive, RawQuery, RawRecord, RawSummary
    from hub.translation.deadletters import DeadLetter
    from hub.translation.retry import HubDeadLetters


class MessageBrowser:
    """Finds archived messages and gathers one message's trail (see the module docstring)."""

    def __init__(self, archive: RawArchive, engine: Engine, dead_letters: HubDeadLetters) -> None:
        self._archive = archive
        self._engine = engine
        self._dead_letters = dead_letters

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
