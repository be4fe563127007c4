"""`hub demo`, `hub serve` and `hub bench`: running the hub."""

from __future__ import annotations

import asyncio
import functools
import importlib
import signal
import ssl
import subprocess  # nosec B404: runs our own benchmark module with the same interpreter
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer
from rich.table import Table
from sqlalchemy import text

from hub.bootstrap import Hub, build_hub, make_bus, modbus_poller
from hub.channels import report_forever, served_here
from hub.cli import channels_cmd  # noqa: F401  (registers `hub channels` beside serve and status)
from hub.cli.app import DataDir, app, console, limit_malloc_arenas, load_settings, run, tune_gc_for_service
from hub.cli.companion import Companion, die_with_parent, is_companion, processes_for, tell_parent_ready
from hub.cli.render import reconciliation_table, where
from hub.memory import release_when_quiet
from hub.pipeline import ROLES, drain, ingest_path, parse_roles, run_forever
from hub.translation.deadletters import DeadLetter

if TYPE_CHECKING:
    import uvicorn

REPO = Path(__file__).resolve().parents[2]
logger = structlog.get_logger()
SHUTDOWN_GRACE_S = 10.0  # how long the API and the loops get to finish what they are doing
API_GRACE_S = 5  # open HTTP requests (event streams included) get this long, within SHUTDOWN_GRACE_S
DATA_SUFFIXES = {".csv", ".xlsx", ".xml", ".json", ".jsonl", ".ndjson", ".hl7"}


def sample_files(examples: Path, system: str) -> list[Path]:
    folder = examples / system
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES and p.name != "README.txt")


async def _summary(hub: Hub) -> None:
    def by_department() -> list[tuple[str, str, int]]:
        with hub.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT coalesce(department_name, department_code, '(none)'),"
                    " coalesce(status, 'unknown'), count(*)"
                    " FROM asset_registry_assets GROUP BY 1, 2 ORDER BY 1, 2"
                )
            ).all()
        return [(str(d), str(s), int(n)) for d, s, n in rows]

    rows = await asyncio.to_thread(by_department)
    statuses = sorted({s for _, s, _ in rows})
    table = Table(title=f"Assets by department and status ({sum(n for *_, n in rows)} assets)")
    table.add_column("department")
    for s in statuses:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    depts: dict[str, dict[str, int]] = {}
    for d, s, n in rows:
        depts.setdefault(d, {})[s] = n
    for d, counts in depts.items():
        table.add_row(d, *[str(counts.get(s, "")) for s in statuses], str(sum(counts.values())))
    console.print(table)
    for title, columns, view_rows in await asyncio.to_thread(_view_summaries, hub):
        view = Table(title=title)
        for col in columns:
            view.add_column(col, overflow="fold")
        for view_row in view_rows:
            view.add_row(*[str(v) for v in view_row])
        console.print(view)
    letters = await hub.dead_letters.query()
    if letters:
        console.print(_dead_letters_by_reason(letters))
    console.print(reconciliation_table(await hub.archive.reconciliation(), await hub.dead_letters.counts()))


def _view_summaries(hub: Hub) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each read model's own short summary (`demo_summary(conn)` in its module), in wiring order."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    with hub.engine.connect() as conn:
        for projection in hub.projections:
            summary = getattr(importlib.import_module(type(projection).__module__), "demo_summary", None)
            if summary is not None:
                out += summary(conn)
    return out


def _dead_letters_by_reason(letters: list[DeadLetter]) -> Table:
    groups: dict[tuple[str, str], list[DeadLetter]] = {}
    for d in letters:
        groups.setdefault((d.system, d.code), []).append(d)
    table = Table(title=f"Dead letters and why ({len(letters)} open; `hub dlq list` shows each)")
    for col in ("source", "code", "count", "for example", "reason"):
        table.add_column(col, overflow="fold")
    for (system, code), group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        first = group[0]
        table.add_row(system, code, str(len(group)), where(first.location), first.reason)
    return table


def _api_server(hub: Hub) -> uvicorn.Server:
    # Imported here, like the MLLP listener below: a process without the API (the projector
    # child of `hub serve`) never loads the web stack (hub.bootstrap's docstring).
    import uvicorn

    from hub.api.app import build_api

    settings = hub.settings
    return uvicorn.Server(
        uvicorn.Config(
            build_api(hub),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            access_log=False,  # hub.api.access_log: one line per request, without query values
            lifespan="on",
            # Open event streams never end by themselves: uvicorn ends them before our own grace
            # runs out, so the API task returns instead of being cancelled (a logged traceback).
            timeout_graceful_shutdown=API_GRACE_S,
        )
    )


