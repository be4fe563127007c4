"""Consumer groups of the embedded bus, shared by every process that opens the log file.

Blocking functions over a connection opened by hub.bus.sqlite_log.open_log. No coordinator:

- each member upserts its row in `bus_group_members` (a heartbeat) and every member computes the
  same target assignment from the live members (hub.bus.assignor.round_robin);
- a member only reads partitions it *claims* in `bus_group_claims` (primary key: group +
  partition), so two members never own one partition at the same time. On a heartbeat a member
  releases the claims that left its target and claims the partitions of its target nobody holds;
  a partition moving from A to B is released by A's next heartbeat and claimed by B's after that;
- a member whose heartbeat is older than the session timeout is removed with its claims, and so
  is at once a member whose recorded process has certainly ended (hub.bus.liveness: killed with
  SIGKILL, it could not leave), so a restarted hub reads its partitions without waiting;
- `bus_groups.generation` is bumped whenever membership or claims are released, so members
  notice a rebalance with one cheap read per poll.

At-least-once during a rebalance: records A returned but did not commit before releasing a
partition are read again by B from the committed offset. A commit for a partition the member no
longer holds is rejected (BusError), as Kafka rejects a commit from a stale generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from hub.bus import liveness
from hub.bus.assignor import round_robin
from hub.bus.sqlite_log import now_ms, partitions_of, write_transaction
from hub.errors import BusError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping, Sequence

    from hub.ports import TopicPartition

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Ownership:
    """What a member holds after a heartbeat."""

    generation: int
    owned: dict[int, TopicPartition]  # pid -> (topic, partition)
    committed: dict[int, int]  # pid -> committed next offset, for owned partitions that have one
    ends: dict[int, int]  # pid -> next offset to be written, for owned partitions
    pending: bool  # the target holds partitions another member has not released yet
    rejoined: bool  # the member was absent (first join or expired): no position of it is valid


def generation(conn: sqlite3.Connection, group: str) -> int:
    row = conn.execute("SELECT generation FROM bus_groups WHERE grp = ?", (group,)).fetchone()
    return 0 if row is None else int(row[0])


def _bump(conn: sqlite3.Connection, group: str) -> None:
    conn.execute(
        "INSERT INTO bus_groups (grp, generation) VALUES (?, 1) "
        "ON CONFLICT (grp) DO UPDATE SET generation = generation + 1",
        (group,),
    )


def _expire(conn: sqlite3.Connection, group: str, before_ms: int) -> bool:
    expired = [
        (m, "session_timeout" if heartbeat < before_ms else "process_ended")
        for m, heartbeat, process in conn.execute(
            "SELECT member, heartbeat_ms, process FROM bus_group_members WHERE grp = ?", (group,)
        )
        if heartbeat < before_ms or liveness.certainly_dead(process)
    ]
    for member, reason in expired:
        conn.execute("DELETE FROM bus_group_claims WHERE grp = ? AND member = ?", (group, member))
        conn.execute("DELETE FROM bus_group_members WHERE grp = ? AND member = ?", (group, member))
        logger.info("group_member_expired", group=group, member=member, reason=reason)
    return bool(expired)


def heartbeat(
    conn: sqlite3.Connection, group: str, member: str, topics: Sequence[str], session_timeout_ms: int
) -> Ownership:
    """Refresh `member`, expire silent members, release and claim partitions; say what it now owns."""
    now = now_ms()
    with write_transaction(conn):
        known = conn.execute(
            "SELECT 1 FROM bus_group_members WHERE grp = ? AND member = ?", (group, member)
        ).fetchone()
        conn.execute(
            "INSERT INTO bus_group_members (grp, member, topics, heartbeat_ms, process) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (grp, member) DO UPDATE "
            "SET topics = excluded.topics, heartbeat_ms = excluded.heartbeat_ms, process = excluded.process",
            (group, member, json.dumps(sorted(topics)), now, liveness.identity()),
        )
        changed = _expire(conn, group, now - session_timeout_ms) or known is None
        members = {
            m: frozenset(json.loads(t))
            for m, t in conn.execute("SELECT member, topics FROM bus_group_members WHERE grp = ?", (group,))
        }
        parts = partitions_of(conn, sorted(set().union(*members.values())))
        pid_of = {(topic, partition): pid for pid, topic, partition, _ in parts}
        ends = {pid: nxt for pid, _, _, nxt in parts}
        target = {pid_of[tp] for tp in round_robin(members, list(pid_of))[member]}
        claims: dict[int, str] = dict(
            conn.execute("SELECT pid, member FROM bus_group_claims WHERE grp = ?", (group,)).fetchall()
        )
        mine = {pid for pid, owner in claims.items() if owner == member}
        released = mine - target
        if released:
            conn.executemany(
                "DELETE FROM bus_group_claims WHERE grp = ? AND pid = ?", [(group, pid) for pid in released]
            )
            changed = True
        free = sorted(pid for pid in target if pid not in claims)
        conn.executemany(
            "INSERT INTO bus_group_claims (grp, pid, member) VALUES (?, ?, ?)",
            [(group, pid, member) for pid in free],
        )
        owned = (mine - released) | set(free)
        if changed:
            _bump(conn, group)
        committed = _committed_of(conn, group, sorted(owned))
        gen = generation(conn, group)
    tp_of = {pid: tp for tp, pid in pid_of.items()}
    return Ownership(
        generation=gen,
        owned={pid: tp_of[pid] for pid in owned},
        committed=committed,
        ends={pid: ends[pid] for pid in owned},
        pending=len(owned) < len(target),
        rejoined=known is None,
    )


def touch(conn: sqlite3.Connection, group: str, member: str) -> None:
    """Keep `member` alive between polls without changing what it owns."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE bus_group_members SET heartbeat_ms = ? WHERE grp = ? AND member = ?",
            (now_ms(), group, member),
        )


