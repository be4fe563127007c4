"""End to end over MLLP, as a user runs it: DFT^P03 into a real `hub serve`, beside its peers, in one run.

(c) Throughput: 16 connections, each sending one message and waiting for its ACK (closed loop),
    REPEATS windows of WINDOW_S; the hub (default HUB_MLLP_ACK_AFTER=translation: durable + translated
    before AA) vs python-hl7's asyncio MLLP server (parse + ACK, no storage) and a bare asyncio
    server answering a constant ACK. Each server is its own process; the clients run here.
(d) Latency at a sustained offered rate (200 and 500 msg/s for 60 s x BENCH_SCALE, at least 10 s):
    16 connections on a fixed schedule (one message in flight each; a late ACK delays the next send,
    which the note reports as the achieved rate). Every k-th message carries a unique device serial;
    `/inventory/trace/{code}` is polled for it until it answers, giving ACK -> visible. Reports
    p50/p99, the fraction visible within the window + GRACE_S, and whether the lag grew (backlog).
Messages: the single-message DFT^P03 samples in examples/his, each with a fresh MSH-10.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from adapters.his.header import header
from adapters.his.mllp import MllpFramer, frame
from bench.report import load_note
from bench.whole_hub import HubServe, accepts, free_port, hub_env, kill_group, scale, spawn

if TYPE_CHECKING:
    import subprocess

    from bench.report import Report

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "his"
DFT = ("01_dft_p03_ptca_prt_utf8.hl7", "02_dft_p03_pacemaker_gbk.hl7", "03_dft_p03_hip_gb18030.hl7")
TRACED = "01_dft_p03_ptca_prt_utf8.hl7"
TRACED_SERIAL = b"(21)SN0001"
TRACE_CODE = "(01)06938123450010(17)271231(10)LOT2024A(21){serial}"
CONNECTIONS = 16
REPEATS = 3
WARMUP_S = 0.5
OFFERED = (200, 500)
TRACKED = 400  # messages followed to visibility per offered-rate run
GRACE_S = 30.0
FOLLOW = 8  # tracked codes polled at once


def dft_messages() -> list[tuple[bytes, bytes]]:
    out = []
    for name in DFT:
        payload = (SAMPLES / name).read_bytes()
        out.append((payload, header(payload).control_id.encode()))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def _ack(reader: asyncio.StreamReader, framer: MllpFramer) -> bytes:
    while True:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        if acks := framer.feed(data):
            return acks[0]


async def closed_loop(
    port: int | list[int],
    messages: list[tuple[bytes, bytes]],
    seconds: float,
    failures: list[str] | None = None,
) -> tuple[float, list[float]]:
    """CONNECTIONS senders, one message in flight each, `seconds` after a warm-up: (msg/s, ACK latencies).

    With several ports (one per hub process) the connections are spread over them in turn. Given
    a `failures` list, a connection that breaks ends there and says why in it (else it raises).
    """
    ports = port if isinstance(port, list) else [port]
    nonce = uuid.uuid4().hex[:6].encode()
    started = time.perf_counter()
    window = (started + WARMUP_S, started + WARMUP_S + seconds)

    async def connection(offset: int) -> list[float]:
        framer, latencies, position = MllpFramer(), [], offset
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[offset % len(ports)])
        except OSError as exc:
            if failures is None:
                raise
            failures.append(f"connect to {ports[offset % len(ports)]}: {exc}")
            return latencies
        try:
            while (now := time.perf_counter()) < window[1]:
                payload, control = messages[position % len(messages)]
                unique = b"%s-%s-%d-%d" % (control, nonce, offset, position)
                writer.write(frame(payload.replace(control, unique, 1)))
                position += 1
                await _ack(reader, framer)
                if (done := time.perf_counter()) >= window[0]:
                    latencies.append(done - now)
        except OSError as exc:  # ConnectionError included
            if failures is None:
                raise
            failures.append(f"connection to {ports[offset % len(ports)]} broke: {exc!r}")
        finally:
            writer.close()
        return latencies

    results = await asyncio.gather(*(connection(i) for i in range(CONNECTIONS)))
    latencies = [x for r in results for x in r]
    return len(latencies) / seconds, latencies


async def start_peer(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "bench.mllp_peers", kind, str(port)], hub_env(work), work, work / f"{kind}.log"
    )
    for _ in range(300):
        if accepts(port):
            return proc, port
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.1)
    kill_group(proc)
    raise RuntimeError(f"MLLP peer {kind} did not start: {(work / f'{kind}.log').read_text()[-800:]}")


async def throughput(report: Report, work: Path, seconds: float) -> None:
    messages = dft_messages()
    measured: dict[str, tuple[list[float], list[float]]] = {}
    notes: dict[str, str] = {}
    for kind in ("bare", "hl7", "hub"):
        notes[kind] = load_note()
        rates, latencies = [], []
        if kind == "hub":
            async with HubServe(work / "hub-mllp") as hub:
                for _ in range(REPEATS):
                    rate, lat = await closed_loop(hub.mllp_port, messages, seconds)
                    rates.append(rate)
                    latencies += lat
        else:
            proc, port = await start_peer(kind, work)
            try:
                for _ in range(REPEATS):
                    rate, lat = await closed_loop(port, messages, seconds)
                    rates.append(rate)
                    latencies += lat
            finally:
                kill_group(proc)
        measured[kind] = (rates, latencies)
    label = {
        "bare": "bare asyncio ACK server",
        "hl7": "python-hl7 MLLP server (parse + ACK)",
        "hub": "hub serve",
    }
    for kind in ("bare", "hl7"):
        rates, latencies = measured[kind]
        report.add(
            "e2e-mllp",
            f"MLLP DFT^P03, {CONNECTIONS} conn: {label[kind]}",
            0,
            "msg/s",
            samples=rates,
            note=f"{REPEATS} x {seconds:.0f} s; ACK p50 {1000 * percentile(latencies, 0.5):.1f} ms,"
            f" p99 {1000 * percentile(latencies, 0.99):.1f} ms; {notes[kind]}",
        )
    rates, latencies = measured["hub"]
    p50, p99 = 1000 * percentile(latencies, 0.5), 1000 * percentile(latencies, 0.99)
    common = f"{REPEATS} x {seconds:.0f} s, ACK after translation + durable archive"
    common += f"; ACK p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    for kind, aim in (("hl7", ">= 1.0"), ("bare", "")):
        report.add(
            "e2e-mllp",
            f"MLLP DFT^P03, {CONNECTIONS} conn: hub serve vs {label[kind]}",
            0,
            "msg/s",
            samples=rates,
            peer=statistics.median(measured[kind][0]),
            peer_label=label[kind],
            aim=aim,
            note=f"{common}; {notes['hub']}",
        )
    for q in (0.5, 0.99):
        report.add(
            "e2e-mllp",
            f"MLLP DFT^P03 under hub serve, {CONNECTIONS} conn: ACK p{int(q * 100)}",
            1000 * percentile(latencies, q),
            "ms",
            peer=1000 * percentile(measured["hl7"][1], q),
            peer_label="python-hl7",
        )


class Offered:
    """One offered-rate run: what was sent, when each tracked message was ACKed and became visible."""

    def __init__(self) -> None:
        self.sent = 0
        self.acked: dict[str, float] = {}  # tracked code -> ACK time
        self.visible: dict[str, float] = {}
        self.sending = True
        self.rounds: list[float] = []  # seconds per poll round: the resolution of "visible"


async def _send_at(port: int, rate: int, seconds: float, every: int, run: Offered) -> float:
    payload = (SAMPLES / TRACED).read_bytes()
    control = header(payload).control_id.encode()
    nonce = uuid.uuid4().hex[:6]
    period = CONNECTIONS / rate
    started = time.perf_counter()

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        framer, k = MllpFramer(), 0
        try:
            while (due := started + offset / rate + k * period) < started + seconds:
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                n = k * CONNECTIONS + offset
                serial = f"B{nonce}{n:07d}"
                body = payload.replace(control, f"{control.decode()}-{nonce}-{n}".encode(), 1)
                writer.write(frame(body.replace(TRACED_SERIAL, b"(21)" + serial.encode(), 1)))
                await _ack(reader, framer)
                run.sent += 1
                if n % every == 0:
                    run.acked[TRACE_CODE.format(serial=serial)] = time.perf_counter()
                k += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(i) for i in range(CONNECTIONS)))
    return time.perf_counter() - started


async def _follow(url: str, run: Offered, until: float) -> None:
    """Poll /inventory/trace for the oldest ACKed tracked codes not yet visible, FOLLOW at a time.

    Messages become visible roughly in order, so polling the oldest few keeps the resolution at
    one round (a few requests), not one pass over hundreds of pending codes.
    """
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:

        async def probe(code: str) -> None:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"/inventory/trace/{code}")).status_code == 200:
                    run.visible[code] = time.perf_counter()

        while time.perf_counter() < until:
            pending = [c for c in run.acked if c not in run.visible]  # dicts keep ACK order
            if not pending and not run.sending:
                return
            started = time.perf_counter()
            await asyncio.gather(*(probe(c) for c in pending[:FOLLOW]))
            run.rounds.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def offered_rate(report: Report, work: Path, rate: int, seconds: float) -> None:
    note = load_note()
    every = max(1, int(rate * seconds) // TRACKED)
    run = Offered()
    async with HubServe(work / f"hub-offered-{rate}") as hub:
        follower = asyncio.create_task(_follow(hub.url, run, time.perf_counter() + seconds + GRACE_S))
        try:
            took = await _send_at(hub.mllp_port, rate, seconds, every, run)
        finally:
            run.sending = False
        await follower
        peak = hub.peak_rss_mb()
    lags = [(run.acked[c], run.visible[c] - run.acked[c]) for c in run.visible]
    lags.sort()
    values = [lag for _, lag in lags]
    third = max(1, len(values) // 3)
    growth = (
        statistics.median(values[-third:]) / max(statistics.median(values[:third]), 1e-3) if values else 0
    )
    fraction = len(run.visible) / max(len(run.acked), 1)
    achieved = run.sent / took
    where = (
        f"offered {rate}/s for {seconds:.0f} s, achieved {achieved:,.0f}/s ({run.sent:,} ACKed);"
        f" {len(run.acked)} tracked, {len(run.visible)} visible within +{GRACE_S:.0f} s;"
        f" lag last third / first third {growth:.1f}x{' (backlog growing)' if growth > 2 else ''};"
        f" poll round p50 {1000 * percentile(run.rounds, 0.5):.0f} ms (each trace read is also an"
        f" access-log event on the bus); peak RSS {peak:,.0f} MB; {note}"
    )
    report.add(
        "e2e-latency",
        f"ACK -> visible in /inventory/trace at {rate} msg/s offered: p50",
        percentile(values, 0.5),
        "s",
        note=where,
    )
    report.add(
        "e2e-latency",
        f"ACK -> visible in /inventory/trace at {rate} msg/s offered: p99",
        percentile(values, 0.99),
        "s",
        aim="<= 2 at 500/s",
        note=where,
    )
    report.add(
        "e2e-latency",
        f"fraction visible at {rate} msg/s offered",
        100 * fraction,
        "%",
        aim="100",
        note=f"achieved rate vs offered: {achieved / rate:.2f}",
    )


async def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-e2e-mllp-") as tmp:
        work = Path(tmp)
        await throughput(report, work, max(2.0, 5.0 * scale()))
        for rate in OFFERED:
            await offered_rate(report, work, rate, max(10.0, 60.0 * scale()))
