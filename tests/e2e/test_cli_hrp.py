"""The HRP walking skeleton as an integrator drives it: `hub ingest`, `mapping check`, `dlq`, `status`."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from hub.bus.embedded import EmbeddedBus
from tests.e2e.conftest import REPO, run_hub
from tests.e2e.test_serve_crash import registry_digest

SAMPLES = REPO / "examples" / "hrp"
LEDGER = SAMPLES / "固定资产台账_2024.csv"
UPDATED = SAMPLES / "固定资产台账_2024_更新.csv"

pytestmark = pytest.mark.slow


def canonical_asset_events(data_dir: Path) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        bus = EmbeddedBus(data_dir / "bus.db")
        await bus.start()
        consumer = await bus.consumer(["canonical.asset.v1"], group=None)
        out: list[dict[str, object]] = []
        while batch := await consumer.poll(max_records=5000, timeout_s=0.2):
            out += [json.loads(r.value) for r in batch]
        await consumer.close()
        await bus.close()
        return out

    return asyncio.run(read())


def open_dead_letters(data_dir: Path, kind: str = "failure") -> list[tuple[str, str, str]]:
    """Open dead letters: failures (rows not applied), or `kind="note"` (rows kept, a department unknown)."""
    conn = sqlite3.connect(data_dir / "archive.db")
    rows = conn.execute(
        "SELECT position, code, location FROM dead_letters WHERE status='open' AND kind=? ORDER BY position",
        (kind,),
    ).fetchall()
    conn.close()
    return rows


def assets_in(data_dir: Path) -> int:
    """Rows in the asset registry; 0 while its table does not exist yet."""
    conn = sqlite3.connect(data_dir / "readmodels.db")
    try:
        return int(conn.execute("SELECT count(*) FROM asset_registry_assets").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


class TestIngest:
    def test_returns_once_the_events_are_on_the_bus_and_wait_waits_for_the_read_models(
        self, tmp_path: Path
    ) -> None:
        """Without --wait: the events are in the log, the registry not applied yet, and it says so;
        with --wait (here a resend, nothing new to translate) the registry shows every asset."""
        data = tmp_path / "hub"
        first = run_hub("ingest", "hrp", str(LEDGER), data_dir=data)
        assert first.returncode == 1, first.stderr
        assert "524 event(s) from 1 file(s) are on the bus" in first.stdout
        assert "--wait" in first.stdout
        assert "531/531 rows" in first.stderr  # the progress bar, finished
        assert len(canonical_asset_events(data)) == 524
        assert assets_in(data) == 0
        waited = run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        assert waited.returncode == 1, waited.stderr
        assert "The read models show them." in waited.stdout
        assert registry_digest(data / "readmodels.db")[0] == 524

    def test_same_export_twice_changes_nothing(self, tmp_path: Path) -> None:
        """A re-dropped export is recognised: same registry, no new events on the log."""
        data = tmp_path / "hub"
        first = run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        assert first.returncode == 1, first.stderr  # stored; six rows dead-lettered
        digest, events = registry_digest(data / "readmodels.db"), len(canonical_asset_events(data))
        second = run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        assert second.returncode == 1, second.stderr
        assert registry_digest(data / "readmodels.db") == digest
        assert len(canonical_asset_events(data)) == events == 524
        assert digest[0] == 524

    def test_changed_rows_yield_exactly_one_correction_each(self, tmp_path: Path) -> None:
        """A re-export with three changed rows publishes three details_corrected, one per changed asset."""
        data = tmp_path / "hub"
        run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        result = run_hub("ingest", "hrp", "--wait", str(UPDATED), data_dir=data)
        assert result.returncode == 1, result.stderr  # the re-export repeats the six bad rows
        events = canonical_asset_events(data)
        corrections = [e for e in events if e["type"] == "asset.details_corrected"]
        assert len(corrections) == 3
        assert len({c["subject"] for c in corrections}) == 3
        changed = sorted(tuple(c["payload"]["changed_fields"]) for c in corrections)  # type: ignore[index]
        assert ("status", "status_text") in changed or ("status",) in changed
        assert any("department" in fields for fields in changed)
        assert any(fields == ("net_value",) for fields in changed)
        assert len([e for e in events if e["type"] == "asset.registered"]) == 524


class TestDeadLetters:
    def test_bad_rows_name_file_line_and_column_and_good_rows_land(self, tmp_path: Path) -> None:
        """Each bad row is a dead letter naming file, line and column; the other rows are in the registry."""
        data = tmp_path / "hub"
        run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        letters = open_dead_letters(data)
        assert [p for p, _, _ in letters] == sorted(
            ["line:41", "line:125", "line:264", "line:309", "line:392", "line:456"]
        )
        for _, _, location in letters:
            loc = json.loads(location)
            assert loc["file"] == LEDGER.name
            assert isinstance(loc["line"], int)
            assert loc.get("column")
        listing = run_hub("dlq", "list", "--system", "hrp", data_dir=data)
        assert "line 41" in listing.stdout
        assert "购置日期" in listing.stdout
        # Rows kept with a department the mapping does not know are notes, listed apart.
        notes = open_dead_letters(data, kind="note")
        assert len(notes) == 11
        assert {code for _, code, _ in notes} == {"department_unknown"}
        assert all(p.endswith("#department") and json.loads(loc)["column"] for p, _, loc in notes)
        assert (
            "department_unknown" in run_hub("dlq", "list", "--notes", "--system", "hrp", data_dir=data).stdout
        )
        assert "department_unknown" not in listing.stdout
        assert registry_digest(data / "readmodels.db")[0] == 524

    def test_retry_after_mapping_fix_lands_the_fixed_rows(self, tmp_path: Path) -> None:
        """With the site mapping installed, `hub dlq retry` lands the two day-first rows; four stay open."""
        data = tmp_path / "hub"
        mappings = tmp_path / "mappings"
        run_hub("ingest", "hrp", "--wait", str(LEDGER), data_dir=data)
        mappings.mkdir()
        shutil.copy(SAMPLES / "mapping_fix.yaml", mappings / "hrp.yaml")
        retry = run_hub("dlq", "retry", "--system", "hrp", data_dir=data, HUB_MAPPING_DIR=str(mappings))
        assert retry.returncode == 1, retry.stderr  # four rows still fail
        assert "2 dead letter(s) resolved" in retry.stdout
        assert [p for p, _, _ in open_dead_letters(data)] == sorted(
            ["line:41", "line:309", "line:392", "line:456"]
        )
        assert registry_digest(data / "readmodels.db")[0] == 526
        status = run_hub("status", data_dir=data)
        assert "NO" not in status.stdout


class TestMappingCheck:
    def test_dry_run_reports_failures_and_stores_nothing(self, tmp_path: Path) -> None:
        """`mapping check` shows what would fail and why, exits 1, and writes no data dir content."""
        data = tmp_path / "hub"
        result = run_hub("mapping", "check", "hrp", str(LEDGER), data_dir=data)
        assert result.returncode == 1
        assert "line 309" in result.stdout
        assert "6 row(s) would be dead-lettered" in result.stdout
        assert not (data / "archive.db").exists()

    def test_invalid_mapping_is_refused_with_line(self, tmp_path: Path) -> None:
        """A broken mapping file is refused (exit 2) with its file and line."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("extends: default\ndate_formats: 12\n", encoding="utf-8")
        result = run_hub(
            "mapping", "check", "hrp", str(LEDGER), "--mapping", str(bad), data_dir=tmp_path / "hub"
        )
        assert result.returncode == 2
        assert "bad.yaml" in result.stderr
        assert ":2" in result.stderr
