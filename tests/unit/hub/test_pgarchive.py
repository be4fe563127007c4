"""The PostgreSQL raw archive as several nodes share it (the port's contract: tests/contract).

What only a shared archive must do: two nodes' relays never publish one backlog twice, and a
dead node's leased batch goes to another once its lease ends; a payload too large for the raw
topic is readable by every node; one message sent to two nodes at once is stored once. And the
hub uses it, with the dead letters and the snapshot state beside it, when HUB_ARCHIVE_URL is set: a
ledger re-exported to another node is diffed against what the first node saw.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from hub.bootstrap import build_hub
from hub.errors import ConfigError
from hub.ingest.pgarchive import PostgresRawArchive
from hub.ingest.source_keys import hl7_keys
from hub.pipeline import ingest_path
from hub.ports import InboundMessage, StoreOutcome
from hub.settings import Settings
from hub.translation.deadletters import PostgresDeadLetterStore
from hub.translation.snapshot_state import PostgresSnapshotStore
from schemas.records import INLINE_PAYLOAD_LIMIT
from tests.e2e.ledger import write_ledger

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hub.bootstrap import Hub

pytestmark = pytest.mark.postgres

ADT = "MSH|^~\\&|HIS|H1|HUB|H1|20240601||ADT^A01|M{n}|P|2.5\rPID|1||MR{n}\r"


def msg(payload: bytes, *, system: str = "his", message_id: str = "M1") -> InboundMessage:
    return InboundMessage(
        system=system, payload=payload, transport="mllp", message_id=message_id, site="main"
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def nodes(pg_url: str) -> Iterator[tuple[PostgresRawArchive, PostgresRawArchive, Clock]]:
    """Two nodes' archives on one database; the second's clock can be moved on."""
    clock = Clock()
    a, b = PostgresRawArchive(pg_url), PostgresRawArchive(pg_url, clock=clock)
    yield a, b, clock
    a.close()
    b.close()


async def test_two_relays_split_the_backlog_and_take_over_a_dead_ones(
    nodes: tuple[PostgresRawArchive, PostgresRawArchive, Clock],
) -> None:
    a, b, clock = nodes
    refs = [(await a.store(msg(ADT.format(n=i).encode()))).record.raw_ref for i in range(6)]
    leased = [r.raw_ref for r, _ in await a.unpublished(limit=4)]
    assert leased == refs[:4]
    # Node b's relay skips what a is publishing, and gets the rest.
    assert [r.raw_ref for r, _ in await b.unpublished()] == refs[4:]
    await b.mark_published(refs[4:])
    assert await b.unpublished() == []
    # Node a dies before marking its batch published: once the lease is over, b publishes it.
    clock.now += timedelta(minutes=5)
    assert [r.raw_ref for r, _ in await b.unpublished()] == refs[:4]
    await b.mark_published(refs[:4])
    assert await a.unpublished() == []


async def test_a_payload_too_large_for_the_raw_topic_is_read_by_every_node(
    nodes: tuple[PostgresRawArchive, PostgresRawArchive, Clock],
) -> None:
    a, b, _ = nodes
    big = b"Z" * (INLINE_PAYLOAD_LIMIT * 4 + 1)
    ref = (await a.store(msg(big, system="hrp"))).record.raw_ref
    assert await b.payload(ref) == big
    await b.set_status(
        ref, status="translated", events=3, failures=0, skipped=0, units=3, mapping_version="m1"
    )
    status = await a.status(ref)
    assert status is not None
    assert (status.status, status.events) == ("translated", 3)


async def test_one_message_sent_to_two_nodes_at_once_is_stored_once(
    nodes: tuple[PostgresRawArchive, PostgresRawArchive, Clock],
) -> None:
    """The same HL7 message (CRLF to one node, CR to the other): one record, the other a resend."""
    a, b, _ = nodes
    outcomes: list[StoreOutcome] = []
    for i in range(20):
        cr = ADT.format(n=i).encode()
        crlf = cr.replace(b"\r", b"\r\n")
        outcomes += await asyncio.gather(
            a.store(msg(cr), keys=hl7_keys(cr)), b.store(msg(crlf), keys=hl7_keys(crlf))
        )
    assert sum(o.duplicate for o in outcomes) == 20
    assert len({o.record.raw_ref for o in outcomes}) == 20
    recon = (await a.reconciliation())["his"]
    assert (recon["received"], recon["resends"]) == (20, 20)


async def test_the_hub_keeps_its_raw_side_in_postgres_when_told(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub", archive_url=pg_url)
    async with build_hub(settings) as hub:
        assert isinstance(hub.archive, PostgresRawArchive)
        assert isinstance(hub.dead_letters, PostgresDeadLetterStore)
        await hub.archive.store(msg(ADT.format(n=1).encode()))
        assert isinstance(hub.differ.store, PostgresSnapshotStore)
        assert (await hub.archive.reconciliation())["his"]["received"] == 1
    # Nothing of the raw side, dead letters or snapshot state in the data dir: no archive file at all.
    assert not (tmp_path / "hub" / "archive.db").exists()


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://h/db"])
def test_an_archive_url_that_is_not_postgres_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="HUB_ARCHIVE_URL"):
        Settings(archive_url=url)


@pytest.mark.slow
async def test_an_export_too_large_for_the_raw_topic_is_translated_from_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    """The hub's own path: stored, relayed without its bytes, fetched back by the translator."""
    ledger = tmp_path / "固定资产台账.csv"
    write_ledger(ledger, 2_400)
    assert ledger.stat().st_size > INLINE_PAYLOAD_LIMIT
    async with build_hub(Settings(data_dir=tmp_path / "hub", archive_url=pg_url)) as hub:
        outcome = await ingest_path(hub, "hrp", ledger)
        [(record, inline)] = await hub.archive.unpublished()
        assert (record.raw_ref, inline) == (outcome.record.raw_ref, None)
        assert await hub.relay.drain() == 1
        assert await hub.worker("hrp").run_until_idle() == 1
        status = await hub.archive.status(outcome.record.raw_ref)
    assert status is not None
    assert (status.status, status.failures, status.units) == ("translated", 0, 2_400)
    assert status.events >= 2_400