async def _start_ingest(
    hub: Hub, stop: asyncio.Event, tasks: list[asyncio.Task[Any]], *, watch_inbox: bool
) -> asyncio.Server:
    """The MLLP listener (reported by /health/ready), when asked the inbox watcher, and the Modbus
    poller when the BMS mapping lists meters."""
    # Before the listener: once MLLP accepts, the mapping has been read and only the usual lines follow.
    poller = modbus_poller(hub, stop)
    if poller is not None:
        tasks.append(asyncio.create_task(poller, name="modbus"))
        console.print("polling Modbus meters of the BMS mapping")
    mllp = await _start_mllp(hub)
    hub.api.listeners["mllp"] = mllp.is_serving
    if watch_inbox:
        tasks.append(asyncio.create_task(hub.inbox.run_forever(stop), name="inbox"))
        console.print(f"watching {hub.settings.inbox_dir}/<system>/ for export files")
    return mllp


async def _serve(hub: Hub, *, watch_inbox: bool = True, roles: frozenset[str] = frozenset(ROLES)) -> None:
    """Run what build_hub wired for `roles` (pipeline stages, API, webhook delivery, MLLP, inbox)
    until a signal."""
    settings = hub.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server: uvicorn.Server | None = None
    api_task: asyncio.Task[Any] | None = None
    if "api" in roles:
        await _announce_auth(hub)  # before the pipeline starts: both create tables in the read-model db
    roles, companion = _companion(hub, roles)
    tasks = [asyncio.create_task(run_forever(hub, stop, roles), name="pipeline")]
    if companion is not None:
        tasks.append(asyncio.create_task(companion.run(stop), name="projector"))
    if "api" in roles:
        server = _api_server(hub)
        api_task = asyncio.create_task(server.serve(), name="api")
        tasks.append(api_task)
    if "project" in roles:
        tasks.append(asyncio.create_task(hub.webhooks.run(stop), name="webhooks"))
        tasks.append(asyncio.create_task(hub.notify.run(stop), name="notify"))
        tasks.append(asyncio.create_task(hub.alerts.run(stop), name="alerts"))
    mllp = await _start_ingest(hub, stop, tasks, watch_inbox=watch_inbox) if "ingest" in roles else None
    # What this process listens on, reported into the archive for GET /channels on any process.
    serving = None if mllp is None else mllp.is_serving
    here = functools.partial(served_here, hub, roles, mllp=serving, inbox=watch_inbox)
    tasks.append(asyncio.create_task(report_forever(hub, stop, here), name="channel-report"))
    tasks.append(asyncio.create_task(release_when_quiet(stop), name="memory"))
    tell_parent_ready()  # when this is a projector started by `hub serve`: its stages run now
    if server is not None:
        url = f"http://{settings.api_host}:{settings.api_port}"
        console.print(f"serving {url} (console: {url}/console, API docs: {url}/docs; Ctrl-C to stop)")
    if companion is None and roles != frozenset(ROLES) and not is_companion():
        # A projector child shares the parent's terminal: "roles: project" there reads as the hub's.
        console.print(f"roles: {', '.join(r for r in ROLES if r in roles)} (Ctrl-C to stop)")
    try:
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            task.result()
        if server is not None and api_task in done and not server.started:
            # uvicorn logs a failed lifespan and returns quietly; a hub without its API is down.
            raise RuntimeError("the API failed to start (the reason is logged above)")
    finally:
        await _shut_down(hub, stop, server, mllp, tasks)


def _companion(hub: Hub, roles: frozenset[str]) -> tuple[frozenset[str], Companion | None]:
    """Every role on a multi-core machine: the read models go to a child process (hub.cli.companion)."""
    if roles != frozenset(ROLES) or processes_for(hub.settings) < 2:
        return roles, None
    companion = Companion(hub.settings)
    hub.api.listeners["projector"] = lambda: companion.alive
    console.print("read models, webhooks and alerts run in a second process (HUB_SERVE_PROCESSES=1: one)")
    return roles - {"project"}, companion


