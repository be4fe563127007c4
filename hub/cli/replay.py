"""`hub replay rebuild|check|as-of|history`: rebuild read models, reconstruct the past, trace provenance.

Times on the command line are ISO 8601 (`2024-06-30T14:00`, `2024-06-30 14:00+08:00`,
`2024-06-30T06:00Z`); without an offset they are read in the site's time zone (HUB_TZ), as
naive source times are; a bare date means the end of that day; `now` is now.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hub.bootstrap import Hub, build_hub, make_projections
from hub.cli.app import DataDir, app, console, err, load_settings, run
from replay.as_of import write_as_of
from replay.audit.match import LedgerMatcher
from replay.compare import Comparison
from replay.errors import ReplayFailed
from replay.history import HistoryEntry, SubjectKind, history
from replay.rebuild import RebuildReport, check_projection, find_projection, rebuild

replay_app = typer.Typer(
    help="Replay the log: rebuild read models, reconstruct the past, trace records to raw messages.",
    no_args_is_help=True,
)
app.add_typer(replay_app, name="replay")

EXIT_DIFFERENT = 1
EXIT_FAILED = 2

ProjectionArg = Annotated[str, typer.Argument(help="Projection name, e.g. asset_registry.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Records applied per transaction.")]
AcceptTamperedOpt = Annotated[
    bool,
    typer.Option(
        "--accept-tampered",
        help="Replay log records that no longer match their audit ledger entry (logged) instead of refusing.",
    ),
]


def parse_time(text: str, zone: ZoneInfo, *, now: datetime) -> datetime:
    """A command-line time as an aware datetime (see the module docstring for the forms)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass  # not a bare date: a date and time, below
    else:
        return datetime.combine(day, time.max, tzinfo=zone)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


class _Rate(ProgressColumn):
    """Events per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s", style="progress.data.speed")


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (stdout stays clean for output): events, events/s, ETA."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(description, total=None)

        def sink(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield sink


def _print_comparison(comparison: Comparison) -> None:
    table = Table(title="Live vs rebuilt (sha256 per table, canonical order)")
    for col in ("table", "live rows", "rebuilt rows", "live sha256", "rebuilt sha256", "equal"):
        table.add_column(col, justify="right" if "rows" in col else "left")
    for t in comparison.tables:
        table.add_row(
            t.table,
            f"{t.live_rows:,}",
            f"{t.rebuilt_rows:,}",
            t.live[:16],
            t.rebuilt[:16],
            "[green]yes[/green]" if t.equal else "[red]NO[/red]",
        )
    console.print(table)
    if comparison.difference is None:
        console.print("[green]equal[/green]: the live tables are what the log says")
    else:
        console.print(f"[red]first difference[/red]: {escape(comparison.difference.describe())}")


def _print_report(report: RebuildReport) -> None:
    console.print(
        f"{report.projection}: {report.records:,} record(s) read, {report.applied:,} event(s) applied "
        f"in {report.seconds:.1f} s ({report.rate:,.0f} events/s)"
        + (f", {report.rounds} catch-up round(s)" if report.rounds else "")
    )


async def _projection_command(
    hub: Hub, name: str, *, check: bool, swap: bool, batch_size: int, accept_tampered: bool = False
) -> int:
    projection = find_projection(make_projections(hub.settings), name)
    ledger = LedgerMatcher(hub.engine, prefix=hub.settings.topic_prefix)
    verb = "rebuilding" if swap else "checking"
    with _progress(f"{verb} {name}") as sink:
        if swap:
            report = await rebuild(
                hub.bus,
                hub.engine,
                projection,
                prefix=hub.settings.topic_prefix,
                check=check,
                batch_size=batch_size,
                progress=sink,
                ledger=ledger,
                accept_tampered=accept_tampered,
            )
        else:
            report = await check_projection(
                hub.bus,
                hub.engine,
                projection,
                prefix=hub.settings.topic_prefix,
                batch_size=batch_size,
                progress=sink,
                ledger=ledger,
                accept_tampered=accept_tampered,
            )
    _print_report(report)
    if report.comparison is not None:
        _print_comparison(report.comparison)
    if swap:
        console.print(f"swapped in: {name} now serves the rebuilt tables")
    if report.comparison is not None and not report.comparison.equal:
        return EXIT_DIFFERENT
    return 0


def _run_replay(go: Callable[[], Awaitable[int]]) -> None:
    try:
        code = run(go)
    except ReplayFailed as exc:
        err.print(f"[red]replay failed:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from exc
    raise typer.Exit(code)


@replay_app.command("rebuild")
def rebuild_cmd(
    projection: ProjectionArg,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Compare with the live tables before swapping; exit 1 if they differed."
        ),
    ] = False,
    batch_size: BatchOpt = 5_000,
    accept_tampered: AcceptTamperedOpt = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild a read model from offset 0 into fresh tables while the live one serves; swap atomically.

    Refuses (exit 2, nothing swapped) when a log record no longer matches its audit ledger entry.
    """
    settings = load_settings(data_dir)

    async def go() -> int:
        async with build_hub(settings) as hub:
            return await _projection_command(
                hub,
                projection,
                check=check,
                swap=True,
                batch_size=batch_size,
                accept_tampered=accept_tampered,
            )

    _run_replay(go)


