"""`hub ingest`, `hub mapping check` and `hub status`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.base import Failure, FieldAccounting, TranslateContext, Translation
from adapters.errors import MalformedMessage, MappingError
from hub.bootstrap import Hub, build_hub
from hub.cli.app import DataDir, app, console, err, load_settings, run
from hub.cli.render import dead_letter_table, reconciliation_table, where
from hub.errors import ConfigError, NotStored
from hub.pipeline import drain, ingest_path
from hub.ports import RawRecord, StoreOutcome
from schemas._base import SourceSystem

mapping_app = typer.Typer(help="Per-hospital mapping files.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")

# The adapters (hub.translation.registry) are imported by the commands that use them, not here:
# every `hub` command, `hub serve --role project` included, imports this module.
_SYSTEMS = ", ".join(s.value for s in SourceSystem if s is not SourceSystem.HUB)
SystemArg = Annotated[str, typer.Argument(help=f"Source system: {_SYSTEMS}.")]


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            out.append(path)
        else:
            err.print(f"[red]{path}: no such file or directory[/red]")
            raise typer.Exit(2)
    return out


_ZIP_MAGIC = b"PK\x03\x04"


def _rows_estimate(path: Path) -> int | None:
    """Lines of a CSV export (a bar's length; a little over its rows), None for XLSX (unknown)."""
    data = path.read_bytes()
    return None if data.startswith(_ZIP_MAGIC) else max(data.count(b"\n"), 1)


async def to_bus(hub: Hub) -> int:
    """Relay what the archive holds to the raw topics and translate it until nothing is left.

    When this returns, every stored file's events are on the bus (durable in the log); the read
    models are not waited for (`drain` does that).
    """
    translated = 0
    while True:
        relayed = await hub.relay.drain()
        done = 0
        for worker in hub.workers.values():
            done += await worker.run_until_idle()
        translated += done
        if relayed == done == 0:
            return translated


async def _store_and_translate(
    hub: Hub, system: str, files: list[Path]
) -> list[tuple[Path, StoreOutcome]] | None:
    """Archive every file, then translate until all their events are on the bus, a bar per file."""
    refs: list[tuple[Path, StoreOutcome]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        tasks: dict[str, TaskID] = {}
        for path in files:
            try:
                outcome = await ingest_path(hub, system, path)
            except (NotStored, ConfigError) as exc:
                err.print(f"[red]{path}: not stored:[/red] {exc}")
                return None
            refs.append((path, outcome))
            tasks[outcome.record.raw_ref] = progress.add_task(path.name, total=_rows_estimate(path))

        def advance(raw_ref: str, rows: int) -> None:
            if raw_ref in tasks:
                progress.update(tasks[raw_ref], completed=rows)

        for worker in hub.workers.values():
            worker.progress = advance
        await to_bus(hub)
        for ref, task in tasks.items():
            st = await hub.archive.status(ref)
            rows = max(st.units if st is not None else 0, 1)
            progress.update(task, total=rows, completed=rows)
    return refs


async def _report(hub: Hub, data_dir: Path, refs: list[tuple[Path, StoreOutcome]]) -> tuple[int, int] | None:
    """Print a row per file; (dead letters, events) over all, None if a file vanished."""
    table = Table(title=f"Ingested into {data_dir}")
    for col in ("file", "raw ref", "resend", "status", "rows", "events", "dead letters", "skipped"):
        table.add_column(col)
    failures = events = 0
    for path, outcome in refs:
        st = await hub.archive.status(outcome.record.raw_ref)
        if st is None:  # stored just above; only a concurrent deletion could do this
            err.print(f"[red]{path}: {outcome.record.raw_ref} vanished from the archive[/red]")
            return None
        failures += st.failures
        events += st.events
        table.add_row(
            path.name,
            st.raw_ref,
            "yes" if outcome.duplicate else "",
            st.status,
            str(st.units),
            str(st.events),
            str(st.failures),
            str(st.skipped),
        )
    console.print(table)
    return failures, events


@app.command()
def ingest(
    system: SystemArg,
    paths: Annotated[list[Path], typer.Argument(help="Export files, or directories of them.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Also wait until the read models show the files' events.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Archive export files and translate them onto the bus (with --wait: until the read models show them).

    Returns when every file's events are on the bus, with a progress bar per file while it is
    translated. The read models apply them in `hub serve` (running now, or when it next starts);
    `--wait` applies them here and returns once they are visible.

    Exit status: 0 all rows landed; 1 stored, but some rows were dead-lettered (see `hub dlq list`);
    2 a file could not be stored or the command was wrong.
    """
    from hub.translation.registry import ADAPTERS

    settings = load_settings(data_dir)
    if system not in ADAPTERS:
        err.print(f"[red]unknown system {system!r}[/red]; known: {', '.join(ADAPTERS)}")
        raise typer.Exit(2)
    files = _files(paths)

    async def go() -> int:
        async with build_hub(settings) as hub:
            refs = await _store_and_translate(hub, system, files)
            if refs is None:
                return 2
            totals = await _report(hub, settings.data_dir, refs)
            if totals is None:
                return 2
            failures, events = totals
            console.print(f"{events:,} event(s) from {len(refs)} file(s) are on the bus.")
            if wait:
                with err.status("Waiting for the read models to show them..."):
                    await drain(hub)
                console.print("The read models show them.")
            else:
                console.print(
                    "The read models apply them in `hub serve` (running, or when it next starts); "
                    "`hub ingest --wait` waits until they show them."
                )
            mine = {o.record.raw_ref for _, o in refs}
            letters = [d for d in await hub.dead_letters.query(system=system) if d.raw_ref in mine]
            if letters:
                console.print(dead_letter_table(letters[:50], title=f"Dead letters ({len(letters)})"))
                console.print(
                    "Fix the mapping (HUB_MAPPING_DIR) or the source, then: hub dlq retry --system " + system
                )
            return 1 if failures else 0

    raise typer.Exit(run(go))


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Reconciliation per source: received = translated + dead-lettered + pending."""
    settings = load_settings(data_dir)

    async def go() -> None:
        async with build_hub(settings) as hub:
            console.print(
                reconciliation_table(await hub.archive.reconciliation(), await hub.dead_letters.counts())
            )

    run(go)


def effective_mapping(system: str, mapping_path: Path | None, settings_dir: Path | None) -> Any:
    """The mapping a dry run uses: `mapping_path`, else the site's override, else the bundled one."""
    from hub.translation.registry import ADAPTERS
    from hub.translation.worker import MappingSource, prepare_mapping

    settings = load_settings(settings_dir)
    adapter = ADAPTERS[system]
    if mapping_path:
        return prepare_mapping(adapter.load_mapping(mapping_path), settings.secret_bytes)
    return MappingSource(adapter, settings.mapping_dir, secret=settings.secret_bytes).current()


def dry_run(system: str, path: Path, mapping_path: Path | None, settings_dir: Path | None) -> Translation:
    from hub.translation.registry import ADAPTERS
    from hub.translation.safe import run_translator

    settings = load_settings(settings_dir)
    adapter = ADAPTERS[system]
    mapping = effective_mapping(system, mapping_path, settings_dir)
    payload = path.read_bytes()
    sha = hashlib.sha256(payload).hexdigest()
    record = RawRecord(
        raw_ref=f"dry-run:{sha[:32]}",
        system=system,
        site=settings.site,
        message_id=path.name,
        sha256=sha,
        size=len(payload),
        transport="file",
        received_at=datetime.now(UTC),
        metadata={"filename": path.name},
    )
    ctx = TranslateContext(
        site=settings.site, tz=settings.zone, adapter_version=adapter.version, mapping_version=mapping.version
    )
    # The same rule as every other path: a translator that raises is a whole-file failure.
    return run_translator(adapter, record, payload, mapping, ctx)


@mapping_app.command("check")
def mapping_check(
    system: SystemArg,
    file: Annotated[Path, typer.Argument(help="A source file to dry-run.", exists=True, dir_okay=False)],
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping file to try (default: the effective one).")
    ] = None,
    rows: Annotated[int, typer.Option(help="How many translated rows to show.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """Dry run: what each row of FILE would become, and what would fail and why. Stores nothing.

    Exit status: 0 every row translates; 1 some rows (or the file) would fail; 2 the mapping is invalid.
    """
    from hub.translation.registry import ADAPTERS

    if system not in ADAPTERS:
        err.print(f"[red]unknown system {system!r}[/red]; known: {', '.join(ADAPTERS)}")
        raise typer.Exit(2)
    try:
        result = dry_run(system, file, mapping, data_dir)
    except MappingError as exc:  # the mapping file itself does not load
        err.print(f"[red]mapping error:[/red] {exc}")
        raise typer.Exit(2) from exc
    whole = next((f for f in result.failures if f.position == "message"), None)
    if whole is not None and whole.code == "mapping":
        err.print(f"[red]mapping error:[/red] {whole.reason}")
        raise typer.Exit(2)
    coverage_report(system, file, mapping, data_dir, result)
    if whole is not None and not result.events:
        err.print(f"[red]{file.name} cannot be read:[/red] {whole.reason}")
        raise typer.Exit(1)
    table = Table(title=f"{file.name}: first {min(rows, len(result.events))} of {len(result.events)} events")
    for col in ("where", "event", "subject", "what"):
        table.add_column(col, overflow="fold")
    for emitted in result.events[:rows]:
        payload = emitted.event.model_dump(mode="json")["payload"]
        details = payload.get("details", payload)
        summary = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, [], {}))[:160]
        table.add_row(str(emitted.location), emitted.event.type, emitted.event.subject, summary)
    console.print(table)
    failures_table(f"{len(result.failures)} row(s) would be dead-lettered", result.failures)
    failures_table(f"{len(result.notes)} unit(s) kept with a field unknown (dead-letter notes)", result.notes)
    console.print(
        f"units {result.units}, events {len(result.events)}, failures {len(result.failures)}, "
        f"notes {len(result.notes)}, "
        f"skipped {len(result.skipped)}" + (f" ({'; '.join(result.skipped[:5])})" if result.skipped else "")
    )
    raise typer.Exit(1 if result.failures else 0)


def failures_table(title: str, failures: tuple[Failure, ...]) -> None:
    """Failures (or notes) of a dry run, one row each; nothing when there are none."""
    if not failures:
        return
    table = Table(title=title)
    for col in ("where", "code", "reason"):
        table.add_column(col, overflow="fold")
    for f in failures:
        table.add_row(where(f.location.as_dict()), f.code, f.reason)
    console.print(table)


def coverage_report(
    system: str, file: Path, mapping_path: Path | None, data_dir: Path | None, result: Translation
) -> None:
    """The header detection and the field accounting of a dry run (tabular exports)."""
    header_report(system, file, mapping_path, data_dir)
    if result.accounting is not None and result.accounting.rows:
        accounting_report(result.accounting, *_WORDS.get(system, _WORDS["files"]))


# What a row and a column are called per source: (rows, column, how to claim one).
_WORDS: dict[str, tuple[str, str, str]] = {
    "files": ("data rows", "column", "add a synonym, or list under ignore:"),
    "oa": ("records", "field", "name it under a field, or list it under ignore:"),
    "his": ("messages (counted once per message)", "field", "map it, or list it under ignore: as SEG-n"),
    "fhir": ("resources", "element", "map it, or list it under ignore: as Type.element"),
}


def _natural(name: str) -> tuple[str, int, str]:
    """PV1-3 before PV1-19 (HL7 field numbers sort as numbers)."""
    head, _, tail = name.rpartition("-")
    return (head, int(tail), "") if head and tail.isdigit() else (name, 0, name)


def header_report(system: str, file: Path, mapping_path: Path | None, data_dir: Path | None) -> None:
    """For a tabular export: the header row(s) found and why, and each column -> field (synonym)."""
    from adapters._files.header import normalise_label
    from adapters._files.mapping import FileMapping
    from adapters._files.sheet import stream_sheet
    from hub.translation.registry import ADAPTERS

    if ADAPTERS[system].translate_chunks is None:
        return  # not a CSV/XLSX source: no header rows to report
    mapping = effective_mapping(system, mapping_path, data_dir)
    if not isinstance(mapping, FileMapping):
        return
    try:
        sheet, _ = stream_sheet(file.read_bytes(), filename=file.name, mapping=mapping)
    except MalformedMessage:
        return  # the translation's whole-file failure says why
    header = sheet.header
    console.print(f"header: {header.reason}")
    table = Table(title=f"{file.name}: columns")
    for col in ("column", "title", "field", "matched synonym"):
        table.add_column(col, overflow="fold")
    field_at = {index: name for name, index in header.columns.items()}
    ignored = {normalise_label(name) for name in mapping.ignore}
    for index, title in enumerate(header.titles):
        name = field_at.get(index)
        if name is not None:
            table.add_row(str(index + 1), title, name, header.matched.get(name, ""))
        else:
            parts = [title, *title.split(" / ")]
            what = "(ignored)" if any(normalise_label(p) in ignored for p in parts) else "(unclaimed)"
            table.add_row(str(index + 1), title, what, "")
    console.print(table)


def accounting_report(
    accounting: FieldAccounting,
    units: str = "data rows",
    column_word: str = "column",
    remedy: str = "add a synonym, or list under ignore:",
) -> None:
    """Where the non-empty cells went; unclaimed columns with samples and fill; fill per field."""
    rows = max(accounting.rows, 1)
    console.print(
        f"cells: {accounting.cells} non-empty in {accounting.rows} {units}; "
        f"claimed {sum(accounting.claimed.values())}, ignored {sum(accounting.ignored.values())}, "
        f"unclaimed {accounting.unclaimed_cells}"
    )
    if accounting.unclaimed:
        many = len(accounting.unclaimed)
        console.print(f"[yellow]warning:[/yellow] {many} {column_word}(s) hold values nothing claims")
        table = Table(title=f"unclaimed {column_word}s (nothing claims them; {remedy})")
        for col in (column_word, "fill", "samples"):
            table.add_column(col, overflow="fold")
        for column, count in sorted(accounting.unclaimed.items(), key=lambda kv: _natural(kv[0])):
            samples = ", ".join(accounting.samples.get(column, ()))
            table.add_row(column, f"{count}/{accounting.rows} ({count / rows:.0%})", samples)
        console.print(table)
    # Per canonical field where the adapter knows it (CSV/XLSX), else per source field (OA).
    per_field = accounting.fields or accounting.claimed
    fill = Table(title="fill per field" if accounting.fields else "fill per claimed source field")
    fill.add_column("field")
    fill.add_column("fill")
    for name, count in sorted(per_field.items(), key=lambda kv: _natural(kv[0])):
        fill.add_row(name, f"{count}/{accounting.rows} ({count / rows:.0%})")
    console.print(fill)
