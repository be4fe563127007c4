"""MLLP (Minimal Lower Layer Protocol) framing and the asyncio listener that speaks it.

A frame is VT (0x0B), the message, FS (0x1C), CR (0x0D). TCP delivers a byte stream, so one read
may end mid-frame or hold several frames; senders also leak bytes between frames (a stray CR
or LF, keep-alive noise) or restart a frame they gave up on. `MllpFramer` handles all of these:
bytes outside a frame are skipped up to the next VT and counted, and a VT inside an open frame
abandons the partial frame (VT never occurs inside UTF-8, GBK or GB18030 text). A frame larger
than the limit raises FrameTooLarge as soon as the limit is crossed, not after buffering it all.

`serve_mllp` runs one task per connection and answers that connection's frames in order: it
awaits the handler (which returns the ACK only once the message is durable) before reading the
next frame's answer. An oversize frame is never passed to the handler: the sender gets an AR
when the MSH could be read from the first bytes, and the connection is closed. A handler error
closes the connection without an answer, so the sender retries; it never gets an AA for
something that was not handled. Logs name the peer and sizes, never payload bytes.

Limits, so unauthenticated peers cannot hold the listener's memory or sockets: at most
`max_connections` at once (one more is closed at once, logged); a frame once begun must end
within `read_timeout_s`, and a connection with no frame in progress is closed after
`idle_timeout_s`. A connection holds at most one frame (`max_frame_bytes`, grown as bytes
arrive, never reserved up front) plus one read. Across connections, unfinished frames share one
budget (`max_buffered_bytes`): a frame that would take the listener past it is refused like an
oversize frame (AR "send again", connection closed), so memory stays bounded by the budget plus
one read per connection, not by connections x frame limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from adapters.errors import MalformedMessage
from adapters.his.ack import AckError, build_ack
from adapters.his.header import header

if TYPE_CHECKING:
    import ssl as ssl_module
    from collections.abc import Awaitable, Callable

    Handler = Callable[[bytes, dict[str, str]], Awaitable[bytes]]

logger = structlog.get_logger()

VT = 0x0B
FS = 0x1C
CR = 0x0D
START = b"\x0b"
END = b"\x1c\x0d"
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 300.0
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
HEAD_BYTES = 64 * 1024  # kept from an oversize frame: enough to read its MSH for the AR
READ_BYTES = 64 * 1024
DRAIN_ABOVE = 64 * 1024  # bytes of unsent ACKs before the connection waits for the socket


class FrameTooLarge(MalformedMessage):
    """A frame grew past the limit. `frames`: complete frames that came before it in the same read."""

    def __init__(self, size: int, limit: int, head: bytes, frames: list[bytes]) -> None:
        super().__init__(f"MLLP frame of at least {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.head = head
        self.frames = frames


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP start and end blocks."""
    return START + payload + END


class MllpFramer:
    """Incremental MLLP deframer: feed it reads, get back complete message payloads."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self.discarded = 0  # bytes skipped outside frames or in abandoned frames, for the logs
        self._buffer = bytearray()
        self._in_frame = False
        self._after_fs = False

    @property
    def in_frame(self) -> bool:
        """A frame has begun (VT seen) and not yet ended."""
        return self._in_frame

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame held right now."""
        return len(self._buffer) if self._in_frame else 0

    def feed(self, data: bytes) -> list[bytes]:
        """Consume one read; return the frames it completed, in order."""
        frames: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            if self._after_fs:
                self._after_fs = False
                if data[pos] == CR:
                    pos += 1
                    continue
            if not self._in_frame:
                start = data.find(START, pos)
                if start < 0:
                    self.discarded += size - pos
                    break
                self.discarded += start - pos
                pos = start + 1
                self._in_frame = True
                self._release()
                continue
            end = data.find(FS, pos)
            stop = size if end < 0 else end
            restart = data.find(START, pos, stop)
            if restart >= 0:
                # The sender gave up on the open frame and began another one.
                self.discarded += 1 + len(self._buffer) + (restart - pos)
                self._release()
                pos = restart + 1
                continue
            self._buffer += data[pos:stop]
            if len(self._buffer) > self.max_frame_bytes:
                self._too_large(frames)
            if end < 0:
                break
            frames.append(bytes(self._buffer))
            self._release()
            self._in_frame = False
            self._after_fs = True
            pos = end + 1
        return frames

    def _release(self) -> None:
        # A new buffer, not clear(): a connection that once carried a large frame must not keep
        # its capacity while it idles.
        self._buffer = bytearray()

    def _too_large(self, frames: list[bytes]) -> None:
        size = len(self._buffer)
        head = bytes(self._buffer[:HEAD_BYTES])
        self.discarded += size + 1
        self._release()
        self._in_frame = False  # the rest of that frame is skipped as bytes outside a frame
        raise FrameTooLarge(size, self.max_frame_bytes, head, frames)


async def serve_mllp(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl: ssl_module.SSLContext | None = None,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
) -> asyncio.Server:
    """Start listening. `handler(payload, metadata)` returns the ACK bytes to frame and send.

    `metadata`: `peer` ("host:port") and `tls` ("yes"/"no"). Stop with `server.close()`; on
    Python 3.11 open connections then run until their clients disconnect (or time out).
    """
    if max_connections < 1 or read_timeout_s <= 0 or idle_timeout_s <= 0 or max_buffered_bytes < 1:
        raise ValueError("max_connections, max_buffered_bytes and the timeouts must be positive")
    limits = _Limits(max_frame_bytes, read_timeout_s, idle_timeout_s, _Budget(max_buffered_bytes))
    active: set[_Connection] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(active) >= max_connections:
            # Over the cap: closed before reading anything (nothing to ACK yet); the sender retries.
            logger.warning("mllp_connection_refused", peer=_peer(writer), reason="over the connection cap",
                           max_connections=max_connections)  # fmt: skip
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        connection = _Connection(handler, reader, writer, tls=ssl is not None, limits=limits)
        active.add(connection)
        try:
            await connection.run()
        except asyncio.CancelledError:
            # Shutdown cancels open connections (nothing unanswered was stored-and-ACKed); end the
            # task quietly: Python 3.11's stream callback logs a traceback for a cancelled task.
            return
        finally:
            active.discard(connection)

    return await asyncio.start_server(on_connection, host, port, ssl=ssl)


