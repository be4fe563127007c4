"""Auditor export: the entries of a window or subject, chain proofs, and a standalone check that works."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from replay.audit.errors import LedgerTampered
from replay.audit.export import export_window
from tests.unit.audit.ledger_helpers import fill, flip_byte, longest_chain, place, stream
from tests.unit.projections.factories import T0

FROM, TO = T0 + timedelta(minutes=20), T0 + timedelta(minutes=50)


@pytest.fixture
def ledger(sqlite_engine: Engine) -> Engine:
    """60 events recorded one minute apart from T0."""
    fill(sqlite_engine, place(stream(60)))
    return sqlite_engine


def check(out: Path) -> subprocess.CompletedProcess[str]:
    """Run the export's own script with the standard library only (-I -S: no site-packages)."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(out / "verify_export.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "entries.jsonl").read_text(encoding="utf-8").splitlines()]


class TestSelection:
    def test_window_selects_by_recorded_at_half_open(self, ledger: Engine, tmp_path: Path) -> None:
        """Entries recorded from `from_` (inclusive) to `to` (exclusive) are exported, and only those."""
        result = export_window(ledger, tmp_path / "x", from_=FROM, to=TO)
        exported = lines(tmp_path / "x")
        assert result.entries == len(exported) == 30
        assert sorted(json.loads(e["entry"])["event_id"] for e in exported) == sorted(
            str(ev.event_id) for ev in stream(60) if FROM <= ev.recorded_at < TO
        )

    def test_one_subject(self, ledger: Engine, tmp_path: Path) -> None:
        """With a subject, every event about it and nothing else is exported."""
        export_window(ledger, tmp_path / "x", subject="WO-1")
        exported = lines(tmp_path / "x")
        assert {e["subject"] for e in exported} == {"WO-1"}
        assert len(exported) == sum(1 for ev in stream(60) if ev.subject == "WO-1")

    def test_naive_times_are_refused(self, ledger: Engine, tmp_path: Path) -> None:
        """A window bound without a time zone is a caller bug, not a guess."""
        with pytest.raises(ValueError, match="timezone-aware"):
            export_window(ledger, tmp_path / "x", from_=FROM.replace(tzinfo=None))

    def test_proof_reaches_the_head_with_hashes_only(self, ledger: Engine, tmp_path: Path) -> None:
        """The proof carries content hashes up to each chain's head, not other subjects' events."""
        export_window(ledger, tmp_path / "x", subject="A1")
        proof = json.loads((tmp_path / "x" / "proof.json").read_text(encoding="utf-8"))
        (chain,) = proof["chains"]
        assert chain["head_count"] == chain["from_seq"] + len(chain["content_hashes"])
        assert "A2" not in (tmp_path / "x" / "proof.json").read_text(encoding="utf-8")


class TestStandaloneCheck:
    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_clean_export_verifies(self, ledger: Engine, tmp_path: Path, fmt: str) -> None:
        """verify_export.py accepts an untouched export in either format."""
        export_window(ledger, tmp_path / fmt, from_=FROM, to=TO, fmt=fmt)
        result = check(tmp_path / fmt)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("OK: 30 entries")

    def test_edited_entry_fails(self, ledger: Engine, tmp_path: Path) -> None:
        """Changing the event in one line makes the check fail and name that entry."""
        out = tmp_path / "x"
        export_window(ledger, out, from_=FROM, to=TO)
        rows = lines(out)
        rows[4]["entry"] = str(rows[4]["entry"]).replace('"schema_version":1', '"schema_version":2')
        (out / "entries.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        result = check(out)
        assert result.returncode == 1
        assert f"seq {rows[4]['seq']}: {rows[4]['event_id']} does not verify" in result.stdout

    def test_edited_label_fails(self, ledger: Engine, tmp_path: Path) -> None:
        """A convenience column that disagrees with the hashed event fails the check too."""
        out = tmp_path / "x"
        export_window(ledger, out, from_=FROM, to=TO, fmt="csv")
        with (out / "entries.csv").open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        rows[0]["subject"] = "SOMEONE-ELSE"
        with (out / "entries.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        assert check(out).returncode == 1

    def test_altered_proof_fails(self, ledger: Engine, tmp_path: Path) -> None:
        """A content hash changed in the proof no longer reaches the head."""
        out = tmp_path / "x"
        export_window(ledger, out, subject="A1")
        proof = json.loads((out / "proof.json").read_text(encoding="utf-8"))
        proof["chains"][0]["content_hashes"][-1] = "0" * 64
        (out / "proof.json").write_text(json.dumps(proof), encoding="utf-8")
        result = check(out)
        assert result.returncode == 1
        assert "does not end at its head_hash" in result.stdout

    def test_readme_explains_the_rule(self, ledger: Engine, tmp_path: Path) -> None:
        """The export's README gives the hash rule and how to run the check."""
        export_window(ledger, tmp_path / "x", subject="A1")
        readme = (tmp_path / "x" / "README.md").read_text(encoding="utf-8")
        assert "entry_hash   = SHA-256(prev_hash || content)" in readme
        assert "python3 verify_export.py" in readme


class TestRefusal:
    def test_damaged_chain_is_not_exported(self, ledger: Engine, tmp_path: Path) -> None:
        """An export over a chain whose bytes no longer match its hashes is refused, naming where."""
        chain = longest_chain(ledger)
        flip_byte(ledger, chain, 0, 200)
        with pytest.raises(LedgerTampered, match=rf"{chain[0]}\[{chain[1]}\] seq 0"):
            export_window(ledger, tmp_path / "x")
