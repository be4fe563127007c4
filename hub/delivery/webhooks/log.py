"""What an operator checks a webhook by: every delivery attempt, replay jobs, and rotated secrets.

Three tables in the read-model database, beside `hub_subscriptions` (same METADATA, created with it):

- `hub_webhook_deliveries`: one row per POST attempt (event id, attempt number, time, HTTP status,
  latency, error, outcome, replay id). Rows older than HUB_WEBHOOK_LOG_DAYS are pruned.
- `hub_webhook_replays`: a replay request (from a time) with its per-partition progress, so a
  replay survives a restart and only one node runs it (a lease).

(`hub_webhook_previous_secrets`, the secret a rotation replaced, lives with the subscriptions in store.)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)

from hub.delivery.webhooks.store import MAX_ERROR_CHARS, METADATA
from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, timedelta

    from sqlalchemy import Engine, Row

Outcome = Literal["delivered", "failed"]
ReplayState = Literal["pending", "running", "done", "failed"]
Positions = dict[str, dict[str, list[int]]]  # catalogue topic -> partition -> [next offset, end offset]

deliveries_table = Table(
    "hub_webhook_deliveries",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", String(32), nullable=False),
    Column("event_id", String(64)),
    Column("event_type", String(100)),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", String(MAX_ERROR_CHARS)),
    Column("replay_id", String(32)),
    Index("hub_webhook_deliveries_sub", "subscription_id", "id"),
    Index("hub_webhook_deliveries_at", "at"),
)

replays_table = Table(
    "hub_webhook_replays",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("subscription_id", String(32), nullable=False, index=True),
    Column("from_time", UtcDateTime(), nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("positions", JSON, nullable=False),
    Column("delivered", Integer, nullable=False, default=0),
    Column("error", String(MAX_ERROR_CHARS)),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
)


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One POST attempt, as the delivery log keeps it."""

    subscription_id: str
    event_id: str | None
    event_type: str | None
    topic: str
    partition: int
    offset: int
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    outcome: Outcome
    error: str | None
    replay_id: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    id: str
    subscription_id: str
    from_time: datetime
    requested_by: str
    created_at: datetime
    state: ReplayState
    positions: Positions
    delivered: int
    error: str | None
    finished_at: datetime | None


