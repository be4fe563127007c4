"""Reading a damaged hash chain: which entries were edited, deleted, inserted or reordered.

Pure functions over the rows of one chain (one topic-partition), in stored order (by seq). The
hash links, not the seq column, say what the true order is: each entry names its predecessor's
hash. So the analysis follows the links from the genesis hash, preferring at a fork the branch
that goes furthest, and then reads each anomaly off the result:

- a row whose bytes no longer give its stored hash: **edited** (bytes or hash column changed),
  unless its hash is right for an earlier predecessor: then the rows in between were
  **inserted** and its prev_hash repointed to them;
- rows off the chain that branch from a chain entry, or that the chain steps around: **inserted**;
- a piece of chain whose first entry names a hash no row has: entries before it are gone. A gap
  in seq, or applied events missing from the ledger, say **deleted**; otherwise the entry stored
  before it best explains it: **rewritten** (edited, and its hash recomputed, so the next entry
  still names the old one);
- rows whose chain order disagrees with their stored order (those outside a longest increasing
  subsequence of stored positions, taken in chain order): **reordered**;
- rows that link correctly but carry a seq or offset out of step: **edited** (that column).

A consistent rewrite of the tail (every hash recomputed up to the head) leaves no trace inside
the chain: only a checkpoint taken before it, compared by replay.audit, reveals it.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from projections.audit.ledger import GENESIS_HASH

if TYPE_CHECKING:
    from collections.abc import Sequence


class Tamper(StrEnum):
    """What a finding says happened."""

    EDITED = "edited"
    REWRITTEN = "rewritten"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    TAIL_REWRITTEN = "tail_rewritten"
    MISLABELLED = "mislabelled"
    UNPARSEABLE = "unparseable"
    FORGED_CHECKPOINT = "forged_checkpoint"  # a kept seal whose MAC does not verify
    UNSEALED = "unsealed"  # a chain whose signed head seal is gone


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored entry, reduced to what the analysis needs.

    `content_hash`: SHA-256(entry_bytes) || record_hash (projections.audit.ledger); `content_ok`:
    the stored entry_hash equals SHA-256(prev_hash || content_hash).
    """

    seq: int
    offset: int | None
    event_id: str
    prev_hash: str
    entry_hash: str
    content_hash: bytes
    content_ok: bool


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A finding about row `index` (stored order). For DELETED, `index` is the row after the gap."""

    kind: Tamper
    index: int
    detail: str
    missing_from: int | None = None  # DELETED with a seq gap: the missing seqs
    missing_to: int | None = None


def analyse(rows: Sequence[ChainRow], *, applied_ids_missing: bool = False) -> list[Anomaly]:
    """Anomalies of one chain, ordered by position. Empty for an intact chain.

    `applied_ids_missing`: the ledger applied events that no entry holds any more; it tips an
    unexplained break towards "deleted" rather than "rewritten".
    """
    n = len(rows)
    if n == 0:
        return []
    children = _children(rows)
    length = _longest_paths(n, children)
    segments = _segments(rows, children, length)
    by_hash: dict[str, int] = {}
    for i, row in enumerate(rows):
        by_hash.setdefault(row.entry_hash, i)

    out: list[Anomaly] = []
    inserted: set[int] = set()
    for seg in segments[1:]:
        found = _explain_break(rows, seg, by_hash, children, applied_ids_missing=applied_ids_missing)
        out += found
        if found and found[0].kind is Tamper.INSERTED:
            inserted.update(seg)
    edited: set[int] = set()
    for i in range(n):
        if rows[i].content_ok or i in inserted:
            continue
        spliced = _spliced_before(rows, i)
        if spliced:
            inserted.update(spliced)
            out += [
                Anomaly(
                    Tamper.INSERTED, j, f"spliced in before seq {rows[i].seq}, whose prev_hash was repointed"
                )
                for j in spliced
            ]
        else:
            edited.add(i)
            out.append(Anomaly(Tamper.EDITED, i, "its bytes no longer hash to its stored entry_hash"))

    chain = [i for seg in segments for i in seg if i not in inserted]
    out += _reordered(rows, chain)
    out += _columns_out_of_step(rows, segments, inserted | edited)
    return sorted(out, key=lambda a: (a.index, a.kind))


def _children(rows: Sequence[ChainRow]) -> list[list[int]]:
    """children[i]: rows naming row i's hash as their predecessor, in stored order."""
    by_prev: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_prev.setdefault(row.prev_hash, []).append(i)
    return [[j for j in by_prev.get(row.entry_hash, ()) if j != i] for i, row in enumerate(rows)]


def _longest_paths(n: int, children: list[list[int]]) -> list[int]:
    """Rows on the longest path starting at each row (iterative DFS; a cycle edge is ignored)."""
    length = [0] * n
    state = [0] * n  # 0 unseen, 1 on the stack, 2 done
    for start in range(n):
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(children[start]))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(children[child])))
                    break
            else:
                stack.pop()
                state[node] = 2
                length[node] = 1 + max((length[c] for c in children[node] if state[c] == 2), default=0)
    return length


def _segments(rows: Sequence[ChainRow], children: list[list[int]], length: list[int]) -> list[list[int]]:
    """Pieces of chain: first the one from the genesis hash, then from each unvisited row in stored order."""
    n = len(rows)
    visited = [False] * n

    def follow(candidates: list[int]) -> list[int]:
        seg: list[int] = []
        while candidates:
            best = max(candidates, key=lambda j: (length[j], -j))
            seg.append(best)
            visited[best] = True
            candidates = [j for j in children[best] if not visited[j]]
        return seg

    segments = [follow([i for i, row in enumerate(rows) if row.prev_hash == GENESIS_HASH])]
    # Visiting rows in order matters: follow() marks rows visited as it goes.
    for i in range(n):
        if not visited[i]:
            segments.append(follow([i]))  # noqa: PERF401
    return segments