@replay_app.command("check")
def check_cmd(
    projection: ProjectionArg,
    batch_size: BatchOpt = 5_000,
    accept_tampered: AcceptTamperedOpt = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild into scratch at the live positions and compare by hash; exit 0 equal, 1 different."""
    settings = load_settings(data_dir)

    async def go() -> int:
        async with build_hub(settings) as hub:
            return await _projection_command(
                hub,
                projection,
                check=True,
                swap=False,
                batch_size=batch_size,
                accept_tampered=accept_tampered,
            )

    _run_replay(go)


@replay_app.command("as-of")
def as_of_cmd(
    when: Annotated[
        str, typer.Argument(metavar="TIME", help="Business time: facts that had occurred by then.")
    ],
    out: Annotated[Path, typer.Option("--out", help="New SQLite file to write (never overwritten).")],
    known_at: Annotated[
        str, typer.Option("--known-at", help="Knowledge time: facts the hub had recorded by then.")
    ] = "now",
    accept_tampered: AcceptTamperedOpt = False,
    data_dir: DataDir = None,
) -> None:
    """Write every read model as it stood at TIME, as known at --known-at, to a new SQLite file.

    Refuses (exit 2, no file written) when a log record no longer matches its audit ledger entry.
    """
    settings = load_settings(data_dir)
    now = datetime.now(UTC)
    occurred_at = parse_time(when, settings.zone, now=now)
    known = parse_time(known_at, settings.zone, now=now)
    if out.exists():
        err.print(f"[red]{escape(str(out))} exists[/red]: as-of writes a new file and never overwrites one")
        raise typer.Exit(EXIT_FAILED)

    async def go() -> int:
        async with build_hub(settings) as hub:
            with _progress("reading the log") as sink:
                report = await write_as_of(
                    hub.bus,
                    make_projections(settings),
                    out,
                    occurred_at=occurred_at,
                    known_at=known,
                    prefix=settings.topic_prefix,
                    progress=sink,
                    ledger=LedgerMatcher(hub.engine, prefix=settings.topic_prefix),
                    accept_tampered=accept_tampered,
                )
        console.print(
            f"wrote {report.out}: as of {occurred_at.isoformat()} (occurred), known at {known.isoformat()} "
            f"(recorded); {report.selected:,} of {report.records:,} record(s) selected"
        )
        for name, applied in sorted(report.applied.items()):
            console.print(f"  {name}: {applied:,} event(s) applied")
        return 0

    _run_replay(go)


def _history_table(entries: list[HistoryEntry], zone: ZoneInfo, title: str) -> Table:
    table = Table(title=title)
    flagged = any(e.tampered for e in entries)
    columns = ("occurred", "recorded", "event", "source", "message id", "raw ref", "raw sha256", "summary")
    for col in (*columns, "ledger") if flagged else columns:
        table.add_column(col, overflow="fold")
    for e in entries:
        if e.raw_ref is None:
            sha = "-"
        elif e.raw is None:
            sha = "[red]not in archive[/red]"
        else:
            sha = e.raw.sha256[:16]
        table.add_row(
            f"{e.occurred_at.astimezone(zone):%Y-%m-%d %H:%M}",
            f"{e.recorded_at.astimezone(zone):%Y-%m-%d %H:%M}",
            e.event_type,
            e.source_system,
            escape(e.message_id),  # source data: never read as rich markup
            e.raw_ref or "-",
            sha,
            escape(e.summary),
            *(
                (Text("TAMPERED: " + e.tampered, style="red") if e.tampered else Text("ok"),)
                if flagged
                else ()
            ),
        )
    return table


@replay_app.command("history")
def history_cmd(
    kind: Annotated[SubjectKind, typer.Argument(help="What ID names.")],
    subject_id: Annotated[
        str, typer.Argument(metavar="ID", help="Hub id (asset, item, work order) or UDI code.")
    ],
    *,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events recorded at or after this time.")
    ] = None,
    derived: Annotated[bool, typer.Option("--derived", help="Include the hub's derived events.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines on stdout instead of a table.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Every event about a subject, oldest first, with source system, message id and raw reference."""
    settings = load_settings(data_dir)
    since_at = None if since is None else parse_time(since, settings.zone, now=datetime.now(UTC))

    async def go() -> int:
        async with build_hub(settings) as hub:
            entries = await history(
                hub.bus,
                kind,
                subject_id,
                prefix=settings.topic_prefix,
                since=since_at,
                include_derived=derived,
                raw_lookup=hub.archive.lookup,
                ledger=LedgerMatcher(hub.engine, prefix=settings.topic_prefix),
            )
        if not entries:
            err.print(escape(f"no events for {kind.value} {subject_id}"))
            return EXIT_DIFFERENT
        if as_json:
            for entry in entries:
                print(json.dumps(entry.as_json(), ensure_ascii=False))
        else:
            systems = sorted({e.source_system for e in entries})
            title = escape(
                f"History of {kind.value} {subject_id}: {len(entries)} event(s) from {', '.join(systems)}"
            )
            console.print(_history_table(entries, settings.zone, title))
        tampered = [e for e in entries if e.tampered]
        if tampered:
            err.print(
                f"[red]{len(tampered)} event(s) flagged[/red]: their log records no longer match the audit "
                "ledger; `hub audit verify` says what changed"
            )
        return 0

    _run_replay(go)