class DeliveryLog:
    """The delivery log and replay jobs. Synchronous: async callers use `asyncio.to_thread`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- attempts
    def record(self, rows: Sequence[AttemptRow]) -> None:
        if not rows:
            return
        with write_transaction(self._engine) as conn:
            conn.execute(insert(deliveries_table), [_attempt_values(r) for r in rows])

    def attempts(
        self, sub_id: str, *, limit: int = 50, before_id: int | None = None, offset: int = 0
    ) -> tuple[list[tuple[int, AttemptRow]], int]:
        """Newest first: one page of `(id, attempt)` and how many the subscription has in all."""
        t = deliveries_table
        query = select(t).where(t.c.subscription_id == sub_id)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        with self._engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(t).where(t.c.subscription_id == sub_id)
            ).scalar_one()
            rows = conn.execute(query.order_by(t.c.id.desc()).limit(limit).offset(offset)).all()
        return [(r.id, _attempt(r)) for r in rows], int(total)

    def recent(self, since: datetime) -> dict[str, tuple[int, float, float]]:
        """Attempts since `since` by outcome: (count, mean latency ms, max latency ms)."""
        t = deliveries_table
        query = (
            select(t.c.outcome, func.count(), func.avg(t.c.latency_ms), func.max(t.c.latency_ms))
            .where(t.c.at >= since)
            .group_by(t.c.outcome)
        )
        with self._engine.connect() as conn:
            if not inspect(conn).has_table(t.name):
                return {}
            rows = conn.execute(query).all()
        return {str(o): (int(n), float(mean or 0.0), float(top or 0.0)) for o, n, mean, top in rows}

    def prune(self, older_than: datetime) -> int:
        with write_transaction(self._engine) as conn:
            t = deliveries_table
            return int(conn.execute(delete(t).where(t.c.at < older_than)).rowcount)

    # -- replays
    def create_replay(
        self, sub_id: str, from_time: datetime, positions: Positions, requested_by: str, now: datetime
    ) -> Replay:
        replay_id = secrets.token_hex(8)
        with write_transaction(self._engine) as conn:
            conn.execute(
                insert(replays_table).values(
                    id=replay_id,
                    subscription_id=sub_id,
                    from_time=from_time,
                    requested_by=requested_by,
                    created_at=now,
                    state="pending" if _remaining(positions) else "done",
                    positions=positions,
                    delivered=0,
                    finished_at=None if _remaining(positions) else now,
                )
            )
        found = self.replay(replay_id)
        if found is None:  # pragma: no cover - just committed
            raise RuntimeError(f"replay {replay_id} vanished after insert")
        return found

    def replay(self, replay_id: str) -> Replay | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(replays_table).where(replays_table.c.id == replay_id)).first()
        return None if row is None else _replay(row)

    def replays(self, sub_id: str, limit: int = 20) -> list[Replay]:
        t = replays_table
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t).where(t.c.subscription_id == sub_id).order_by(t.c.created_at.desc()).limit(limit)
            ).all()
        return [_replay(r) for r in rows]

    def claim_replays(self, owner: str, now: datetime, lease: timedelta) -> list[Replay]:
        """Replays this node may run now: unfinished, and not leased by a live other node."""
        t = replays_table
        open_states = ("pending", "running")
        with write_transaction(self._engine) as conn:
            ids = [
                r.id
                for r in conn.execute(
                    select(t.c.id).where(
                        t.c.state.in_(open_states),
                        or_(t.c.lease_until.is_(None), t.c.lease_until < now, t.c.lease_owner == owner),
                    )
                )
            ]
            if ids:
                conn.execute(
                    update(t)
                    .where(t.c.id.in_(ids))
                    .values(state="running", lease_owner=owner, lease_until=now + lease)
                )
        return [r for r in (self.replay(i) for i in ids) if r is not None]

    def progress(
        self, replay_id: str, positions: Positions, delivered: int, now: datetime, lease: timedelta
    ) -> None:
        done = not _remaining(positions)
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(replays_table)
                .where(replays_table.c.id == replay_id)
                .values(
                    positions=positions,
                    delivered=delivered,
                    lease_until=now + lease,
                    state="done" if done else "running",
                    finished_at=now if done else None,
                )
            )

    def fail_replay(self, replay_id: str, error: str, now: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(replays_table)
                .where(replays_table.c.id == replay_id)
                .values(state="failed", error=error[:MAX_ERROR_CHARS], finished_at=now)
            )


def _remaining(positions: Positions) -> bool:
    return any(nxt < end for parts in positions.values() for nxt, end in parts.values())


def _attempt_values(r: AttemptRow) -> dict[str, Any]:
    return {
        "subscription_id": r.subscription_id,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "attempt": r.attempt,
        "at": r.at,
        "status_code": r.status_code,
        "latency_ms": r.latency_ms,
        "outcome": r.outcome,
        "error": None if r.error is None else r.error[:MAX_ERROR_CHARS],
        "replay_id": r.replay_id,
    }


def _attempt(row: Row[Any]) -> AttemptRow:
    return AttemptRow(
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        attempt=row.attempt,
        at=row.at,
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        outcome=row.outcome,
        error=row.error,
        replay_id=row.replay_id,
    )


def _replay(row: Row[Any]) -> Replay:
    return Replay(
        id=row.id,
        subscription_id=row.subscription_id,
        from_time=row.from_time,
        requested_by=row.requested_by,
        created_at=row.created_at,
        state=row.state,
        positions={
            t: {p: [int(x) for x in v] for p, v in parts.items()} for t, parts in row.positions.items()
        },
        delivered=row.delivered,
        error=row.error,
        finished_at=row.finished_at,
    )