def leave(conn: sqlite3.Connection, group: str, member: str) -> None:
    """Remove `member` and its claims so the others take its partitions at once."""
    with write_transaction(conn):
        conn.execute("DELETE FROM bus_group_claims WHERE grp = ? AND member = ?", (group, member))
        conn.execute("DELETE FROM bus_group_members WHERE grp = ? AND member = ?", (group, member))
        _bump(conn, group)


def _committed_of(conn: sqlite3.Connection, group: str, pids: Sequence[int]) -> dict[int, int]:
    rows = conn.execute(
        "SELECT pid, next_offset FROM bus_group_offsets "
        "WHERE grp = ? AND pid IN (SELECT value FROM json_each(?))",
        (group, json.dumps(list(pids))),
    )
    return dict(rows.fetchall())


def commit(conn: sqlite3.Connection, group: str, member: str, offsets: Mapping[int, int]) -> None:
    """Store next-offsets for partitions `member` still owns; reject the whole commit otherwise."""
    with write_transaction(conn):
        owned = {
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM bus_group_claims WHERE grp = ? AND member = ?", (group, member)
            )
        }
        lost = set(offsets) - owned
        if lost:
            raise BusError(
                f"commit rejected: {len(lost)} partition(s) of group {group!r} were reassigned by a rebalance"
            )
        now = now_ms()
        conn.executemany(
            "INSERT INTO bus_group_offsets (grp, pid, next_offset, committed_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (grp, pid) DO UPDATE SET next_offset = excluded.next_offset, "
            "committed_ms = excluded.committed_ms",
            [(group, pid, offset, now) for pid, offset in offsets.items()],
        )


def committed(conn: sqlite3.Connection, group: str, tp: TopicPartition) -> int | None:
    row = conn.execute(
        "SELECT o.next_offset FROM bus_group_offsets o JOIN bus_partitions p ON p.pid = o.pid "
        "WHERE o.grp = ? AND p.topic = ? AND p.partition = ?",
        (group, tp[0], tp[1]),
    ).fetchone()
    return None if row is None else int(row[0])
