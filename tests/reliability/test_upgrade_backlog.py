"""Upgrade with a backlog: the old hub stops (killed) with raw messages untranslated, raw offsets
uncommitted and old-version events on the log not yet projected; the new hub, whose readers upcast
those events, processes everything once and ends where a hub that only ever saw the new version ends.

The "old version" is `asset.relocated` v1 (flat department strings), which the catalogue upcasts to
v2; the test writes the v1 records to the log itself, as the old hub had, while no hub runs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from hub.bus import EmbeddedBus
from hub.ports import OutRecord
from schemas.catalogue import dump_event, parse_event
from tests.reliability.harness import Hub, his_messages, table_digests
from tests.reliability.workload import Sent, send_all
from tests.unit.schemas.examples import example_event

pytestmark = [pytest.mark.slow, pytest.mark.soak]

ASSETS = "canonical.asset.v1"
PAYLOADS = his_messages(24, tag="V")


def relocations_v1(count: int) -> list[dict[str, object]]:
    """What the old hub wrote: v1 `asset.relocated`, departments as bare names."""
    base = json.loads(dump_event(example_event("asset.relocated")))
    out = []
    for i in range(count):
        event = dict(base)
        event.update(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"upgrade-{i}")),
            subject=f"VENT-{i % 16:04d}",
            schema_version=1,
            payload={
                "to_department": ("重症医学科", "心内科", "手术室")[i % 3],
                "location": f"{i % 5 + 1}F-{i:03d}",
                "from_department": "设备科",
                "reason": "调拨",
                "document_no": f"DB-{i:04d}",
            },
        )
        out.append(event)
    return out


def write_to_log(data_dir: Path, events: list[bytes], subjects: list[str]) -> None:
    async def go() -> None:
        bus = EmbeddedBus(data_dir / "bus.db")
        await bus.start()
        try:
            await bus.publish(
                ASSETS, [OutRecord(key=k, value=v) for k, v in zip(subjects, events, strict=True)]
            )
        finally:
            await bus.close()

    asyncio.run(go())


def finish(hub: Hub, sent: Sent, extra_raw: int = 0) -> None:
    for _ in range(3):  # bounded resends of what the kill left unanswered
        missing = sent.unanswered(len(PAYLOADS))
        if not missing:
            break
        send_all(hub, PAYLOADS, missing, sent)
    assert sent.unanswered(len(PAYLOADS)) == []
    hub.wait_drained(len(PAYLOADS) + extra_raw)


def test_old_events_and_an_unprocessed_backlog_are_processed_once_after_the_upgrade(tmp_path: Path) -> None:
    old = relocations_v1(12)
    subjects = [str(e["subject"]) for e in old]

    clean = Hub(tmp_path / "clean")
    try:
        clean.start()
        sent = Sent()
        send_all(clean, PAYLOADS, range(len(PAYLOADS)), sent)
        finish(clean, sent)
        # A hub that only ever knew v2: the same facts, written at the new version.
        write_to_log(clean.data_dir, [dump_event(parse_event(e)) for e in old], subjects)
        clean.wait_drained(len(PAYLOADS))
    finally:
        clean.stop()

    hub = Hub(tmp_path / "upgraded")
    try:
        # The old hub: stored the messages, translated a few, committed no raw offset, died.
        hub.start(faults="translator.translate:kill:5")  # mid-batch: 4 translated, none committed
        sent = Sent()
        send_all(hub, PAYLOADS, range(len(PAYLOADS)), sent)
        assert hub.wait_exit(60), "the old hub was never killed: the test would prove nothing"
        assert hub.raw_counts().get("pending", 0) > 0  # a backlog the new hub must translate
        write_to_log(hub.data_dir, [json.dumps(e, ensure_ascii=False).encode() for e in old], subjects)
        hub.start()  # the new hub
        finish(hub, sent)
        assert hub.applied_twice() == 0
        assert table_digests(hub.data_dir / "readmodels.db") == table_digests(
            clean.data_dir / "readmodels.db"
        )
    finally:
        hub.stop()
