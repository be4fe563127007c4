"""replay.audit.chain.analyse on synthetic chains: cases the database's primary key would not allow too."""

from __future__ import annotations

import dataclasses
import hashlib

from projections.audit.ledger import GENESIS_HASH
from replay.audit.chain import ChainRow, Tamper, analyse


def _content(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _hash(prev: str, content: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + content).hexdigest()


def chain(n: int, *, label: str = "e") -> list[ChainRow]:
    """An intact chain of `n` entries."""
    out, prev = [], GENESIS_HASH
    for i in range(n):
        content = _content(f"{label}{i}")
        h = _hash(prev, content)
        out.append(ChainRow(i, 100 + i, f"id-{label}{i}", prev, h, content, content_ok=True))
        prev = h
    return out


def forged(seq: int, prev: str, label: str = "forged") -> ChainRow:
    content = _content(label)
    return ChainRow(seq, None, f"id-{label}", prev, _hash(prev, content), content, content_ok=True)


def found(rows: list[ChainRow], **kwargs: bool) -> list[tuple[Tamper, int]]:
    return [(a.kind, rows[a.index].seq) for a in analyse(rows, **kwargs)]


class TestAnalyse:
    def test_intact_chain_has_no_anomaly(self) -> None:
        """An untouched chain, and an empty one, give nothing."""
        assert analyse(chain(30)) == []
        assert analyse([]) == []

    def test_insert_with_a_duplicated_seq(self) -> None:
        """An extra entry sharing a seq with the real one (no primary key) is the inserted one."""
        rows = chain(10)
        extra = forged(4, rows[3].entry_hash)
        assert found([*rows[:4], extra, *rows[4:]]) == [(Tamper.INSERTED, 4)]
        assert found([*rows[:5], extra, *rows[5:]]) == [(Tamper.INSERTED, 4)]

    def test_insert_stepped_around(self) -> None:
        """An entry with a made-up predecessor that the chain goes around is inserted."""
        rows = chain(10)
        junk = forged(5, "12" * 32)
        renumbered = [dataclasses.replace(r, seq=r.seq + 1) for r in rows[5:]]
        assert found([*rows[:5], junk, *renumbered]) == [(Tamper.INSERTED, 5)]

    def test_insert_with_the_next_entry_repointed(self) -> None:
        """Entries spliced in, with the next entry's prev_hash pointed at them, are inserted (not an edit)."""
        rows = chain(10)
        one = forged(4, rows[3].entry_hash, "one")
        two = forged(5, one.entry_hash, "two")
        after = [dataclasses.replace(r, seq=r.seq + 2) for r in rows[4:]]
        after[0] = dataclasses.replace(after[0], prev_hash=two.entry_hash, content_ok=False)
        assert found([*rows[:4], one, two, *after]) == [(Tamper.INSERTED, 4), (Tamper.INSERTED, 5)]

    def test_several_deleted_entries(self) -> None:
        """Three consecutive entries deleted leave one finding covering their seqs."""
        rows = chain(12)
        (anomaly,) = analyse([*rows[:3], *rows[6:]])
        assert (anomaly.kind, anomaly.missing_from, anomaly.missing_to) == (Tamper.DELETED, 3, 5)

    def test_first_entries_deleted_and_renumbered(self) -> None:
        """Removing the start of a chain and renumbering is a deletion before the new first entry."""
        rows = [dataclasses.replace(r, seq=r.seq - 2) for r in chain(8)[2:]]
        assert found(rows) == [(Tamper.DELETED, 0)]

    def test_rewritten_entry_versus_deleted_one(self) -> None:
        """An entry edited with its hash recomputed breaks the link after it: rewritten, unless events are missing."""
        rows = chain(10)
        content = _content("changed")
        rows[4] = dataclasses.replace(
            rows[4], entry_hash=_hash(rows[4].prev_hash, content), content_hash=content
        )
        assert found(rows) == [(Tamper.REWRITTEN, 4)]
        assert found(rows, applied_ids_missing=True) == [(Tamper.DELETED, 5)]

    def test_moved_block(self) -> None:
        """A run of entries moved elsewhere is reported entry by entry as reordered."""
        rows = chain(12)
        moved = [*rows[:2], *rows[5:9], *rows[2:5], *rows[9:]]
        moved = [dataclasses.replace(r, seq=i) for i, r in enumerate(moved)]
        kinds = {kind for kind, _ in found(moved)}
        assert kinds == {Tamper.REORDERED}
        assert len(found(moved)) == 3

    def test_two_tamperings_in_one_chain(self) -> None:
        """An edit and a later deletion are both reported, each at its own place."""
        rows = chain(15)
        rows[3] = dataclasses.replace(rows[3], content_hash=_content("edited"), content_ok=False)
        assert found([*rows[:10], *rows[11:]]) == [(Tamper.EDITED, 3), (Tamper.DELETED, 11)]

    def test_offset_column_out_of_order(self) -> None:
        """A linked entry whose offset goes backwards had its offset column edited."""
        rows = chain(6)
        rows[4] = dataclasses.replace(rows[4], offset=1)
        assert found(rows) == [(Tamper.EDITED, 4)]

    def test_hash_cycle_does_not_hang(self) -> None:
        """A prev_hash pointed at a later entry (a loop in the links) is analysed, not followed forever."""
        rows = chain(6)
        rows[2] = dataclasses.replace(rows[2], prev_hash=rows[4].entry_hash, content_ok=False)
        assert found(rows)