def _explain_break(
    rows: Sequence[ChainRow],
    seg: list[int],
    by_hash: dict[str, int],
    children: list[list[int]],
    *,
    applied_ids_missing: bool,
) -> list[Anomaly]:
    head = seg[0]
    row = rows[head]
    names_known = row.prev_hash == GENESIS_HASH or row.prev_hash in by_hash
    dead_end = not any(children[i] for i in seg)
    before, after = min(seg) - 1, max(seg) + 1
    stepped_around = after < len(rows) and (
        rows[after].prev_hash == (rows[before].entry_hash if before >= 0 else GENESIS_HASH)
    )
    if dead_end and (names_known or stepped_around):
        detail = (
            "branches off the chain (another entry follows the same predecessor)"
            if names_known
            else "the chain steps around it: the entries on either side link to each other"
        )
        return [Anomaly(Tamper.INSERTED, i, detail) for i in seg]
    if names_known:
        # The losing side of a fork that carries on: entries were spliced in before this piece.
        return [Anomaly(Tamper.INSERTED, head, "follows an entry that already has a successor in the chain")]
    prev_index = head - 1
    if prev_index >= 0 and row.prev_hash == _recomputed(rows[prev_index]):
        return []  # the predecessor's entry_hash column was changed: reported as edited there
    expected_seq = rows[prev_index].seq + 1 if prev_index >= 0 else 0
    if row.seq > expected_seq:
        gap = f"{expected_seq}" if row.seq - 1 == expected_seq else f"{expected_seq}..{row.seq - 1}"
        return [
            Anomaly(
                Tamper.DELETED,
                head,
                f"seq {gap} missing: the next entry names a predecessor no row has",
                missing_from=expected_seq,
                missing_to=row.seq - 1,
            )
        ]
    if applied_ids_missing or prev_index < 0:
        return [
            Anomaly(
                Tamper.DELETED,
                head,
                "entries before this one were deleted and the later ones renumbered: "
                "it names a predecessor no row has",
            )
        ]
    return [
        Anomaly(
            Tamper.REWRITTEN,
            prev_index,
            "changed and its hash recomputed: the next entry still names its old hash",
        )
    ]


_SPLICE_LOOKBACK = 16  # how many rows back a repointed prev_hash is looked for


def _recomputed(row: ChainRow, prev_hash: str | None = None) -> str | None:
    """The entry_hash `row` should have after `prev_hash` (default: its own stored prev_hash).

    None when that hash is not hex any more (a hash column overwritten with something else).
    """
    try:
        prev = bytes.fromhex(row.prev_hash if prev_hash is None else prev_hash)
    except ValueError:
        return None
    return hashlib.sha256(prev + row.content_hash).hexdigest()


def _spliced_before(rows: Sequence[ChainRow], i: int) -> list[int]:
    """Rows k+1..i-1 when row i's stored hash is right after row k's hash (k < i-1), else none.

    That is the trace of entries inserted before row i with its prev_hash pointed at them.
    """
    for k in range(i - 2, max(-2, i - _SPLICE_LOOKBACK - 2), -1):
        prev = rows[k].entry_hash if k >= 0 else GENESIS_HASH
        if _recomputed(rows[i], prev) == rows[i].entry_hash:
            return list(range(k + 1, i))
    return []


def _reordered(rows: Sequence[ChainRow], chain: list[int]) -> list[Anomaly]:
    """Rows whose stored position is out of step with their chain position."""
    keep = longest_increasing(chain)
    out = []
    for pos, i in enumerate(chain):
        if i in keep:
            continue
        after = f"seq {rows[chain[pos - 1]].seq}" if pos > 0 else "the genesis hash"
        out.append(
            Anomaly(Tamper.REORDERED, i, f"stored at seq {rows[i].seq}, but the chain puts it after {after}")
        )
    return out


def longest_increasing(values: list[int]) -> set[int]:
    """The values of one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []  # smallest tail value of an increasing run of each length
    tail_pos: list[int] = []
    parent = [-1] * len(values)
    for pos, value in enumerate(values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_pos.append(pos)
        else:
            tails[k] = value
            tail_pos[k] = pos
        parent[pos] = tail_pos[k - 1] if k > 0 else -1
    keep: set[int] = set()
    pos = tail_pos[-1] if tail_pos else -1
    while pos >= 0:
        keep.add(values[pos])
        pos = parent[pos]
    return keep


def _columns_out_of_step(
    rows: Sequence[ChainRow], segments: list[list[int]], flagged: set[int]
) -> list[Anomaly]:
    """Linked neighbours whose seq does not count up by one, or whose offsets go backwards."""
    out = []
    for seg in segments:
        for a, b in itertools.pairwise(seg):
            if a in flagged or b in flagged or b != a + 1:
                continue  # reorders and gaps are reported by the other checks
            if rows[b].seq != rows[a].seq + 1:
                out.append(Anomaly(Tamper.EDITED, b, f"seq column changed: follows seq {rows[a].seq}"))
                continue
            before, offset = rows[a].offset, rows[b].offset
            if before is not None and offset is not None and offset <= before:
                out.append(Anomaly(Tamper.EDITED, b, f"offset column out of order after offset {before}"))
    first = segments[0][0] if segments and segments[0] else None
    if first is not None and first not in flagged and rows[first].seq != 0 and first == 0:
        out.append(Anomaly(Tamper.EDITED, first, "seq column changed: the first entry is not seq 0"))
    return out
