"""`hub audit verify|checkpoint|keygen|export`: prove the event history was not altered.

Every command that reads the ledger first brings it up to date (relay, translators and
projections drained), so what is verified or exported includes everything the hub has received.
`verify` first checks each chain against its signed head (a tail deleted with its tracking rows
would otherwise be re-applied from the log, unnoticed), and does not bring up to date a ledger
that fails that. Exit codes: 0 intact / done, 1 tampering found (or a checkpoint that cannot be
trusted), 2 bad input (times, key files).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hub.bootstrap import build_hub
from hub.cli.app import DataDir, app, console, err, load_settings, run
from hub.pipeline import drain
from projections.audit.ledger import NAME as LEDGER
from projections.audit.ledger import AuditLedger
from projections.audit.seals import seal_key
from projections.runtime.runner import ProjectionRunner
from replay.audit.checkpoint import (
    LoadedCheckpoint,
    export_checkpoint,
    keygen,
    load_checkpoint,
    load_private_key,
)
from replay.audit.errors import CheckpointInvalid, KeyFileError, LedgerTampered
from replay.audit.export import export_window
from replay.audit.log import check_log
from replay.audit.verify import Finding, VerifyReport, cut_chains, verify

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from hub.bootstrap import Hub

audit_app = typer.Typer(help="Tamper-evident audit ledger: verify, checkpoint, export.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

MAX_PRINTED = 200


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


async def _ledger_up_to_date(hub: Hub) -> None:
    """Drain the pipeline; run the ledger here too when this deployment's bootstrap does not."""
    await drain(hub)
    if any(projection.name == LEDGER for projection in hub.projections):
        return
    ledger = AuditLedger(seal_key=seal_key(hub.settings.secret_bytes))
    runner = ProjectionRunner(ledger, hub.bus, hub.engine, prefix=hub.settings.topic_prefix)
    try:
        await runner.run_until_idle()
    finally:
        await runner.close()


def _print_report(report: VerifyReport) -> None:
    checked = [f"{report.seals_checked:,} signed checkpoint(s)"] if report.seals_checked else []
    if report.log_records is not None:
        checked.append(f"{report.log_records:,} log record(s) byte for byte")
    if report.checkpoint_checked:
        checked.append("the exported checkpoint")
    console.print(
        f"checked {report.entries:,} entries in {report.chains} chain(s)"
        + (f", {', '.join(checked)}" if checked else "")
        + f" in {report.elapsed_s:.1f} s"
    )
    if not report.seals_checked and report.entries:
        console.print("[yellow]no signed checkpoints kept yet: run `hub audit checkpoint`[/yellow]")
    first = report.first
    if first is None:
        console.print("[green]ledger intact[/green]")
        return
    console.print(
        f"[red]first changed entry:[/red] {escape(first.kind.value)} at {escape(first.where())}: "
        f"{escape(first.detail)}"
    )
    table = Table(title=f"Tampering found ({len(report.findings)} finding(s))")
    for column in ("kind", "where", "what"):
        table.add_column(column, overflow="fold")
    for finding in report.findings[:MAX_PRINTED]:
        table.add_row(finding.kind.value, escape(finding.where()), escape(finding.detail))
    console.print(table)
    if len(report.findings) > MAX_PRINTED:
        console.print(f"... and {len(report.findings) - MAX_PRINTED} more")


def _finding_json(finding: Finding) -> dict[str, object]:
    return {
        "kind": finding.kind.value,
        "topic": finding.topic,
        "partition": finding.partition,
        "seq": finding.seq,
        "last_seq": finding.last_seq,
        "offset": finding.offset,
        "event_id": finding.event_id,
        "detail": finding.detail,
    }


def _report_json(report: VerifyReport) -> str:
    first = report.first
    return json.dumps(
        {
            "intact": report.intact,
            "entries": report.entries,
            "chains": report.chains,
            "seals_checked": report.seals_checked,
            "log_records": report.log_records,
            "checkpoint_checked": report.checkpoint_checked,
            "elapsed_s": round(report.elapsed_s, 3),
            "first": None if first is None else _finding_json(first),
            "findings": [_finding_json(f) for f in report.findings],
        },
        ensure_ascii=False,
    )


