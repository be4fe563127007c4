"""HIS (HL7 v2): translation, tokenising and ACK rates, and MLLP round trips with 1, 4 and 16 connections.

- translation: decode + tokenise + translate of the bundled samples (examples/his, the malformed
  one left out), cycled for two seconds on one core;
- tokenise only: decode + split into messages + tokenise;
- ACK build: the template builder, and hl7apy building the same ACK (the reason for the template);
- MLLP: a server in a child process (so client and server each have a core), clients here, each
  connection sending one message and waiting for its ACK before the next. Three servers:
  (a) a bare asyncio MLLP server that only ACKs (a constant ACK, no parsing);
  (b) serve_mllp whose handler reads the MSH and builds the real ACK, no storage;
  (c) serve_mllp whose handler appends the raw bytes to a SQLite file (WAL, synchronous=FULL)
      through `GroupCommitWriter` below and ACKs only once the transaction is committed.
  Reported per connection count: messages/s and p99 ACK latency.

`GroupCommitWriter` is a stand-in, written here, for what the hub's raw archive must do: it
gathers the appends that arrive while a commit is running into the next single transaction, so
sixteen waiting senders cost one fsync, not sixteen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext
from adapters.errors import MalformedMessage
from adapters.his import ADAPTER
from adapters.his.ack import build_ack
from adapters.his.batch import split_text
from adapters.his.decode import decode
from adapters.his.header import header
from adapters.his.mapping import default_mapping
from adapters.his.mllp import MllpFramer, frame, serve_mllp
from adapters.his.tokenize import tokenise
from hub.ports import RawRecord

if TYPE_CHECKING:
    from bench.report import Report

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "his"
SECONDS = 2.0
MLLP_WARMUP = 0.5
MLLP_SECONDS = 2.5
CONNECTIONS = (1, 4, 16)
SERVERS = (
    ("bare", "bare asyncio server, constant ACK"),
    ("listener", "serve_mllp, MSH read + ACK built, no storage"),
    ("durable", "serve_mllp + SQLite FULL, group commit"),
    ("hub", "hub MLLP ingest (real archive: translate, store, ACK)"),
    ("hub-storage", "hub MLLP ingest, HUB_MLLP_ACK_AFTER=storage"),
)


def load_samples() -> list[tuple[RawRecord, bytes]]:
    samples = []
    for path in sorted(SAMPLES.glob("*.hl7")):
        payload = path.read_bytes()
        try:
            inbound = header(payload)
        except MalformedMessage:
            continue  # the deliberately malformed sample
        raw = RawRecord(
            raw_ref=f"bench-{path.name}", system="his", site="bench", message_id=inbound.control_id,
            sha256="0" * 64, size=len(payload), transport="mllp", received_at=datetime.now(UTC),
        )  # fmt: skip
        samples.append((raw, payload))
    return samples


def rate(work, seconds: float = SECONDS) -> float:
    """Calls of `work` per second (each call handles one message)."""
    work()
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        work()
        count += 1
    return count / elapsed


def measure_translation(report: Report, samples: list[tuple[RawRecord, bytes]]) -> None:
    mapping = default_mapping().with_secret(b"bench-secret-bench-secret-0123")
    ctx = TranslateContext(
        site="bench",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )
    events = sum(len(ADAPTER.translate(raw, payload, mapping, ctx).events) for raw, payload in samples)
    cycle = iter(())

    def translate_one() -> None:
        nonlocal cycle
        item = next(cycle, None)
        if item is None:
            cycle = iter(samples)
            item = next(cycle)
        ADAPTER.translate(item[0], item[1], mapping, ctx)

    label = f"{len(samples)} sample messages, {events} events"
    report.add("his", f"HL7 translation: decode+tokenise+translate ({label})", rate(translate_one), "msg/s",
               aim=">= 10,000", note="one core; samples cycled")  # fmt: skip

    payloads = [payload for _, payload in samples]
    position = 0

    def tokenise_one() -> None:
        nonlocal position
        payload = payloads[position % len(payloads)]
        position += 1
        decoded = decode(payload)
        for text in split_text(decoded.text):
            tokenise(text, decoded.encoding)

    report.add(
        "his", "HL7 tokenise only: decode+split+tokenise", rate(tokenise_one), "msg/s", note="one core"
    )


def measure_acks(report: Report, samples: list[tuple[RawRecord, bytes]]) -> None:
    headers = [header(payload) for _, payload in samples]
    now = datetime.now(UTC)
    position = 0

    def ack_one() -> None:
        nonlocal position
        build_ack(headers[position % len(headers)], "AA", now=now)
        position += 1

    report.add("his", "ACK build (template)", rate(ack_one, 1.0), "ACK/s", note="one core")
    from hl7apy.core import Message

    def hl7apy_one() -> None:
        h = headers[0]
        message = Message("ACK", version="2.5")
        message.msh.msh_9 = f"ACK^{h.trigger_event}^ACK"
        message.msh.msh_10 = "ACK" + h.control_id
        message.msa.msa_1 = "AA"
        message.msa.msa_2 = h.control_id
        message.to_er7()

    report.add("his", "ACK build (hl7apy, reference)", rate(hl7apy_one, 1.0), "ACK/s",
               note="why the hot path uses the template")  # fmt: skip


# -- MLLP servers (run in a child process) ------------------------------------------------------


class GroupCommitWriter:
    """Appends raw messages to SQLite (WAL, synchronous=FULL); concurrent appends share one commit.

    A stand-in for the hub's raw archive, for this benchmark only. While one transaction is being
    committed on the writer thread, new appends queue up; when it finishes they all go into the
    next transaction. Each `append` returns only after its transaction is durable.

    Without more, batches alternate 1 and n-1 under n busy senders: the first sender to answer its
    ACK starts a commit alone while the others are still on the wire. So a flush that finds the
    previous batch was larger than one lingers (at most LINGER_S) until as many appends are
    waiting, like PostgreSQL's commit_delay; an idle single sender never waits.
    """

    LINGER_S = 0.0005

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS raw"
            " (id INTEGER PRIMARY KEY, commit_no INTEGER, received_at TEXT, size INTEGER, payload BLOB)"
        )
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._last_batch = 1
        self.transactions = 0

    async def append(self, payload: bytes) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((payload, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            deadline = loop.time() + self.LINGER_S
            while len(self._pending) < self._last_batch and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0)  # a bounded spin: let senders already on their way append first
            batch, self._pending = self._pending, []
            self._last_batch = len(batch)
            try:
                await loop.run_in_executor(self._executor, self._write, [p for p, _ in batch])
            except sqlite3.Error as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for _, future in batch:
                future.set_result(None)

    def _write(self, payloads: list[bytes]) -> None:
        now = datetime.now(UTC).isoformat()
        self._db.execute("BEGIN IMMEDIATE")
        commit_no = self.transactions + 1
        self._db.executemany(
            "INSERT INTO raw (commit_no, received_at, size, payload) VALUES (?, ?, ?, ?)",
            [(commit_no, now, len(p), p) for p in payloads],
        )
        self._db.execute("COMMIT")
        self.transactions += 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()


BARE_ACK = frame(b"MSH|^~\\&|HUB|H|HIS|H|20240101000000||ACK^P03^ACK|ACK1|P|2.5\rMSA|AA|1\r")


async def _bare_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    framer = MllpFramer()
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            for _ in framer.feed(data):
                writer.write(BARE_ACK)
            await writer.drain()
    writer.close()


async def _serve(kind: str, db_path: str, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    writer: GroupCommitWriter | None = None
    if kind == "bare":
        server = await asyncio.start_server(_bare_connection, "127.0.0.1", 0)
    elif kind == "listener":

        async def answer(payload: bytes, _metadata: dict[str, str]) -> bytes:
            return build_ack(header(payload), "AA", now=datetime.now(UTC))

        server = await serve_mllp(answer, "127.0.0.1", 0)
    elif kind.startswith("hub"):
        ack_after = "storage" if kind == "hub-storage" else "translation"
        await _serve_hub(Path(db_path).parent / kind, ports, stop, ack_after)
        return
    else:
        store = writer = GroupCommitWriter(Path(db_path))

        async def store_then_answer(payload: bytes, _metadata: dict[str, str]) -> bytes:
            inbound = header(payload)
            await store.append(payload)  # ACK only once the bytes are committed (synchronous=FULL)
            return build_ack(inbound, "AA", now=datetime.now(UTC))

        server = await serve_mllp(store_then_answer, "127.0.0.1", 0)
    ports.put(server.sockets[0].getsockname()[1])
    await asyncio.to_thread(stop.wait)
    server.close()
    if writer:
        writer.close()
    ports.put("stopped")


async def _serve_hub(
    data_dir: Path, ports: multiprocessing.Queue, stop: multiprocessing.Event, ack_after: str
) -> None:  # type: ignore[type-arg]
    """The hub's own MLLP path: header, pure translation, group-committed archive with the ACK."""
    from hub.bootstrap import build_hub
    from hub.ingest.mllp import MllpIngest
    from hub.settings import Settings

    async with build_hub(Settings(data_dir=data_dir, mllp_ack_after=ack_after)) as hub:
        server = await serve_mllp(MllpIngest(hub).handle, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(stop.wait)
        server.close()
    ports.put("stopped")


def server_main(kind: str, db_path: str, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_serve(kind, db_path, ports, stop))


async def _round_trips(
    port: int, connections: int, messages: list[tuple[bytes, bytes]]
) -> tuple[int, list[float]]:
    """Each connection sends one frame and waits for its ACK, again and again; latencies in the window."""
    started = time.perf_counter()
    window = (started + MLLP_WARMUP, started + MLLP_WARMUP + MLLP_SECONDS)

    async def connection(offset: int) -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        framer = MllpFramer()
        latencies: list[float] = []
        position = offset
        while (now := time.perf_counter()) < window[1]:
            payload, control_id = messages[position % len(messages)]
            # A new MSH-10 every time: the same one again would be a resend, answered from storage.
            writer.write(frame(payload.replace(control_id, b"%s-%d-%d" % (control_id, offset, position), 1)))
            position += 1
            answered: list[bytes] = []
            while not answered:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                answered = framer.feed(data)
            done = time.perf_counter()
            if done >= window[0]:
                latencies.append(done - now)
        writer.close()
        return latencies

    results = await asyncio.gather(*(connection(i) for i in range(connections)))
    latencies = [latency for result in results for latency in result]
    return len(latencies), latencies


def _commits(database: Path) -> tuple[int, int]:
    """(commits, rows) written so far by the durable server, read from its SQLite file."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        commits, rows = db.execute("SELECT COALESCE(MAX(commit_no), 0), COUNT(*) FROM raw").fetchone()
    return int(commits), int(rows)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


async def measure_mllp(report: Report, samples: list[tuple[RawRecord, bytes]]) -> None:
    messages = [
        (payload, header(payload).control_id.encode())
        for _, payload in samples
        if header(payload).messages == 1
    ]
    context = multiprocessing.get_context("spawn")
    rates: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-his-") as folder:
        for kind, description in SERVERS:
            ports = context.Queue()
            stop = context.Event()
            database = Path(folder) / "raw.db"
            process = context.Process(target=server_main, args=(kind, str(database), ports, stop))
            process.start()
            try:
                port = await asyncio.to_thread(ports.get, timeout=60)
            except queue.Empty:
                process.terminate()
                report.skip(f"MLLP {description}", "the server process did not start within 60 s")
                continue
            try:
                for connections in CONNECTIONS:
                    before = _commits(database) if kind == "durable" else (0, 0)
                    count, latencies = await _round_trips(port, connections, messages)
                    rates[kind, connections] = count / MLLP_SECONDS
                    report.add(
                        "his", f"MLLP {description}, {connections} conn", rates[kind, connections], "msg/s"
                    )
                    report.add("his", f"MLLP {description}, {connections} conn: p99 ACK latency",
                               p99(latencies) * 1000, "ms")  # fmt: skip
                    if kind == "durable":
                        after = _commits(database)
                        per_commit = (after[1] - before[1]) / max(after[0] - before[0], 1)
                        report.add("his", f"MLLP durable, {connections} conn: messages per SQLite commit",
                                   per_commit, "msg/commit")  # fmt: skip
            finally:
                stop.set()
                await asyncio.to_thread(ports.get, timeout=60)
                process.join(10)
    for kind in ("durable", "hub", "hub-storage"):
        if (kind, 16) not in rates or ("bare", 16) not in rates:
            report.skip(f"MLLP {kind} vs bare ratio", "a server did not run")
            continue
        ratio = 100 * rates[kind, 16] / rates["bare", 16]
        report.add("his", f"MLLP {kind} vs bare ACK-only at 16 connections", ratio, "%", aim=">= 25%",
                   note="same run, server and clients in separate processes")  # fmt: skip


async def run(report: Report) -> None:
    samples = load_samples()
    if not samples:
        report.skip("HIS benchmarks", f"no samples in {SAMPLES} (run examples/his/generate.py)")
        return
    measure_translation(report, samples)
    measure_acks(report, samples)
    await measure_mllp(report, samples)
