"""Translators in worker processes, for the paths that translate to answer a sender (MLLP).

Translating a DFT^P03 is about 1 ms of pure Python; on the listener's event loop that CPU is
taken from the listener itself and from the pipeline sharing the process (one GIL). A pool
process translates instead and sends the `Translation` back (unpickling it costs about a third
of translating), so the listener keeps answering while the pipeline runs, and the result is
still handed to the translation worker: a message is translated once.

Each pool process loads the registered adapters and their mappings itself (the same
`MappingSource` rule: the hospital's override file if present, reloaded when it changes) and
says which mapping version it used. Whatever the translator raises is a whole-message failure
there, as in-process (hub.translation.safe). A process that ends (killed) is replaced;
the messages it had are translated in-process. Requests and answers go over each process's
pipe, read on the event loop: no thread hop on the way back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import pickle  # nosec B403: between the hub and the processes it spawned, over their own pipe
import signal
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import structlog

from hub.translation.registry import ADAPTERS
from hub.translation.safe import run_translator
from hub.translation.worker import MappingSource

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess
    from pathlib import Path

    from adapters.base import SourceLocation, TranslateContext, Translation
    from hub.ports import RawRecord

logger = structlog.get_logger()
IN_FLIGHT = 8  # requests per process at once: their bytes stay well under a pipe's buffer
PIPE_BYTES = 32 * 1024  # larger messages are translated in the hub's process (a write must not block)
READY = -1  # what a process answers once it has loaded the adapters


class Unavailable(Exception):
    """No translator process can take the message now (starting, ended, or the message too large):
    the caller translates it in-process."""


# -- inside a pool process
def _serve(conn: Connection, mapping_dir: Path | None, secret: bytes | None) -> None:
    """Answer requests until the hub closes the pipe (or dies: the pipe ends with it)."""
    # Ctrl-C reaches the whole process group: the hub stops and closes the pipe, which ends this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The hub may be gone before this process is ready (killed while it started): end quietly.
    with contextlib.suppress(EOFError, OSError):
        _answer_requests(conn, mapping_dir, secret)


def _answer_requests(conn: Connection, mapping_dir: Path | None, secret: bytes | None) -> None:
    sources = {
        system: MappingSource(adapter, mapping_dir, secret=secret) for system, adapter in ADAPTERS.items()
    }
    conn.send_bytes(pickle.dumps((READY, True, None)))
    while True:
        request = conn.recv_bytes()
        ident, system, record, payload, ctx, location = pickle.loads(request)  # noqa: S301  # nosec B301
        try:
            mapping = sources[system].current()
            ctx = replace(ctx, mapping_version=mapping.version)
            translation = run_translator(ADAPTERS[system], record, payload, mapping, ctx, location=location)
            answer: tuple[Any, ...] = (ident, True, (mapping.version, translation))
        except Exception as exc:  # noqa: BLE001 - e.g. a mapping that does not load: the hub translates it
            answer = (ident, False, f"{type(exc).__name__}: {exc}")
        conn.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


# -- in the hub's process
@dataclass
class _Lane:
    """One pool process and its pipe; answers are read on the event loop (no thread hop)."""

    process: BaseProcess
    conn: Connection
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(IN_FLIGHT))
    waiting: dict[int, asyncio.Future[tuple[str, Translation]]] = field(default_factory=dict)
    reading: bool = False
    ready: bool = False
    broken: bool = False


class TranslatorPool:
    """`await translate(...)` in one of `processes` spawned processes (started by `start`)."""

    def __init__(self, processes: int, mapping_dir: Path | None, secret: bytes | None) -> None:
        if processes < 1:
            raise ValueError("a translator pool needs at least one process")
        self._processes = processes
        self._args = (mapping_dir, secret)
        self._lanes: list[_Lane] = []
        self._ids = itertools.count()

    def _spawn(self) -> _Lane:
        # spawn, not fork: the hub's process has threads (SQLite, the bus) whose locks a forked
        # child would inherit held. Daemonic: ends with the hub.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve, args=(theirs, *self._args), name="hub-translator", daemon=True
        )
        process.start()
        theirs.close()
        lane = _Lane(process, ours)
        with contextlib.suppress(RuntimeError):  # no loop yet: the first translate() reads
            self._read(lane, asyncio.get_running_loop())
        return lane

    def _read(self, lane: _Lane, loop: asyncio.AbstractEventLoop) -> None:
        if not lane.reading:
            loop.add_reader(lane.conn.fileno(), self._answers, lane)
            lane.reading = True

    def start(self) -> None:
        """Start the processes (they import the adapters: seconds on a busy machine); until one
        says it is ready, messages are translated in the hub's process, never kept waiting."""
        self._lanes = [lane for lane in self._lanes if not lane.broken]
        while len(self._lanes) < self._processes:
            self._lanes.append(self._spawn())

    def _lane(self, loop: asyncio.AbstractEventLoop) -> _Lane:
        self.start()
        for lane in self._lanes:
            self._read(lane, loop)
        ready = [lane for lane in self._lanes if lane.ready]
        if not ready:
            raise Unavailable("translator processes still starting")
        return min(ready, key=lambda lane: len(lane.waiting))

    async def translate(
        self,
        system: str,
        record: RawRecord,
        payload: bytes,
        ctx: TranslateContext,
        location: SourceLocation | None = None,
    ) -> tuple[str, Translation]:
        """(mapping version used, translation). Raises Unavailable when no process can take it now
        (the caller translates in-process; a process that ended is replaced)."""
        if len(payload) > PIPE_BYTES:
            raise Unavailable("message too large for the translator pipe")
        loop = asyncio.get_running_loop()
        lane = self._lane(loop)
        async with lane.slots:
            if lane.broken:
                raise Unavailable("translator process ended")
            ident = next(self._ids)
            future: asyncio.Future[tuple[str, Translation]] = loop.create_future()
            lane.waiting[ident] = future
            try:
                lane.conn.send_bytes(pickle.dumps((ident, system, record, payload, ctx, location)))
            except OSError as exc:
                self._broke(lane, exc)
            return await future

    def _answers(self, lane: _Lane) -> None:
        try:
            while lane.conn.poll():
                ident, ok, result = pickle.loads(lane.conn.recv_bytes())  # noqa: S301  # nosec B301
                if ident == READY:
                    lane.ready = True
                    continue
                future = lane.waiting.pop(ident, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(result)
                else:
                    future.set_exception(Unavailable(result))
        except (EOFError, OSError) as exc:
            self._broke(lane, exc)

    def _broke(self, lane: _Lane, exc: BaseException) -> None:
        if lane.broken:
            return
        lane.broken = True
        logger.warning(
            "translator_process_ended", error=f"{type(exc).__name__}: {exc}", waiting=len(lane.waiting)
        )
        self._close(lane)
        for future in lane.waiting.values():
            if not future.done():
                future.set_exception(Unavailable("translator process ended"))
        lane.waiting.clear()

    def _close(self, lane: _Lane) -> None:
        if lane.reading:
            # No loop any more (shutdown), or the pipe closed already: nothing left to unregister.
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_reader(lane.conn.fileno())
            lane.reading = False
        lane.conn.close()  # the process sees the end of its pipe and returns
        if lane.process.is_alive():
            lane.process.join(timeout=0.5)
        if lane.process.is_alive():
            lane.process.kill()

    async def ready(self, timeout_s: float) -> bool:
        """Wait until a process can take messages (for tests and start-up checks); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.start()
        for lane in self._lanes:
            self._read(lane, loop)
        while not any(lane.ready for lane in self._lanes):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
            self.start()  # one that ended while starting is replaced
            for lane in self._lanes:
                self._read(lane, loop)
        return True

    def close(self) -> None:
        for lane in self._lanes:
            if not lane.broken:
                lane.broken = True
                self._close(lane)
        self._lanes = []
