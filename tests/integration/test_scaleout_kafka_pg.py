"""Two `hub serve` nodes on Kafka + PostgreSQL, nothing node-local: one is killed mid-import, the other finishes it.

Each node has its own data dir; they share only the broker (HUB_BUS=kafka, the test broker) and
one PostgreSQL database, for the read models (HUB_DB_URL) and the raw side (HUB_ARCHIVE_URL:
archive, outbox, translation status, dead letters). A ledger dropped into node A's inbox is
archived in PostgreSQL, relayed to the raw topic and translated and projected by whichever node
holds the partitions. A is SIGKILLed once the first assets are visible; B takes A's partitions
over and the import completes: every asset once, the message translated once in the books,
nothing pending, no dead letter; the registry holds exactly the asset ids a clean one-process
ingest of the same file gives.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Served, run_hub
from tests.e2e.ledger import write_ledger
from tests.e2e.test_serve_crash import total_assets

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

ROWS = 6_000
FINISH_S = 300  # B waits out A's session timeout, then rejoins every group (slow on the test broker)


def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def _asset_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # Sorted here: PostgreSQL's collation and SQLite's byte order may differ.
            return sorted(str(r[0]) for r in conn.execute(text("SELECT asset_id FROM asset_registry_assets")))
    finally:
        engine.dispose()


def test_a_node_killed_mid_import_is_finished_by_the_other(
    tmp_path: Path, kafka_bootstrap: str, pg_url: str
) -> None:
    ledger = tmp_path / "固定资产台账_两节点.csv"
    write_ledger(ledger, ROWS)
    env = {
        "HUB_BUS": "kafka",
        "HUB_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HUB_TOPIC_PREFIX": f"scale{uuid.uuid4().hex[:8]}",  # the broker lives for the whole session
        "HUB_DB_URL": pg_url,
        "HUB_ARCHIVE_URL": pg_url,
    }
    a = Served(tmp_path / "node-a", **env)
    b = Served(tmp_path / "node-b", **env)
    try:
        a.start()  # one after the other: the first creates the shared tables
        b.start()
        inbox = a.data_dir / "inbox" / "hrp"
        part = inbox / (ledger.name + ".part")
        part.write_bytes(ledger.read_bytes())
        part.rename(inbox / ledger.name)

        deadline = time.monotonic() + FINISH_S
        seen = 0
        while time.monotonic() < deadline:
            seen = total_assets(b.url)  # B's API reads the shared read models
            if seen > 0:
                break
            time.sleep(0.05)
        a.kill()  # SIGKILL: no cleanup, nothing flushed, its leases and partitions left behind
        assert 0 < seen < ROWS, f"{seen} assets visible at the kill; the test would prove nothing"

        deadline = time.monotonic() + FINISH_S
        while time.monotonic() < deadline and total_assets(b.url) != ROWS:
            time.sleep(0.5)
        assert total_assets(b.url) == ROWS, b.log.read_text()[-3000:]
        assert b.proc is not None
        assert b.proc.poll() is None, "node B died"
    finally:
        a.kill()
        b.stop()

    # Nothing lost or doubled, in the shared books.
    assert _scalar(pg_url, "SELECT count(*) FROM hub_raw_messages") == 1
    assert _scalar(pg_url, "SELECT status FROM hub_raw_messages") == "translated"
    assert _scalar(pg_url, "SELECT count(*) FROM hub_raw_messages WHERE NOT published") == 0
    assert _scalar(pg_url, "SELECT count(*) FROM hub_dead_letters") == 0
    assert _scalar(pg_url, "SELECT count(*) FROM asset_registry_assets") == ROWS
    # Neither node kept the raw side in its data dir.
    for node in (a, b):
        assert not (node.data_dir / "blobs").exists()

    clean_dir = tmp_path / "clean"
    result = run_hub("ingest", "hrp", str(ledger), "--wait", data_dir=clean_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _asset_ids(pg_url) == _asset_ids(f"sqlite:///{clean_dir / 'readmodels.db'}")
