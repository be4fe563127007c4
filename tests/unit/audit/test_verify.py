"""verify: an intact ledger passes; each kind of tampering is found at the right position."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete

from projections.audit.ledger import AuditLedger, checkpoints
from projections.runtime.db import make_engine
from projections.runtime.tracking import projection_applied_events
from replay.audit.chain import Tamper
from replay.audit.checkpoint import export_checkpoint, load_checkpoint
from replay.audit.verify import Finding, verify
from tests.unit.audit.ledger_helpers import (
    Chain,
    delete_entry,
    fill,
    flip_byte,
    insert_forged,
    longest_chain,
    place,
    rewrite_tail,
    rows,
    set_columns,
    stream,
    swap,
    work_started,
)

EVERY = 4  # checkpoint interval of the test ledgers: several marks per chain


@pytest.fixture
def chain(engine: Engine) -> Chain:
    """A ledger of 90 events over several chains; the longest chain (about 20 entries) is returned."""
    fill(engine, place(stream(90)), ledger=AuditLedger(checkpoint_every=EVERY))
    longest = longest_chain(engine)
    assert len(rows(engine, longest)) >= 12
    return longest


def _only(findings: list[Finding], kind: Tamper) -> list[Finding]:
    return [f for f in findings if f.kind is kind]


def _at(findings: list[Finding], chain: Chain) -> list[Finding]:
    return [f for f in findings if (f.topic, f.partition) == chain]


class TestIntact:
    def test_untampered_ledger_verifies(self, engine: Engine, chain: Chain) -> None:
        """A ledger nobody touched is intact, and every entry is counted."""
        report = verify(engine)
        assert report.intact, report.findings
        assert report.entries == 90
        assert report.chains >= 4

    def test_deep_verify_of_untampered_ledger(self, engine: Engine, chain: Chain) -> None:
        """The deep check (event models, canonical bytes) passes too."""
        assert verify(engine, deep=True).intact

    def test_database_without_a_ledger_is_trivially_intact(self, tmp_path) -> None:
        """A database where the ledger never ran has nothing to verify."""
        eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        try:
            report = verify(eng)
        finally:
            eng.dispose()
        assert report.intact
        assert report.entries == 0


class TestTampering:
    def test_edited_entry_bytes(self, engine: Engine, chain: Chain) -> None:
        """Changing an entry's bytes is reported as edited, at that entry."""
        target = rows(engine, chain)[5]
        flip_byte(engine, chain, 5, 300)
        report = verify(engine)
        (edited,) = _only(report.findings, Tamper.EDITED)
        assert (edited.topic, edited.partition, edited.seq, edited.event_id) == (
            *chain,
            5,
            target["event_id"],
        )
        assert all(f.seq == 5 for f in report.findings)

    def test_edited_hash_column(self, engine: Engine, chain: Chain) -> None:
        """Overwriting an entry's stored hash is one edit at that entry, not also a break after it."""
        set_columns(engine, chain, 6, entry_hash="ab" * 32)
        report = verify(engine)
        assert [(f.kind, f.seq) for f in report.findings] == [(Tamper.EDITED, 6)]

    def test_deleted_entry_leaves_a_seq_gap(self, engine: Engine, chain: Chain) -> None:
        """Deleting an entry is reported as deleted at its seq, and its event id is named."""
        gone = rows(engine, chain)[7]
        delete_entry(engine, chain, 7)
        report = verify(engine)
        chained = _only(_at(report.findings, chain), Tamper.DELETED)
        assert [(f.seq, f.last_seq) for f in chained] == [(7, 7)]
        assert [f.event_id for f in _only(report.findings, Tamper.DELETED) if f.topic is None] == [
            gone["event_id"]
        ]

    def test_deleted_entry_with_later_ones_renumbered(self, engine: Engine, chain: Chain) -> None:
        """A deletion hidden by renumbering the seqs after it is still found where it happened."""
        delete_entry(engine, chain, 7, renumber=True)
        report = verify(engine)
        (deleted,) = _only(_at(report.findings, chain), Tamper.DELETED)
        assert deleted.seq == 7
        assert _only(report.findings, Tamper.REWRITTEN) == []

    def test_inserted_entry(self, engine: Engine, chain: Chain) -> None:
        """A forged, well-linked entry spliced in (later seqs renumbered) is reported as inserted, at its seq."""
        forged = work_started("forged", "WO-FORGED")
        insert_forged(engine, chain, 8, forged)
        report = verify(engine)
        inserted = _only(report.findings, Tamper.INSERTED)
        assert [(f.topic, f.partition, f.seq, f.event_id) for f in inserted] == [
            (*chain, 8, str(forged.event_id))
        ]
        assert _only(report.findings, Tamper.EDITED) == []

    def test_entry_appended_at_the_head(self, engine: Engine, chain: Chain) -> None:
        """An entry appended after the head links perfectly, but the ledger never applied its event."""
        forged = work_started("appended", "WO-APPENDED")
        insert_forged(engine, chain, len(rows(engine, chain)), forged)
        report = verify(engine)
        assert [(f.kind, f.event_id) for f in report.findings] == [(Tamper.INSERTED, str(forged.event_id))]

    def test_reordered_neighbours(self, engine: Engine, chain: Chain) -> None:
        """Swapping two neighbours is reported as reordered, at one of the two."""
        swap(engine, chain, 9, 10)
        report = verify(engine)
        (moved,) = _only(report.findings, Tamper.REORDERED)
        assert moved.seq in {9, 10}
        assert report.findings == [moved]

    def test_reordered_far_apart(self, engine: Engine, chain: Chain) -> None:
        """Exchanging two distant entries reports both as reordered."""
        swap(engine, chain, 2, 11)
        report = verify(engine)
        assert sorted(f.seq for f in _only(report.findings, Tamper.REORDERED)) == [2, 11]

    def test_row_column_that_disagrees_with_the_bytes(self, engine: Engine, chain: Chain) -> None:
        """An event id column changed without touching the hashed bytes is mislabelled, at that entry."""
        set_columns(engine, chain, 3, subject="SOMEONE-ELSE")
        report = verify(engine)
        (finding,) = report.findings
        assert (finding.kind, finding.seq) == (Tamper.MISLABELLED, 3)
        assert "subject" in finding.detail

    def test_bytes_that_are_not_an_event(self, engine: Engine, chain: Chain) -> None:
        """Entry bytes that are not JSON are reported as unparseable (and edited)."""
        set_columns(engine, chain, 4, entry_bytes=b"\xff not json")
        kinds = {(f.kind, f.seq) for f in verify(engine).findings}
        assert kinds == {(Tamper.UNPARSEABLE, 4), (Tamper.EDITED, 4)}

    def test_truncated_tail_with_its_tracking_rows(self, engine: Engine, chain: Chain) -> None:
        """Cutting the last entries, their tracking rows and checkpoints is found against an older checkpoint."""
        checkpoint = _exported(engine)
        stored = rows(engine, chain)
        applied, marks = projection_applied_events.c, checkpoints.c
        with engine.begin() as conn:
            for entry in stored[-3:]:
                conn.execute(delete(projection_applied_events).where(applied.event_id == entry["event_id"]))
            conn.execute(
                delete(checkpoints).where(
                    marks.topic == chain[0], marks.partition == chain[1], marks.count > len(stored) - 3
                )
            )
        for entry in stored[-3:]:
            delete_entry(engine, chain, entry["seq"])
        assert verify(engine).intact  # what is left is a consistent, shorter chain
        report = verify(engine, checkpoint=checkpoint)
        (cut,) = report.findings
        assert (cut.kind, cut.topic, cut.partition, cut.seq, cut.last_seq) == (
            Tamper.TRUNCATED,
            *chain,
            len(stored) - 3,
            len(stored) - 1,
        )


