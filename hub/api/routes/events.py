"""`GET /events/stream`: canonical and derived events as Server-Sent Events, resumable.

For downstream applications that want the hub's events without a Kafka client. Each SSE
message is one event:

    id: <cursor>
    event: asset.relocated
    data: {"event_id": ..., "type": "asset.relocated", ...}      (the event's canonical JSON)

The `id` is a cursor: the next offset of every partition streamed so far. A client that
reconnects with `Last-Event-ID: <cursor>` (browsers' EventSource do it by themselves) resumes
exactly after the last event it received, so nothing is lost or repeated across a reconnect.
Without a cursor, `from=now` (default) starts at the end of the log, `from=beginning` at the
start, and `from=<ISO time>` at the first event recorded from then on (seek by timestamp).

Filters: `topics=` (catalogue names, comma-separated; default every canonical and derived topic)
and `types=` (event types, or `asset.*`-style prefixes). `limit=` ends the stream after that many
events (for batch pulls and tests). A comment line is sent every `HEARTBEAT_S` seconds so
proxies keep the connection open.

Needs the stream permission (app, admin: the README's roles table) and the whole hospital:
department-scoped keys get 403 (hub.api.scope.whole_hospital), since most events do not say
which department they concern. Opening a stream is recorded on the audit
ledger (events can carry pseudonymised patient tokens).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi import status as http
from fastapi.responses import StreamingResponse

from hub.api.deps import BusDep, ServicesDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import require, whole_hospital
from hub.api.security import AuditDep  # noqa: TC001
from hub.auth.roles import Permission
from hub.delivery.webhooks.rules import TypeFilter
from topics.catalogue import CANONICAL_TOPICS, DERIVED_TOPICS

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator

    from prometheus_client import Gauge

    from hub.ports import Consumer, EventBus, TopicPartition

logger = structlog.get_logger()

router = APIRouter(
    prefix="/events",
    tags=["events"],
    dependencies=[require(Permission.STREAM), whole_hospital("the event stream")],
)

STREAMABLE = {spec.name for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS)}
HEARTBEAT_S = 15.0
POLL_S = 1.0
MAX_CURSOR_CHARS = 4096
UNPROCESSABLE = 422  # starlette renamed its constant; the number is the contract


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a stream stands: the next offset of each partition, and the `from=` time if any.

    Partitions not yet seen in a stream started at a time resume from that time again.
    """

    positions: dict[TopicPartition, int]
    since_ms: int | None = None

    def encode(self) -> str:
        """Compact base64url JSON: {"p": {topic: {partition: next offset}}, "t": since_ms}."""
        by_topic: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(self.positions.items()):
            by_topic.setdefault(topic, {})[str(partition)] = offset
        body: dict[str, object] = {"p": by_topic}
        if self.since_ms is not None:
            body["t"] = self.since_ms
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor in `text`; raises ValueError for anything this stream did not write."""
        bad = ValueError("not a cursor from this stream")
        if len(text) > MAX_CURSOR_CHARS:
            raise bad
        try:
            body = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            raise bad from None
        if not isinstance(body, dict) or not isinstance(body.get("p"), dict):
            raise bad
        since = body.get("t")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
            raise bad
        positions: dict[TopicPartition, int] = {}
        for topic, parts in body["p"].items():
            if not isinstance(parts, dict):
                raise bad
            for partition, offset in parts.items():
                if not (partition.isdigit() and type(offset) is int and offset >= 0):
                    raise bad
                positions[(topic, int(partition))] = offset
        return cls(positions, since)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


async def _start(
    consumer: Consumer, bus: EventBus, names: dict[str, str], cursor: Cursor | None, start: str
) -> Cursor:
    """Seek `consumer` where the stream starts, and return that start as a full cursor."""
    if cursor is not None:
        if cursor.since_ms is not None:
            await consumer.seek_to_timestamp(cursor.since_ms)
        for (topic, partition), offset in cursor.positions.items():
            if topic in names:
                await consumer.seek((names[topic], partition), offset)
        return cursor
    if start in ("now", "beginning"):
        positions: dict[TopicPartition, int] = {}
        for short, full in names.items():
            for partition, end in (await bus.end_offsets(full)).items():
                positions[(short, partition)] = end if start == "now" else 0
                await consumer.seek((full, partition), positions[(short, partition)])
        return Cursor(positions)
    since_ms = int(datetime.fromisoformat(start).timestamp() * 1000)
    await consumer.seek_to_timestamp(since_ms)
    return Cursor({}, since_ms)


def _topics(topics: str | None) -> list[str]:
    chosen = _split(topics) or sorted(STREAMABLE)
    unknown = [t for t in chosen if t not in STREAMABLE]
    if unknown:
        raise HTTPException(
            UNPROCESSABLE,
            f"not a streamable topic: {', '.join(unknown)}; see `hub topics list`",
        )
    return chosen


def _cursor(last_event_id: str | None, start: str) -> Cursor | None:
    if last_event_id:
        try:
            return Cursor.decode(last_event_id)
        except ValueError as exc:
            raise HTTPException(http.HTTP_400_BAD_REQUEST, f"Last-Event-ID: {exc}") from None
    if start not in ("now", "beginning"):
        try:
            aware = datetime.fromisoformat(start).tzinfo is not None
        except ValueError:
            aware = False
        if not aware:
            raise HTTPException(
                UNPROCESSABLE,
                f"from={start!r}: now, beginning or an ISO time with its offset",
            )
    return None


async def _counted(stream: AsyncIterator[bytes], clients: Gauge | None) -> AsyncIterator[bytes]:
    """`stream`, counted in the open-streams gauge (hub_sse_clients) while it is open."""
    if clients is not None:
        clients.inc()
    try:
        async for chunk in stream:
            yield chunk
    finally:
        if clients is not None:
            clients.dec()


async def _sse(
    request: Request,
    consumer: Consumer,
    *,
    begun: Cursor,
    unprefixed: dict[str, str],
    wanted: TypeFilter,
    limit: int | None,
    draining: asyncio.Event,
) -> AsyncIterator[bytes]:
    positions = dict(begun.positions)
    sent = 0
    idle = 0.0
    try:
        yield b"retry: 3000\n\n"
        while limit is None or sent < limit:
            # `draining`: the server is stopping; end the stream so the client reconnects elsewhere
            # (or later) from its last id, instead of being cut off mid-response.
            if await request.is_disconnected() or draining.is_set():
                return
            records = await consumer.poll(max_records=500, timeout_s=POLL_S)
            if not records:
                idle += POLL_S
                if idle >= HEARTBEAT_S:
                    idle = 0.0
                    yield b": keepalive\n\n"
                continue
            idle = 0.0
            for record in records:
                positions[(unprefixed.get(record.topic, record.topic), record.partition)] = record.offset + 1
                event_type = (record.header("event_type") or b"").decode()
                if not wanted(event_type):
                    continue
                cursor = Cursor(positions, begun.since_ms).encode()
                yield f"id: {cursor}\nevent: {event_type}\ndata: {record.value.decode()}\n\n".encode()
                sent += 1
                if limit is not None and sent >= limit:
                    return
    finally:
        await consumer.close()


@router.get(
    "/stream",
    response_class=StreamingResponse,
    summary="Canonical and derived events as Server-Sent Events (resumable with Last-Event-ID)",
    responses={http.HTTP_200_OK: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    bus: BusDep,
    services: ServicesDep,
    audit: AuditDep,
    *,
    topics: Annotated[str | None, Query(description="Catalogue topics, comma-separated")] = None,
    types: Annotated[
        str | None, Query(description="Event types or prefixes (asset.*), comma-separated")
    ] = None,
    start: Annotated[
        str, Query(alias="from", description="now (default), beginning, or an ISO time", max_length=40)
    ] = "now",
    limit: Annotated[int | None, Query(ge=1, description="End the stream after this many events")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    chosen = _topics(topics)
    cursor = _cursor(last_event_id, start)
    prefix = services.topic_prefix
    names = {t: f"{prefix}{t}" for t in chosen}
    await audit.record("events.stream", ",".join(chosen))
    consumer = await bus.consumer(list(names.values()), group=None, from_beginning=False)
    try:
        begun = await _start(consumer, bus, names, cursor, start)
    except BaseException:
        await consumer.close()
        raise
    unprefixed = {full: short for short, full in names.items()}
    return StreamingResponse(
        _counted(
            _sse(
                request,
                consumer,
                begun=begun,
                unprefixed=unprefixed,
                wanted=TypeFilter.of(_split(types)),
                limit=limit,
                draining=services.draining,
            ),
            None if services.process_metrics is None else services.process_metrics.sse_clients,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