@audit_app.command("verify")
def audit_verify(
    *,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="An exported checkpoint the chains must still pass through."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM public key the checkpoint must be signed with.")
    ] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also validate every entry as an event model (slower).")
    ] = False,
    log: Annotated[
        bool,
        typer.Option(
            "--log/--no-log", help="Compare every log record's bytes with its ledger entry (default on)."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Re-walk every chain and the log; print the first changed entry, then every finding, and where.

    Exit 0 when the ledger is intact, 1 when tampering is found or the checkpoint is not trusted.
    """
    settings = load_settings(data_dir)
    key = seal_key(settings.secret_bytes)
    loaded: LoadedCheckpoint | None = None
    if checkpoint is not None:
        try:
            loaded = load_checkpoint(checkpoint, public_key=public_key)
        except KeyFileError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        except CheckpointInvalid as exc:
            console.print(f"[red]checkpoint rejected:[/red] {exc}")
            raise typer.Exit(1) from exc
        if not as_json:
            console.print(f"checkpoint {checkpoint}: {loaded.describe()}")

    async def go() -> VerifyReport:
        async with build_hub(settings) as hub:
            cut = await asyncio.to_thread(cut_chains, hub.engine, key)
            if not cut:  # re-applying the log onto a cut chain would hide the cut
                await _ledger_up_to_date(hub)
            report = await asyncio.to_thread(
                verify, hub.engine, checkpoint=loaded.checkpoint if loaded else None, deep=deep, seal_key=key
            )
            if log:
                began = time.perf_counter()
                checked = await check_log(hub.engine, hub.bus, prefix=settings.topic_prefix, seal_key=key)
                report.elapsed_s += time.perf_counter() - began
                report.log_records = checked.records
                report.add(checked.findings)
            return report

    report = run(go)
    if as_json:
        print(_report_json(report))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.intact else 1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path, typer.Option("--out", help="Checkpoint file to write (JSON).")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 private key file (from `hub audit keygen`) to sign with."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Verify the ledger, then record and export a checkpoint of every chain (signed with --key)."""
    settings = load_settings(data_dir)
    if key is not None:
        try:
            load_private_key(key)  # refuse a bad or exposed key before doing any work
        except KeyFileError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc

    async def go() -> VerifyReport:
        async with build_hub(settings) as hub:
            await _ledger_up_to_date(hub)
            sealing = seal_key(settings.secret_bytes)
            report = await asyncio.to_thread(verify, hub.engine, seal_key=sealing)
            if report.intact:
                await asyncio.to_thread(
                    export_checkpoint, hub.engine, out, signing_key=key, site=settings.site, seal_key=sealing
                )
            return report

    report = run(go)
    if not report.intact:
        _print_report(report)
        console.print("[red]no checkpoint written: the ledger is not intact[/red]")
        raise typer.Exit(1)
    loaded = load_checkpoint(out)
    total = sum(p.count for p in loaded.checkpoint.partitions)
    console.print(
        f"wrote {out}: {total:,} entries in {len(loaded.checkpoint.partitions)} chain(s), "
        + ("signed" if key is not None else "unsigned")
    )


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Private key file to create (mode 0600); the public key goes to FILE.pub."
        ),
    ],
) -> None:
    """Create an Ed25519 signing key for checkpoints. Keep it outside the hub's data directory."""
    try:
        public = keygen(out)
    except KeyFileError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"private key: {out} (mode 0600)\npublic key:  {out}.pub\n")
    console.print(public, end="", markup=False, highlight=False)


@audit_app.command("export")
def audit_export(  # noqa: PLR0917 - typer passes options by name
    out: Annotated[Path, typer.Option("--out", help="Directory to write the export into.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of the window (recorded_at, ISO 8601, inclusive).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="End of the window (ISO 8601, exclusive).")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only this subject (asset, item, work order id).")
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="File format of the entries.")
    ] = ExportFormat.JSONL,
    data_dir: DataDir = None,
) -> None:
    """Export ledger entries of a time window or one subject, with chain proofs and a verify script."""
    settings = load_settings(data_dir)
    start, end = _when(from_, "--from", settings.zone), _when(to, "--to", settings.zone)

    async def go() -> int:
        async with build_hub(settings) as hub:
            await _ledger_up_to_date(hub)
            try:
                result = await asyncio.to_thread(
                    export_window,
                    hub.engine,
                    out,
                    from_=start,
                    to=end,
                    subject=subject,
                    fmt=fmt.value,
                    site=settings.site,
                )
            except LedgerTampered as exc:
                console.print(f"[red]export refused:[/red] {exc}")
                return 1
            console.print(
                f"exported {result.entries:,} entries from {result.chains} chain(s) to {out}; "
                f"check with: python3 {out / 'verify_export.py'} {out}"
            )
            return 0

    raise typer.Exit(run(go))


def _when(value: str | None, option: str, zone: ZoneInfo) -> datetime | None:
    """An ISO 8601 time; a naive one is read in the hub's time zone (HUB_TZ)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        err.print(f"[red]{option} {value!r} is not an ISO 8601 time[/red]")
        raise typer.Exit(2) from exc
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed
