"""Scale-out, as a site would run it: one vs two `hub serve` processes on the same file and MLLP load.

Load (the same for 1 and 2 processes): an HRP ledger of 20,000 x BENCH_SCALE rows dropped into the
first process's inbox, and at the same time 16 MLLP connections (closed loop, DFT^P03) spread over
the processes' listeners for 30 s x BENCH_SCALE (at least 10 s). Measured: rows/s until `/assets`
shows all (or BENCH_CAP_S), MLLP msg/s; the two-process rows report their ratio to one process.

Two set-ups:
- embedded: the default bus; both processes share one data dir (the only way two embedded hubs
  share a log today);
- kafka-pg: HUB_BUS=kafka on the test broker (Tansu, started here), HUB_DB_URL and HUB_ARCHIVE_URL
  on one throwaway PostgreSQL database; each process has its own data dir and shares only the
  broker and the database (raw archive, outbox, translation status and dead letters included;
  the file translators' snapshot state is still per node).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.bench_e2e_mllp import closed_loop, dft_messages
from bench.ledger import write_ledger
from bench.pg import drop_pg_database, fresh_pg_database, pg_server
from bench.report import load_note
from bench.whole_hub import HubServe, assets_total, cap_s, drop_into_inbox, scale, scaled
from tests.fixtures.kafka import start_broker, stop_broker

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.report import Report

FULL_ROWS = 20_000
POLL_S = 0.5
SCHEMA_WAIT_S = 15


class Outcome:
    def __init__(self) -> None:
        self.rows_per_s = 0.0
        self.finished = False
        self.seen = 0
        self.seconds = 0.0
        self.mllp = 0.0
        self.error = ""


async def _visible(url: str, rows: int, out: Outcome, started: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        while time.perf_counter() - started < cap_s():
            with contextlib.suppress(httpx.HTTPError):
                out.seen = await assets_total(client)
            if out.seen >= rows:
                out.finished = True
                break
            await asyncio.sleep(POLL_S)
    out.seconds = time.perf_counter() - started
    out.rows_per_s = out.seen / out.seconds


async def _create_schema(data_dir: Path, env: dict[str, str]) -> None:
    """Start and stop one hub on the fresh database first, so the measured ones find its tables.

    On a fresh PostgreSQL database `hub serve` (Kafka bus) exits with status 0 about ten seconds
    after start (a `read_model_tables_not_ensured` UniqueViolation: two writers creating the same
    tables at once); the second start on the same database stays up. Not what is measured here.
    """
    with contextlib.suppress(RuntimeError):
        async with HubServe(data_dir, dict(env)) as hub:
            for _ in range(SCHEMA_WAIT_S * 2):
                if hub.exited():
                    break
                await asyncio.sleep(0.5)


def _last_error(hub: HubServe) -> str:
    """The last exception line in a hub's log: why it exited."""
    lines = [
        x for x in hub.tail(20_000).splitlines() if x and not x.startswith((" ", "asyncio", "consumer:"))
    ]
    errors = [x for x in lines if "Error" in x or "Exception" in x]
    return (errors or lines or ["no output"])[-1][:200]


async def scenario(work: Path, nodes: int, *, env: dict[str, str], shared: bool, ledger: Path) -> Outcome:
    out = Outcome()
    seconds = max(10.0, 30.0 * scale())
    async with contextlib.AsyncExitStack() as stack:
        hubs = []
        for i in range(nodes):  # one after the other: the first creates the schema
            data_dir = work / ("data" if shared else f"node{i}")
            hubs.append(await stack.enter_async_context(HubServe(data_dir, dict(env))))
        started = time.perf_counter()
        await asyncio.to_thread(drop_into_inbox, hubs[0].data_dir, "hrp", ledger)
        rows = int(ledger.stem.rsplit("_", 1)[1])
        visible = asyncio.create_task(_visible(hubs[0].url, rows, out, started))
        failures: list[str] = []
        out.mllp, _ = await closed_loop([h.mllp_port for h in hubs], dft_messages(), seconds, failures)
        await visible
        problems = [f"process {i + 1} exited ({_last_error(h)})" for i, h in enumerate(hubs) if h.exited()]
        if failures:
            problems.append(f"{len(failures)} MLLP connection(s) failed, e.g. {failures[0]}")
        out.error = "; ".join(problems)
    return out


async def _pair(report: Report, label: str, run: Callable[[int], object], rows: int, size_kb: float) -> None:
    note = load_note()
    results: dict[int, Outcome] = {}
    for nodes in (1, 2):
        try:
            results[nodes] = await run(nodes)  # type: ignore[misc]
        except Exception as exc:  # a set-up that cannot run yet is reported, not fatal to `make bench`
            report.skip(f"scale-out {label}, {nodes} process(es)", f"{type(exc).__name__}: {str(exc)[:300]}")
            return
    one = results[1]
    for nodes, got in results.items():
        state = f"{got.seconds:,.0f} s" if got.finished else f"not finished after {got.seconds:,.0f} s"
        where = f"{label}; {got.seen:,} of {rows:,} assets visible ({state}); file {size_kb:,.0f} KB; {note}"
        if got.error:
            where += f"; PROBLEM: {got.error}"
        aim = ">= 1.6 x one" if nodes == 2 else ""
        ledger_name = f"{label}: {nodes} hub serve, {rows:,}-row ledger to visible"
        mllp_name = f"{label}: {nodes} hub serve, MLLP DFT^P03 16 conn during the import"
        if nodes == 1:
            report.add(
                "e2e-scaleout", ledger_name, got.rows_per_s, "rows/s", finished=got.finished, note=where
            )
            report.add("e2e-scaleout", mllp_name, got.mllp, "msg/s", note=where)
        else:
            report.add("e2e-scaleout", ledger_name, got.rows_per_s, "rows/s", finished=got.finished, aim=aim,
                       note=where, peer=one.rows_per_s, peer_label="1 process")  # fmt: skip
            report.add("e2e-scaleout", mllp_name, got.mllp, "msg/s", aim=aim, note=where,
                       peer=one.mllp, peer_label="1 process")  # fmt: skip


async def run(report: Report) -> None:
    import tempfile

    rows = scaled(FULL_ROWS, 500)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-scale-") as tmp:
        work = Path(tmp)
        ledger = write_ledger(work / f"固定资产台账_{rows}.csv", rows)
        size_kb = ledger.stat().st_size / 1024

        async def embedded(nodes: int) -> Outcome:
            return await scenario(work / f"embedded-{nodes}", nodes, env={}, shared=True, ledger=ledger)

        await _pair(report, "embedded bus, shared data dir", embedded, rows, size_kb)

        server = pg_server()
        if server is None:
            report.skip(
                "scale-out on Kafka + PostgreSQL", "no PostgreSQL at HUB_TEST_PG_URL or 127.0.0.1:5432"
            )
            return

        async def kafka_pg(nodes: int) -> Outcome:
            proc, bootstrap = start_broker()
            url, admin = fresh_pg_database(server)
            try:
                env = {
                    "HUB_BUS": "kafka",
                    "HUB_KAFKA_BOOTSTRAP": bootstrap,
                    "HUB_DB_URL": url,
                    "HUB_ARCHIVE_URL": url,  # nothing of the raw side node-local
                }
                await _create_schema(work / f"kafka-{nodes}-warmup", env)
                return await scenario(work / f"kafka-{nodes}", nodes, env=env, shared=False, ledger=ledger)
            finally:
                drop_pg_database(url, admin)
                stop_broker(proc)

        await _pair(report, "Kafka (Tansu) + PostgreSQL, archive in PostgreSQL", kafka_pg, rows, size_kb)
