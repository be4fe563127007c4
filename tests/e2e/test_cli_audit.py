"""`hub audit verify|keygen|checkpoint|export` as an auditor drives them, on a data dir with real ingested samples."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.bus.embedded import EmbeddedBus
from tests.e2e.conftest import REPO, hub_env, run_hub
from topics.catalogue import CANONICAL_TOPICS, DERIVED_TOPICS

pytestmark = pytest.mark.slow

SAMPLES = (
    ("hrp", REPO / "examples" / "hrp" / "固定资产台账_分院_UTF8_BOM.csv"),
    ("oa", REPO / "examples" / "oa" / "工单推送_2024-07-01.jsonl"),
)
# Imports the command module itself, so the test does not depend on hub.cli's list of modules.
ENTRY = "from hub.cli import audit, main; main()"


def audit(*args: str, data_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, "audit", *args],
        cwd=REPO,
        env=hub_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def logged_event_ids(data: Path) -> set[str]:
    """Distinct event ids on every canonical and derived topic of the data dir's embedded bus."""

    async def read() -> set[str]:
        bus = EmbeddedBus(data / "bus.db")
        await bus.start()
        names = [t.name for t in (*CANONICAL_TOPICS, *DERIVED_TOPICS)]
        consumer = await bus.consumer(names, group=None)
        ids: set[str] = set()
        while batch := await consumer.poll(max_records=5000, timeout_s=0.2):
            ids.update(json.loads(r.value)["event_id"] for r in batch)
        await consumer.close()
        await bus.close()
        return ids

    return asyncio.run(read())


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding HRP and OA samples: asset and work-order events on several partitions."""
    data = tmp_path_factory.mktemp("audit") / "hub"
    for system, path in SAMPLES:
        done = run_hub("ingest", system, "--wait", str(path), data_dir=data)
        assert done.returncode == 0, done.stdout + done.stderr
    # The first audit command brings the ledger up to date (it also runs in `hub serve`).
    first = audit("verify", data_dir=data)
    assert first.returncode == 0, first.stdout + first.stderr
    return data


@pytest.fixture
def data(ingested: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested data dir, free to tamper with."""
    copy = tmp_path / "hub"
    shutil.copytree(ingested, copy)
    return copy


def tamper_one_entry(data: Path) -> tuple[str, int, int]:
    """Edit the bytes of one work-order entry directly in the database, as an administrator could."""
    conn = sqlite3.connect(data / "readmodels.db")
    try:
        topic, partition, seq, raw = conn.execute(
            "SELECT topic, partition, seq, entry_bytes FROM audit_ledger_entries"
            " WHERE topic = 'canonical.workorder.v1' ORDER BY partition, seq LIMIT 1"
        ).fetchone()
        edited = bytes(raw).replace(b'"occurred_at":"20', b'"occurred_at":"19', 1)
        assert edited != bytes(raw)
        conn.execute(
            "UPDATE audit_ledger_entries SET entry_bytes = ? WHERE topic = ? AND partition = ? AND seq = ?",
            (edited, topic, partition, seq),
        )
        conn.commit()
    finally:
        conn.close()
    return topic, partition, seq


