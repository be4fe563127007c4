"""`hub serve` killed with SIGKILL mid-way through a large export ends, after restart, where one clean ingest ends."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TIME_COLUMNS, Served, run_hub
from tests.e2e.ledger import write_ledger

ROWS = 4_000
CHUNK_ROWS = 400  # ten chunks: the kill lands after the first is visible, well before the last


def registry_digest(db: Path) -> tuple[int, str]:
    """Count and hash of the asset registry, ignoring columns that hold the hub's own receive time."""
    conn = sqlite3.connect(db)
    cols = [
        r[1] for r in conn.execute("PRAGMA table_info(asset_registry_assets)") if r[1] not in TIME_COLUMNS
    ]
    rows = conn.execute(f"SELECT {', '.join(cols)} FROM asset_registry_assets ORDER BY asset_id").fetchall()
    idents = conn.execute(
        "SELECT scheme, value, asset_id FROM asset_registry_identifiers ORDER BY 1, 2"
    ).fetchall()
    conn.close()
    return len(rows), hashlib.sha256(repr((rows, idents)).encode()).hexdigest()


def total_assets(url: str) -> int:
    try:
        return int(httpx.get(f"{url}/assets", params={"limit": 1}, timeout=2).json()["total"])
    except (httpx.HTTPError, KeyError, ValueError):
        return -1


@pytest.mark.slow
def test_sigkill_mid_export_then_restart_equals_clean_ingest(tmp_path: Path, served: Served) -> None:
    """Whatever stage the kill interrupts, the restarted hub converges to the clean single-ingest registry."""
    ledger = tmp_path / "固定资产台账_大.csv"
    write_ledger(ledger, ROWS)

    served.env["HUB_FILE_CHUNK_ROWS"] = str(CHUNK_ROWS)  # the clean ingest keeps the default chunks
    served.start()
    inbox = served.data_dir / "inbox" / "hrp"
    part = inbox / (ledger.name + ".part")
    part.write_bytes(ledger.read_bytes())
    part.rename(inbox / ledger.name)  # appear atomically, as a well-behaved sender does

    deadline = time.monotonic() + 120
    seen = 0
    while time.monotonic() < deadline:
        seen = total_assets(served.url)
        if seen > 0:
            break
        time.sleep(0.05)
    served.kill()  # SIGKILL: no cleanup, no flush
    assert seen < ROWS, "the export finished before the kill; the test would prove nothing"

    served.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (inbox / "processed" / ledger.name).exists() and total_assets(served.url) == ROWS:
            break
        time.sleep(0.5)
    served.stop()
    assert (inbox / "processed" / ledger.name).exists()

    clean_dir = tmp_path / "clean"
    result = run_hub("ingest", "hrp", "--wait", str(ledger), data_dir=clean_dir)
    assert result.returncode == 0, result.stdout + result.stderr

    crashed = registry_digest(served.data_dir / "readmodels.db")
    clean = registry_digest(clean_dir / "readmodels.db")
    assert crashed[0] == ROWS
    assert crashed == clean
