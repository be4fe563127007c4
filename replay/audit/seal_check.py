"""The checkpoints the ledger keeps, read back for verify: unsigned rows and signed seals.

A seal whose MAC does not verify with the hub's key is a finding (forged), never a mark the chain
is held to; a valid head seal's count is what a chain must still reach (projections.audit.seals).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select

from projections.audit.ledger import checkpoints, entries, seals
from projections.audit.seals import seal_mac
from replay.audit.chain import Tamper
from replay.audit.report import Finding

if TYPE_CHECKING:
    from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class Mark:
    count: int
    head_hash: str
    source: str


def seal_marks(
    conn: Connection, key: bytes, marks: dict[tuple[str, int], list[Mark]], findings: list[Finding]
) -> tuple[int, dict[tuple[str, int], int]]:
    """Add the ledger's valid seals to `marks`, a finding per forged one; return (count, head counts)."""
    if not inspect(conn).has_table(seals.name):
        return 0, {}
    c = seals.c
    heads: dict[tuple[str, int], int] = {}
    checked = 0
    query = select(c.topic, c.partition, c.kind, c.count, c.head_hash, c.mac).order_by(
        c.topic, c.partition, c.count
    )
    for topic, partition, kind, count, head_hash, mac in conn.execute(query):
        checked += 1
        expected = seal_mac(key, kind, topic, partition, count=count, head_hash=head_hash)
        if not hmac.compare_digest(expected, str(mac)):
            findings.append(
                Finding(
                    Tamper.FORGED_CHECKPOINT,
                    topic,
                    partition,
                    None,
                    None,
                    None,
                    f"the kept {kind} checkpoint at count {count:,} is not signed with this hub's key: "
                    "written or altered by someone without HUB_SECRET_KEY",
                )
            )
            continue
        source = "ledger's signed head" if kind == "head" else "ledger's signed checkpoint"
        marks.setdefault((topic, partition), []).append(Mark(count, head_hash, source))
        if kind == "head":
            heads[topic, partition] = count
    return checked, heads


def sealed_heads(conn: Connection, key: bytes) -> dict[tuple[str, int], int]:
    """The count of every chain's head seal whose MAC verifies with `key`."""
    if not inspect(conn).has_table(seals.name):
        return {}
    c = seals.c
    query = select(c.topic, c.partition, c.count, c.head_hash, c.mac).where(c.kind == "head")
    out = {}
    for topic, partition, count, head_hash, mac in conn.execute(query):
        expected = seal_mac(key, "head", topic, partition, count=count, head_hash=head_hash)
        if hmac.compare_digest(expected, str(mac)):
            out[topic, partition] = int(count)
    return out


def appended(conn: Connection, topic: str, partition: int, sealed: int, count: int) -> Finding:
    """Entries after the chain's signed head: appended by someone who could not sign the new head."""
    c = entries.c
    row = conn.execute(
        select(c.offset, c.event_id).where(c.topic == topic, c.partition == partition, c.seq == sealed)
    ).first()
    return Finding(
        Tamper.INSERTED,
        topic,
        partition,
        sealed,
        None if row is None else row.offset,
        None if row is None else row.event_id,
        f"{count - sealed:,} entr{'y' if count - sealed == 1 else 'ies'} after the signed head "
        f"(count {sealed:,}): added without the hub's key",
        last_seq=count - 1,
    )


def stored_marks(conn: Connection) -> dict[tuple[str, int], list[Mark]]:
    out: dict[tuple[str, int], list[Mark]] = {}
    if not inspect(conn).has_table(checkpoints.name):
        return out
    c = checkpoints.c
    # Unpacked, not by name: Row.count is the tuple method.
    for topic, partition, count, head_hash in conn.execute(
        select(c.topic, c.partition, c.count, c.head_hash)
    ):
        out.setdefault((topic, partition), []).append(Mark(count, head_hash, "ledger's own checkpoint"))
    return out