class TestAuditCommands:
    def test_verify_intact_ledger(self, data: Path) -> None:
        """On an untouched hub, verify (with the log cross-check) finds the ledger intact and exits 0."""
        done = audit("verify", "--log", data_dir=data)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ledger intact" in done.stdout
        assert f"checked {len(logged_event_ids(data))} entries" in done.stdout

    def test_edited_entry_is_reported_with_its_position(self, data: Path) -> None:
        """After an entry is edited in the database, verify exits 1 and prints which entry and where."""
        topic, partition, seq = tamper_one_entry(data)
        done = audit("verify", data_dir=data)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "edited" in done.stdout
        assert f"{topic}[{partition}] seq {seq}" in done.stdout

    def test_signed_checkpoint_then_verify_against_it(self, data: Path, tmp_path: Path) -> None:
        """keygen, a signed checkpoint, then verify --checkpoint --public-key: signature first, then the chains."""
        key = tmp_path / "keys" / "audit.key"
        key.parent.mkdir()
        made = audit("keygen", "--out", str(key), data_dir=data)
        assert made.returncode == 0, made.stderr
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "BEGIN PUBLIC KEY" in made.stdout
        cp = tmp_path / "checkpoint.json"
        signed = audit("checkpoint", "--out", str(cp), "--key", str(key), data_dir=data)
        assert signed.returncode == 0, signed.stdout + signed.stderr
        assert f"{len(logged_event_ids(data))} entries" in signed.stdout
        assert "signed" in signed.stdout

        pub = f"{key}.pub"
        ok = audit("verify", "--checkpoint", str(cp), "--public-key", pub, data_dir=data)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "signature verified" in ok.stdout

        doc = json.loads(cp.read_text())
        doc["checkpoint"]["partitions"][0]["count"] += 1
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(doc))
        refused = audit("verify", "--checkpoint", str(forged), "--public-key", pub, data_dir=data)
        assert refused.returncode == 1
        assert "checkpoint rejected" in refused.stdout

    def test_checkpoint_is_refused_on_a_tampered_ledger(self, data: Path, tmp_path: Path) -> None:
        """No checkpoint is written over a ledger that does not verify."""
        tamper_one_entry(data)
        done = audit("checkpoint", "--out", str(tmp_path / "cp.json"), data_dir=data)
        assert done.returncode == 1
        assert not (tmp_path / "cp.json").exists()

    def test_export_window_verifies_standalone(self, data: Path, tmp_path: Path) -> None:
        """An export of a time window, in CSV, checks out with its own script and the standard library only."""
        out = tmp_path / "export"
        done = audit(
            "export",
            "--from",
            "2000-01-01T00:00:00+08:00",
            "--to",
            "2100-01-01",
            "--format",
            "csv",
            "--out",
            str(out),
            data_dir=data,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"exported {len(logged_event_ids(data))} entries" in done.stdout
        check = subprocess.run(
            [sys.executable, "-I", "-S", str(out / "verify_export.py"), str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr

    def test_naive_times_are_read_in_the_hub_time_zone(self, data: Path, tmp_path: Path) -> None:
        """`--to` without an offset is HUB_TZ wall time: an hour from now in UTC is hours ago in Shanghai."""
        soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        utc = audit("export", "--to", soon, "--out", str(tmp_path / "utc"), data_dir=data, HUB_TZ="UTC")
        shanghai = audit(
            "export", "--to", soon, "--out", str(tmp_path / "sh"), data_dir=data, HUB_TZ="Asia/Shanghai"
        )
        assert f"exported {len(logged_event_ids(data))} entries" in utc.stdout, utc.stdout + utc.stderr
        assert "exported 0 entries" in shanghai.stdout, shanghai.stdout + shanghai.stderr

    def test_unreadable_time_is_a_usage_error(self, data: Path, tmp_path: Path) -> None:
        """A --from that is not ISO 8601 exits 2 and says which option."""
        done = audit("export", "--from", "last tuesday", "--out", str(tmp_path / "x"), data_dir=data)
        assert done.returncode == 2
        assert "--from" in done.stderr


def _bus_topic(conn: sqlite3.Connection, name: str) -> str:
    (topic,) = conn.execute("SELECT name FROM bus_topics WHERE name LIKE ?", (f"%{name}",)).fetchone()
    return str(topic)


def edit_one_registered_record(data: Path) -> dict[str, object]:
    """Change one `asset.registered` record's bytes in the embedded log's table (the issue's probe)."""
    conn = sqlite3.connect(data / "bus.db")
    try:
        topic = _bus_topic(conn, "canonical.asset.v1")
        records = conn.execute(
            "SELECT r.pos, r.value FROM bus_records r JOIN bus_partitions p ON r.pos >> 40 = p.pid"
            " WHERE p.topic = ? ORDER BY r.pos",
            (topic,),
        ).fetchall()
        pos, value = next((p, v) for p, v in records if json.loads(v)["type"] == "asset.registered")
        doc = json.loads(value)
        edited = bytes(value).replace(b'"occurred_at":"20', b'"occurred_at":"19', 1)
        assert edited != bytes(value)
        conn.execute("UPDATE bus_records SET value = ? WHERE pos = ?", (edited, pos))
        (partition,) = conn.execute(
            "SELECT partition FROM bus_partitions WHERE pid = ?", (pos >> 40,)
        ).fetchone()
        conn.commit()
    finally:
        conn.close()
    return {"partition": partition, "offset": pos & ((1 << 40) - 1), "event_id": doc["event_id"]}


def _last_entry(conn: sqlite3.Connection) -> tuple[str, int, int, int, str]:
    """(topic, partition, seq, offset, event_id) of the last entry of the longest asset chain."""
    row = conn.execute(
        'SELECT topic, partition, seq, "offset", event_id FROM audit_ledger_entries e'
        " WHERE topic = 'canonical.asset.v1' AND seq = (SELECT max(seq) FROM audit_ledger_entries"
        "   WHERE topic = e.topic AND partition = e.partition)"
        " ORDER BY seq DESC, partition LIMIT 1"
    ).fetchone()
    return row[0], row[1], row[2], row[3], row[4]


def _verify_json(data: Path) -> tuple[int, dict]:
    done = audit("verify", "--json", data_dir=data)
    return done.returncode, json.loads(done.stdout)


class TestLedgerCoversTheLog:
    def test_edited_log_record_is_found_with_its_position(self, data: Path) -> None:
        """One asset.registered record edited in bus.db: verify exits 1 and names it, in text and JSON."""
        target = edit_one_registered_record(data)
        done = audit("verify", data_dir=data)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "first changed entry: edited" in done.stdout
        assert f"offset {target['offset']}" in done.stdout
        code, report = _verify_json(data)
        assert code == 1
        first = report["first"]
        assert (first["kind"], first["topic"], first["partition"], first["offset"], first["event_id"]) == (
            "edited",
            "canonical.asset.v1",
            target["partition"],
            target["offset"],
            target["event_id"],
        )
        assert "occurred_at" in first["detail"]
        assert report["log_records"] >= len(logged_event_ids(data))

    def test_history_flags_and_as_of_refuses_the_edited_record(self, data: Path, tmp_path: Path) -> None:
        """`hub replay history` marks the record; `hub replay as-of` refuses and names it, writing nothing."""
        target = edit_one_registered_record(data)
        conn = sqlite3.connect(data / "readmodels.db")
        try:
            (subject,) = conn.execute(
                "SELECT subject FROM audit_ledger_entries WHERE event_id = ?", (target["event_id"],)
            ).fetchone()
        finally:
            conn.close()
        shown = run_hub("replay", "history", "asset", subject, "--json", data_dir=data)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        lines = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
        flagged = [line for line in lines if line["tampered"]]
        assert [line["event_id"] for line in flagged] == [target["event_id"]]
        out = tmp_path / "asof.db"
        refused = run_hub("replay", "as-of", "now", "--out", str(out), data_dir=data)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert str(target["event_id"]) in refused.stderr.replace("\n", "")
        assert not out.exists()

    def test_deleted_last_entry_with_its_tracking_rows(self, data: Path) -> None:
        """The last entry of a chain deleted with its tracking rows: found by the kept signed head."""
        conn = sqlite3.connect(data / "readmodels.db")
        try:
            topic, partition, seq, offset, event_id = _last_entry(conn)
            conn.execute(
                "DELETE FROM audit_ledger_entries WHERE topic = ? AND partition = ? AND seq = ?",
                (topic, partition, seq),
            )
            conn.execute(
                "DELETE FROM projection_applied_events WHERE projection = 'audit_ledger' AND event_id = ?",
                (event_id,),
            )
            conn.execute(
                'UPDATE projection_tracking SET "offset" = "offset" - 1 WHERE projection = \'audit_ledger\''
                " AND topic LIKE ? AND partition = ?",
                (f"%{topic}", partition),
            )
            conn.execute(
                "DELETE FROM audit_ledger_checkpoints WHERE topic = ? AND partition = ? AND count > ?",
                (topic, partition, seq),
            )
            conn.commit()
        finally:
            conn.close()
        code, report = _verify_json(data)
        assert code == 1, report
        first = report["first"]
        assert (first["kind"], first["topic"], first["partition"], first["seq"]) == (
            "truncated",
            topic,
            partition,
            seq,
        )
        assert (first["offset"], first["event_id"]) == (offset, event_id)

    def test_rewritten_tail_is_found_without_an_exported_checkpoint(self, data: Path) -> None:
        """The last two entries rewritten with every hash recomputed: the first changed one is named."""
        conn = sqlite3.connect(data / "readmodels.db")
        try:
            topic, partition, last, _, _ = _last_entry(conn)
            first = last - 1
            (prev,) = conn.execute(
                "SELECT entry_hash FROM audit_ledger_entries WHERE topic = ? AND partition = ? AND seq = ?",
                (topic, partition, first - 1),
            ).fetchone()
            for seq in (first, last):
                data_, record, offset, event_id = conn.execute(
                    'SELECT entry_bytes, record_hash, "offset", event_id FROM audit_ledger_entries'
                    " WHERE topic = ? AND partition = ? AND seq = ?",
                    (topic, partition, seq),
                ).fetchone()
                if seq == first:
                    target = (offset, event_id)
                changed = bytes(data_).replace(b'"occurred_at":"20', b'"occurred_at":"19', 1)
                new = hashlib.sha256(
                    bytes.fromhex(prev) + hashlib.sha256(changed).digest() + bytes.fromhex(record)
                ).hexdigest()
                conn.execute(
                    "UPDATE audit_ledger_entries SET entry_bytes = ?, prev_hash = ?, entry_hash = ?"
                    " WHERE topic = ? AND partition = ? AND seq = ?",
                    (changed, prev, new, topic, partition, seq),
                )
                conn.execute(
                    "UPDATE audit_ledger_checkpoints SET head_hash = ? WHERE topic = ? AND partition = ? AND count = ?",
                    (new, topic, partition, seq + 1),
                )
                prev = new
            conn.commit()
        finally:
            conn.close()
        code, report = _verify_json(data)
        assert code == 1, report
        kinds = {f["kind"] for f in report["findings"]}
        assert "tail_rewritten" in kinds  # the kept signed head no longer matches
        got = report["first"]
        assert (got["kind"], got["topic"], got["partition"], got["seq"]) == (
            "rewritten",
            topic,
            partition,
            first,
        )
        assert (got["offset"], got["event_id"]) == target
