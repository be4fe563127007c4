"""What the alert rules measure. The raw archive's metadata is read here with its own queries:
when each system/transport last received a message, and the MLLP answers (AA/AE/AR) of a window.

Read-only, on a connection of its own (SQLite: the archive file, WAL lets it read beside the
writer; PostgreSQL: HUB_ARCHIVE_URL). Both use the (system, seq) index newest first and stop at
the first match, and the received_at index for a window: cheap at millions of messages.
The other measures (dead letters open, projection lag, free disk) are handed in by the
composition root as functions, so this package needs none of their owners.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from projections.runtime.db import make_engine

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from sqlalchemy import Engine

ANSWERS_SCANNED = 10_000  # at most this many answers of one window are read
ERROR_CODES = frozenset({"AE", "AR", "CE", "CR"})


class ArchiveProbe:
    """Last message per system/transport and the MLLP answers of a window, from the raw archive."""

    def __init__(self, engine: Engine, table: str) -> None:
        if table not in ("raw_messages", "hub_raw_messages"):
            raise ValueError(f"not a raw archive table: {table}")
        self._engine = engine
        self._table = table
        self._iso = engine.dialect.name == "sqlite"  # SQLite keeps received_at as ISO text (UTC)

    @classmethod
    def sqlite(cls, path: Path) -> ArchiveProbe:
        return cls(make_engine(f"sqlite:///{path.resolve()}"), "raw_messages")

    @classmethod
    def postgres(cls, url: str) -> ArchiveProbe:
        return cls(make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)), "hub_raw_messages")

    def close(self) -> None:
        self._engine.dispose()

    def last_received(self, system: str, transport: str | None) -> datetime | None:
        """When `system` (by `transport`, or any) last had a message archived; None: never."""
        where = "system = :system" + (" AND transport = :transport" if transport else "")
        sql = f"SELECT received_at FROM {self._table} WHERE {where} ORDER BY seq DESC LIMIT 1"  # nosec B608: table from a fixed pair, values bound
        with self._engine.connect() as conn:
            value = conn.execute(text(sql), {"system": system, "transport": transport}).scalar()
        return None if value is None else _aware(value)

    def answers(self, system: str, since: datetime) -> tuple[int, int]:
        """(AE/AR answers, answers) among `system`'s MLLP messages received since `since`."""
        sql = (
            f"SELECT answer FROM {self._table} WHERE received_at >= :since AND system = :system"  # nosec B608
            " AND transport = 'mllp' AND answer IS NOT NULL LIMIT :limit"
        )
        bound = since.astimezone(UTC).isoformat() if self._iso else since
        with self._engine.connect() as conn:
            rows = conn.execute(text(sql), {"since": bound, "system": system, "limit": ANSWERS_SCANNED}).all()
        codes = [ack_code(bytes(r[0])) for r in rows]
        known = [c for c in codes if c is not None]
        return sum(c in ERROR_CODES for c in known), len(known)


def ack_code(answer: bytes) -> str | None:
    """MSA-1 of an HL7 ACK (AA, AE, AR, CA, CE, CR), or None when the answer is not one."""
    body = answer.strip(b"\x0b\x1c\r\n")
    if not body.startswith(b"MSH") or len(body) < 4:
        return None
    sep = body[3:4]
    for segment in body.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA" + sep):
            code = segment.split(sep)[1].decode("ascii", "replace").strip().upper()
            return code or None
    return None


def _aware(value: datetime | str) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def disk_free_mb(path: Path) -> int:
    return shutil.disk_usage(path).free // (1024 * 1024)


@dataclass(frozen=True)
class Probes:
    """Every measure the rules use; async callables so each may hit its own store."""

    last_received: Callable[[str, str | None], Awaitable[datetime | None]]
    ack_answers: Callable[[str, datetime], Awaitable[tuple[int, int]]]
    open_dead_letters: Callable[[], Awaitable[int]]
    lag: Callable[[], Awaitable[int]]
    disk_free_mb: Callable[[], Awaitable[int]]
    close: Callable[[], None] = lambda: None