async def _asset_events(hub: Hub) -> list[dict[str, Any]]:
    """Every event this node's bus carries on canonical.asset.v1."""
    topic = f"{hub.settings.topic_prefix}canonical.asset.v1"
    consumer = await hub.bus.consumer([topic], group=None, from_beginning=True)
    out: list[dict[str, Any]] = []
    try:
        while records := await consumer.poll(max_records=1000, timeout_s=0.5):
            out += [json.loads(r.value) for r in records]
    finally:
        await consumer.close()
    return out


async def test_a_ledger_re_exported_to_another_node_is_diffed_against_the_first(
    pg_url: str, tmp_path: Path
) -> None:
    """Node A imports the ledger; node B, with its own data dir and bus, gets the re-export with one
    row changed and publishes that row's correction alone: the snapshot state is in PostgreSQL."""
    ledger, again = tmp_path / "固定资产台账.csv", tmp_path / "固定资产台账-0701.csv"
    write_ledger(ledger, 30)
    lines = ledger.read_bytes().decode("gbk").split("\r\n")
    row = lines[2 + 5].split(",")  # ZC-0000005, after the title and header lines
    row[5] = "新生儿科" if row[5] != "新生儿科" else "儿科"  # 使用科室
    lines[2 + 5] = ",".join(row)
    again.write_bytes("\r\n".join(lines).encode("gbk"))
    published: dict[str, list[dict[str, Any]]] = {}
    for node, path in (("a", ledger), ("b", again)):
        async with build_hub(Settings(data_dir=tmp_path / node, archive_url=pg_url)) as hub:
            await ingest_path(hub, "hrp", path)
            assert await hub.relay.drain() == 1
            assert await hub.worker("hrp").run_until_idle() == 1
            published[node] = await _asset_events(hub)
    assert Counter(e["type"] for e in published["a"])["asset.registered"] == 30
    assert [e["type"] for e in published["b"]] == ["asset.details_corrected"]
    assert published["b"][0]["payload"]["changed_fields"] == ["department"]
