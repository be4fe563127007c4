"""`hub ingest`, `hub mapping check` and `hub status`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adapters.base import TranslateContext, Translation
from adapters.errors import MappingError
from hub.bootstrap import build_hub
from hub.cli.app import DataDir, app, console, err, load_settings, run
from hub.cli.render import dead_letter_table, reconciliation_table, where
from hub.errors import ConfigError, NotStored
from hub.pipeline import drain, ingest_path
from hub.ports import RawRecord
from hub.translation.registry import ADAPTERS
from hub.translation.safe import run_translator
from hub.translation.worker import MappingSource, prepare_mapping

mapping_app = typer.Typer(help="Per-hospital mapping files.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")

SystemArg = Annotated[str, typer.Argument(help=f"Source system: {', '.join(ADAPTERS)}.")]


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


@app.command()
def ingest(
    system: SystemArg,
    paths: Annotated[list[Path], typer.Argument(help="Export files, or directories of them.")],
    data_dir: DataDir = None,
) -> None:
    """Archive export files, translate them, and update the read models.

    Exit status: 0 all rows landed; 1 stored, but some rows were dead-lettered (see `hub dlq list`);
    2 a file could not be stored or the command was wrong.
    """
    settings = load_settings(data_dir)
    if system not in ADAPTERS:
        err.print(f"[red]unknown system {system!r}[/red]; known: {', '.join(ADAPTERS)}")
        raise typer.Exit(2)
    files = _files(paths)

    async def go() -> int:
        async with build_hub(settings) as hub:
            refs = []
            for path in files:
                try:
                    outcome = await ingest_path(hub, system, path)
                except (NotStored, ConfigError) as exc:
                    err.print(f"[red]{path}: not stored:[/red] {exc}")
                    return 2
                refs.append((path, outcome))
            await drain(hub)
            table = Table(title=f"Ingested into {settings.data_dir}")
            for col in ("file", "raw ref", "resend", "status", "rows", "events", "dead letters", "skipped"):
                table.add_column(col)
            failures = 0
            for path, outcome in refs:
                st = await hub.archive.status(outcome.record.raw_ref)
                if st is None:  # stored just above; only a concurrent deletion could do this
                    err.print(f"[red]{path}: {outcome.record.raw_ref} vanished from the archive[/red]")
                    return 2
                failures += st.failures
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


def dry_run(system: str, path: Path, mapping_path: Path | None, settings_dir: Path | None) -> Translation:
    settings = load_settings(settings_dir)
    adapter = ADAPTERS[system]
    source = MappingSource(adapter, settings.mapping_dir, secret=settings.secret_bytes)
    mapping = (
        prepare_mapping(adapter.load_mapping(mapping_path), settings.secret_bytes)
        if mapping_path
        else source.current()
    )
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
    if result.failures:
        fail = Table(title=f"{len(result.failures)} row(s) would be dead-lettered")
        for col in ("where", "code", "reason"):
            fail.add_column(col, overflow="fold")
        for f in result.failures:
            fail.add_row(where(f.location.as_dict()), f.code, f.reason)
        console.print(fail)
    console.print(
        f"units {result.units}, events {len(result.events)}, failures {len(result.failures)}, "
        f"skipped {len(result.skipped)}" + (f" ({'; '.join(result.skipped[:5])})" if result.skipped else "")
    )
    raise typer.Exit(1 if result.failures else 0)
