"""Alerts on PostgreSQL: the archive probe reads HUB_ARCHIVE_URL's table, the alert book keeps one
open alert per id there (a second node's raise conflicts), and a clear frees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.delivery.alerts import Alert, AlertBook, ArchiveProbe
from hub.ingest.pgarchive import PostgresRawArchive
from hub.ports import InboundMessage
from projections.runtime.db import make_engine

pytestmark = pytest.mark.postgres

ACK = b"\x0bMSH|^~\\&|HUB|XXRMYY|HIS|XXRMYY|20240612||ACK|{id}|P|2.5\rMSA|{code}|{id}\r\x1c\r"
AT = datetime(2024, 6, 12, 1, 0, tzinfo=UTC)


def message(n: int, transport: str) -> InboundMessage:
    return InboundMessage(
        system="his",
        payload=f"MSH|^~\\&|HIS|XXRMYY|HUB|XXRMYY|20240612||ADT^A08|M{n}|P|2.5\r".encode(),
        transport=transport,
        message_id=f"M{n}",
        site="main",
        received_at=AT + timedelta(minutes=n),
    )


async def test_probe_reads_last_received_and_answers_from_the_postgres_archive(pg_url: str) -> None:
    """Last message per transport, and the AE/AR share of a window's MLLP answers."""
    archive = PostgresRawArchive(pg_url)
    probe = ArchiveProbe.postgres(pg_url)
    try:
        for n, code in ((1, "AA"), (2, "AE"), (3, "AA")):
            await archive.store(message(n, "mllp"), answer=ACK.replace(b"{code}", code.encode()))
        await archive.store(message(9, "file"))
        assert probe.last_received("his", "mllp") == AT + timedelta(minutes=3)
        assert probe.last_received("his", None) == AT + timedelta(minutes=9)
        assert probe.last_received("spd", None) is None
        assert probe.answers("his", AT) == (1, 3)
        assert probe.answers("his", AT + timedelta(minutes=2, seconds=30)) == (0, 1)
    finally:
        probe.close()
        archive.close()


def test_one_open_alert_per_id_on_postgres(pg_url: str) -> None:
    """A second raise of an open alert is refused; once cleared, it can be raised again."""
    engine = make_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    book = AlertBook(engine)

    def alert(at: datetime) -> Alert:
        return Alert(
            id=f"a-{at.timestamp():.0f}", alert_id="disk", rule="disk", kind="disk_free", severity="critical",
            title="磁盘空间不足", text="500 MB", target=None, value=500.0, threshold=1024.0, raised_at=at,
            cleared_at=None, cleared_text=None, cleared_value=None, raised_sent=False, cleared_sent=False,
        )  # fmt: skip

    try:
        assert book.raise_alert(alert(AT))
        assert not book.raise_alert(alert(AT + timedelta(minutes=1)))
        cleared = book.clear_alert("disk", AT + timedelta(minutes=5), "2000 MB", 2000.0)
        assert cleared is not None
        assert cleared.cleared_at == AT + timedelta(minutes=5)
        assert book.clear_alert("disk", AT + timedelta(minutes=6), "x", None) is None
        assert book.raise_alert(alert(AT + timedelta(minutes=10)))
        page, total = book.list(open_only=False)
        assert total == 2
        assert [a.open for a in page] == [True, False]
    finally:
        engine.dispose()
