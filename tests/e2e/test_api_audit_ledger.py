"""GET /audit/ledger: the console's Audit page asks whether the ledger is intact and for its last checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.auth.roles import Role
from tests.e2e.conftest import REPO, wired_hub

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"


async def test_intact_then_an_edited_entry_is_found(tmp_path: Path) -> None:
    """After an ingest the ledger verifies intact with entries; an entry edited in the database is reported."""
    async with wired_hub(tmp_path / "hub") as w:
        await w.ingest("hrp", LEDGER)
        auditor = w.auth(Role.AUDITOR)
        body = (await w.http.get("/audit/ledger", headers=auditor)).json()
        assert (body["intact"], body["findings"], body["findings_total"]) == (True, [], 0)
        assert body["entries"] > 0
        assert body["chains"] > 0
        assert body["seals_checked"] > 0

        conn = sqlite3.connect(tmp_path / "hub" / "readmodels.db")
        try:
            topic, partition, seq, raw = conn.execute(
                "SELECT topic, partition, seq, entry_bytes FROM audit_ledger_entries ORDER BY topic, seq LIMIT 1"
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
        tampered = (await w.http.get("/audit/ledger", headers=auditor)).json()
        assert tampered["intact"] is False
        assert tampered["findings_total"] >= 1
        assert any(topic in f["where"] for f in tampered["findings"])


async def test_only_hospital_wide_keys_with_the_history_permission(tmp_path: Path) -> None:
    """A viewer gets 403 (no history permission), a department-scoped auditor 403 (the ledger is hospital-wide)."""
    async with wired_hub(tmp_path / "hub") as w:
        assert (await w.http.get("/audit/ledger")).status_code == 401
        assert (await w.http.get("/audit/ledger", headers=w.auth(Role.VIEWER))).status_code == 403
        scoped = w.auth(Role.AUDITOR, department="重症医学科")
        assert (await w.http.get("/audit/ledger", headers=scoped)).status_code == 403
        assert (await w.http.get("/audit/ledger", headers=w.auth(Role.INTEGRATOR))).status_code == 200