class TestTailRewrite:
    def test_consistent_rewrite_is_found_only_against_an_older_checkpoint(
        self, engine: Engine, chain: Chain
    ) -> None:
        """Rewriting the last K entries with every hash recomputed passes the chain checks, not the checkpoint."""
        checkpoint = _exported(engine)
        count = len(rows(engine, chain))
        first = rewrite_tail(engine, chain, 3, _reword)
        assert verify(engine).intact
        report = verify(engine, checkpoint=checkpoint)
        (rewritten,) = report.findings
        assert rewritten.kind is Tamper.TAIL_REWRITTEN
        assert (rewritten.topic, rewritten.partition) == chain
        # The finding names the stretch between the last mark that still matches and the head it saw.
        assert rewritten.seq is not None
        assert rewritten.last_seq is not None
        assert rewritten.seq <= first <= rewritten.last_seq == count - 1
        assert first - rewritten.seq < EVERY

    def test_untouched_ledger_matches_its_checkpoint(self, engine: Engine, chain: Chain) -> None:
        """A ledger that only grew since the checkpoint still passes through it."""
        checkpoint = _exported(engine)
        fill(engine, place(stream(30, prefix="later")), ledger=AuditLedger(checkpoint_every=EVERY))
        report = verify(engine, checkpoint=checkpoint)
        assert report.intact, report.findings
        assert report.checkpoint_checked


def _reword(data: bytes) -> bytes:
    """A plausible change to an event: another engineer, another status text."""
    return data.replace("工程师".encode(), "技术员".encode()).replace(
        b'"status_text":null', b'"status_text":"ok"'
    )


def _exported(engine: Engine):
    path = _exported.tmp / f"cp-{datetime.now(UTC).timestamp()}.json"
    export_checkpoint(engine, path, site="test")
    return load_checkpoint(path).checkpoint


@pytest.fixture(autouse=True)
def _checkpoint_dir(tmp_path) -> None:
    _exported.tmp = tmp_path  # type: ignore[attr-defined]
