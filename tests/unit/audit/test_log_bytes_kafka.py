"""The ledger covers the log on the Kafka bus (the suite's Tansu broker, tests/fixtures/kafka.py).

A Kafka record cannot be edited in place: no protocol request rewrites a stored record, and this
broker keeps its log in memory, out of reach of a file edit. So the Kafka half shows the two
things an outsider *can* do to a Kafka log, and that verify reads the whole log on this broker:

- every record is read and compared byte for byte, although Tansu reports a high watermark below
  the last record (TEST-BROKER.md): the read goes on to the last produced offset;
- a record produced outside the hub that re-uses an applied event id with other content (the
  ledger skips it as a re-publication; a reader that does not skip repeats would show it) is
  found, at its offset.

The ledger is filled through the tracking layer from a manually assigned read, as a runner
would apply it, to keep consumer-group joins (5 to 17 s each on Tansu) out of the suite.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from hub.bus import KafkaBus
from hub.ports import OutRecord, event_out_record
from projections.audit.ledger import AuditLedger
from projections.audit.seals import seal_key
from replay.audit.chain import Tamper
from replay.audit.log import check_log
from replay.audit.verify import verify
from replay.reader import LogReader
from tests.unit.audit.ledger_helpers import fill, longest_chain, rows, stream
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS, topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy import Engine

    from hub.ports import BusRecord

KEY = seal_key(b"kafka test secret")
pytestmark = pytest.mark.kafka


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[tuple[KafkaBus, str]]:
    prefix = f"a{uuid.uuid4().hex[:8]}."
    b = KafkaBus(kafka_bootstrap, client_id="audit-test")
    await b.start()
    await b.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS], prefix)
    yield b, prefix
    await b.close()


async def _read_all(bus: KafkaBus, prefix: str) -> list[BusRecord]:
    topics = [f"{prefix}{name}" for name in AuditLedger.topics]
    out: list[BusRecord] = []
    async with LogReader(bus, topics, settle_s=3.0) as reader:
        async for batch in reader.read(await reader.last_offsets(), settle=True):
            out += batch
    return out


async def test_kafka_log_is_checked_to_its_last_record_and_a_foreign_record_is_found(
    bus: tuple[KafkaBus, str], sqlite_engine: Engine
) -> None:
    kafka, prefix = bus
    for event in stream(30):
        await kafka.publish(prefix + topic_for_event_type(event.type).name, [event_out_record(event)])
    ledger = AuditLedger(seal_key=KEY)
    fill(sqlite_engine, await _read_all(kafka, prefix), ledger=ledger)

    checked = await check_log(sqlite_engine, kafka, prefix=prefix, seal_key=KEY)
    assert (checked.records, checked.findings) == (30, [])  # keys, headers and timestamps came back intact

    chain = longest_chain(sqlite_engine)
    entry = rows(sqlite_engine, chain)[1]
    doc = json.loads(entry["entry_bytes"])
    doc["occurred_at"] = "1999-01-01T00:00:00Z"
    ((partition, offset),) = await kafka.publish(
        prefix + chain[0], [OutRecord(doc["subject"], json.dumps(doc).encode())]
    )
    assert partition == chain[1]
    fill(sqlite_engine, await _read_all(kafka, prefix), ledger=ledger)  # skipped: a repeated event id
    assert verify(sqlite_engine, seal_key=KEY).intact  # the ledger itself is consistent

    (finding,) = (await check_log(sqlite_engine, kafka, prefix=prefix, seal_key=KEY)).findings
    assert (finding.kind, finding.topic, finding.partition, finding.offset, finding.event_id) == (
        Tamper.INSERTED,
        *chain,
        offset,
        entry["event_id"],
    )
    assert "occurred_at" in finding.detail