class _Budget:
    """Bytes of unfinished frames held by all of a listener's connections together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[int, int] = {}

    def room(self, owner: int) -> int:
        """What one connection's frame may grow to: the budget less what the others hold."""
        return self.limit - (self.total - self._held.get(owner, 0))

    def hold(self, owner: int, size: int) -> None:
        self.total += size - self._held.get(owner, 0)
        if size:
            self._held[owner] = size
        else:
            self._held.pop(owner, None)


@dataclass(frozen=True, slots=True)
class _Limits:
    max_frame_bytes: int
    read_timeout_s: float
    idle_timeout_s: float
    budget: _Budget


class _Connection:
    def __init__(
        self,
        handler: Handler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls: bool,
        limits: _Limits,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.reader = reader
        self.writer = writer
        self.peer = _peer(writer)
        self.metadata = {"peer": self.peer, "tls": "yes" if tls else "no"}
        self.framer = MllpFramer(limits.max_frame_bytes)
        self.answered = 0
        self.log = logger.bind(peer=self.peer, tls=tls)

    async def run(self) -> None:
        self.log.info("mllp_connection_opened")
        try:
            await self._serve()
        except TimeoutError:
            self.log.info(
                "mllp_connection_timed_out",
                waiting_for="the rest of a frame" if self.framer.in_frame else "a frame",
                timeout_s=self.limits.read_timeout_s if self.framer.in_frame else self.limits.idle_timeout_s,
            )
        except (ConnectionError, OSError) as exc:  # reset by peer, TLS failure: nothing to answer
            self.log.info("mllp_connection_lost", error_type=type(exc).__name__)
        finally:
            self.limits.budget.hold(id(self), 0)
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError) as exc:
                self.log.debug("mllp_close_failed", error_type=type(exc).__name__)
            self.log.info(
                "mllp_connection_closed",
                answered=self.answered,
                discarded_bytes=self.framer.discarded,
                unfinished_frame_bytes=self.framer.buffered,
            )

    async def _read(self, loop: asyncio.AbstractEventLoop, frame_deadline: float | None) -> bytes:
        """One read, waiting at most until the open frame's deadline, else the idle timeout."""
        timeout = (
            self.limits.idle_timeout_s if frame_deadline is None else max(frame_deadline - loop.time(), 0.0)
        )
        # asyncio.timeout, not wait_for: wait_for wraps each read in a task of its own, and this
        # runs once per frame on every connection.
        async with asyncio.timeout(timeout):
            return await self.reader.read(READ_BYTES)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        frame_deadline: float | None = None
        budget = self.limits.budget
        while data := await self._read(loop, frame_deadline):
            # This connection's frame may grow only as far as the listener's shared budget allows.
            self.framer.max_frame_bytes = max(1, min(self.limits.max_frame_bytes, budget.room(id(self))))
            try:
                frames = self.framer.feed(data)
                budget.hold(id(self), self.framer.buffered)
            except FrameTooLarge as exc:
                budget.hold(id(self), 0)
                if await self._answer(exc.frames):
                    await self._refuse(exc)
                return
            if not await self._answer(frames):
                return
            # A frame still open after this read must end within the read timeout of its start.
            if not self.framer.in_frame:
                frame_deadline = None
            elif frame_deadline is None or frames:
                frame_deadline = loop.time() + self.limits.read_timeout_s

    async def _answer(self, frames: list[bytes]) -> bool:
        for payload in frames:
            try:
                ack = await self.handler(payload, dict(self.metadata))
            except Exception as exc:  # noqa: BLE001 - logged; the connection closes unanswered
                # Only the type: an exception's text can quote the payload.
                self.log.error("mllp_handler_failed", error_type=type(exc).__name__, frame_bytes=len(payload))  # noqa: TRY400
                return False
            self.writer.write(START + ack + END)
            # Drain only when the socket buffer backs up: a drain per small ACK costs more than the ACK.
            if self.writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
                await self.writer.drain()
            self.answered += 1
        return True

    async def _refuse(self, exc: FrameTooLarge) -> None:
        crowded = exc.limit < self.limits.max_frame_bytes
        if crowded:
            budget = self.limits.budget
            self.log.warning(
                "mllp_buffer_budget_full",
                frame_bytes_at_least=exc.size,
                budget=budget.limit,
                held=budget.total,
            )
            reason = (
                f"message refused: the listener's {budget.limit}-byte buffer is held by other "
                "connections' unfinished messages; send again"
            )
        else:
            self.log.warning("mllp_frame_too_large", frame_bytes_at_least=exc.size, limit=exc.limit)
            reason = f"message refused: larger than the {exc.limit}-byte limit (at least {exc.size} bytes)"
        head = exc.head
        ends = [i for i in (head.find(b"\r"), head.find(b"\n")) if i >= 0]
        if not ends:
            return  # the MSH does not fit in the kept bytes: nothing to address an AR to
        try:
            inbound = header(head[: min(ends)])
        except MalformedMessage:
            return
        error = AckError(message=reason, hl7_code="207")
        self.writer.write(frame(build_ack(inbound, "AR", error=error, now=datetime.now(UTC))))
        await self.writer.drain()
        self.answered += 1


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)