async def _shut_down(
    hub: Hub,
    stop: asyncio.Event,
    server: uvicorn.Server | None,
    mllp: asyncio.Server | None,
    tasks: list[asyncio.Task[Any]],
) -> None:
    """Stop in order, without cancelling anything that can still finish on its own.

    Cancelling uvicorn's `serve()` leaves its lifespan task to be cancelled by `asyncio.run`, which
    logs a CancelledError traceback at ERROR on every clean SIGTERM; asking it to exit does not.
    The loops watch `stop` and return after their current step (a batch is committed or not at all).
    """
    stop.set()
    if server is not None:
        hub.api.draining.set()  # open event streams end at their next poll
        server.should_exit = True
    if mllp is not None:
        mllp.close()
    pending = [task for task in tasks if not task.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
        for task in late:
            logger.warning("shutdown_task_cancelled", task=task.get_name(), grace_s=SHUTDOWN_GRACE_S)
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _announce_auth(hub: Hub) -> None:
    """Say how callers authenticate, and how to make the first key when none exists."""
    existing = await asyncio.to_thread(hub.keys.list)
    if not hub.settings.auth_required:
        console.print("API keys optional (HUB_AUTH=off or demo mode): callers without a key act as admin")
    elif not existing:
        console.print(
            "[yellow]API keys required and none exist yet:[/yellow] create one with"
            " `hub keys create --role admin`"
        )


async def _start_mllp(hub: Hub) -> asyncio.Server:
    from adapters.his.mllp import serve_mllp  # the HIS adapter: ingest processes only

    settings = hub.settings
    context = None
    if settings.mllp_tls_cert and settings.mllp_tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key)
    server = await serve_mllp(
        hub.mllp.handle,
        settings.mllp_host,
        settings.mllp_port,
        ssl=context,
        max_frame_bytes=settings.mllp_max_bytes,
        max_connections=settings.mllp_max_connections,
        max_buffered_bytes=settings.mllp_max_buffered_bytes,
        read_timeout_s=settings.mllp_read_timeout,
        idle_timeout_s=settings.mllp_idle_timeout,
    )
    console.print(
        f"HL7 v2 (MLLP{' over TLS' if context else ''}) on {settings.mllp_host}:{settings.mllp_port}"
    )
    return server


@app.command()
def demo(
    data_dir: DataDir = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Exit after printing the summary.")] = False,
    examples: Annotated[
        Path, typer.Option(help="Folder of sample exports, one sub-folder per system.")
    ] = REPO / "examples",
) -> None:
    """Load the bundled sample exports through the embedded bus, print a summary, serve the API."""
    settings = load_settings(data_dir)

    async def go() -> None:
        async with build_hub(settings) as hub:
            for system in hub.workers:
                for path in sample_files(examples, system):
                    outcome = await ingest_path(hub, system, path)
                    note = " (already archived: an exact resend)" if outcome.duplicate else ""
                    console.print(f"  {system}: {path.name} -> {outcome.record.raw_ref}{note}")
            stats = await drain(hub)
            console.print(f"translated {stats.translated} message(s), projected {stats.projected} event(s)")
            await _summary(hub)
            if not no_serve:
                await _serve(hub)

    run(go)


@app.command()
def serve(
    data_dir: DataDir = None,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            envvar="HUB_ROLE",
            help=(
                "What this process runs: all, or a comma-separated list of ingest (MLLP, inbox,"
                " outbox relay), translate, project (read models, webhooks), api (HTTP API)."
            ),
        ),
    ] = "all",
) -> None:
    """Run the pipeline continuously, watch inbox/<system>/ drop folders, and serve the API."""
    try:
        roles = parse_roles(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc
    die_with_parent()  # a projector started by `hub serve` goes when its parent goes
    settings = load_settings(data_dir, log_level="info")
    tune_gc_for_service()
    limit_malloc_arenas()

    async def go() -> None:
        # A serve node's Kafka group members are static when HUB_NODE_ID names it (fast restart).
        async with build_hub(settings, bus=make_bus(settings, node=True), roles=roles) as hub:
            await _serve(hub, roles=roles)

    run(go)


@app.command()
def bench(
    only: Annotated[
        list[str] | None, typer.Argument(help="Run only benchmarks whose name contains these.")
    ] = None,
) -> None:
    """Run the benchmarks in bench/ and write bench/results.md (same as `make bench`)."""
    if not (REPO / "bench" / "run.py").exists():
        console.print("bench/ is not present in this installation; run from a source checkout")
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench.run", *(only or [])], cwd=REPO))  # noqa: S603  # nosec B603
