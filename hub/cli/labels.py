"""`hub labels` (a sheet of QR labels for a department's devices) and the reporting keys they carry.

`hub keys rotate-report --department D` replaces the department's reporting key (old labels stop
working after `--grace-days`); `hub keys report-list` shows every reporting key and its state.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hub.cli.app import DataDir, app, console, err, load_settings
from hub.cli.keys import keys_app
from hub.errors import ConfigError
from hub.scan.keys import ReportKeyStore
from projections.assets.queries import list_assets
from projections.assets.tables import METADATA as ASSET_TABLES
from projections.runtime.db import make_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

PAGE = 500


class LabelFormat(StrEnum):
    PDF = "pdf"
    PNG = "png"


@app.command("labels")
def labels(  # noqa: PLR0917  (typer: one parameter per option)
    department: Annotated[
        str, typer.Option("--department", help="Department code or name, e.g. 0301 or 重症医学科.")
    ],
    out: Annotated[Path, typer.Option("--out", help="File to write (the sheet).")],
    fmt: Annotated[
        LabelFormat, typer.Option("--format", help="pdf (A4, font embedded) or png.")
    ] = LabelFormat.PDF,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Address phones reach the hub at (default HUB_PUBLIC_URL)."),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", help="Also write a CSV of the labels (asset id, name, card, department, URL)."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a sheet of QR labels for every active device of a department (scan-to-report).

    Each QR holds <base URL>/r/<asset id>?k=<the department's reporting key>; the key is created
    on first use and stays the same until `hub keys rotate-report`.
    """
    from hub.scan.labels import build_labels, find_font, render_pdf, render_png  # PDF/PNG: only here

    settings = load_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        font = find_font(settings.label_font)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    engine = make_engine(settings.database_url)
    try:
        ASSET_TABLES.create_all(engine, checkfirst=True)
        rows: list[dict[str, Any]] = []
        with engine.connect() as conn:
            while True:
                page, total = list_assets(
                    conn, department=department, active=True, limit=PAGE, offset=len(rows)
                )
                rows += page
                if not page or len(rows) >= total:
                    break
        if not rows:
            err.print(
                f"[red]no active devices in department {department!r}[/red]"
                " (a code or a name, as the registry holds it)"
            )
            raise typer.Exit(1)
        keys = ReportKeyStore(engine, settings.secret_bytes)
        token = keys.token(keys.current(_canonical(engine, department)))
    finally:
        engine.dispose()
    sheet = build_labels(rows, base_url=base_url or settings.public_url, token=token)
    data = render_pdf(sheet, font) if fmt is LabelFormat.PDF else render_png(sheet, font)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    if manifest is not None:
        with manifest.open("w", encoding="utf-8-sig", newline="") as f:  # BOM: Excel opens it as UTF-8
            writer = csv.writer(f)
            writer.writerow(["资产ID", "设备名称", "卡片号", "科室", "二维码内容"])
            writer.writerows(
                [label.asset_id, label.name, label.card, label.department, label.url] for label in sheet
            )
    err.print(f"{len(sheet)} labels for {department} -> {out} (font {font.name})")


def _canonical(engine: Engine, department: str) -> str:
    """One name per department for its reporting key: the registry's code (else its name), so
    `--department 0402` and `--department 新生儿科` print, and rotate, the same key."""
    ASSET_TABLES.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        rows, _ = list_assets(conn, department=department, limit=1)
    if not rows:
        return department
    return str(rows[0].get("department_code") or rows[0].get("department_name") or department)


@keys_app.command("rotate-report")
def rotate_report(
    department: Annotated[str, typer.Option("--department", help="Department code or name.")],
    grace_days: Annotated[
        int, typer.Option("--grace-days", min=0, help="Days the old labels keep working (default: none).")
    ] = 0,
    data_dir: DataDir = None,
) -> None:
    """Replace a department's reporting key: reprint its labels (`hub labels`) afterwards."""
    settings = load_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        key = ReportKeyStore(engine, settings.secret_bytes).rotate(
            _canonical(engine, department), grace=timedelta(days=grace_days)
        )
    finally:
        engine.dispose()
    console.print(
        f"new reporting key {key.key_id} for {department}; old labels "
        + (f"work for {grace_days} more day(s)" if grace_days else "stopped working")
        + ". Reprint: hub labels --department "
        + department
        + " --out labels.pdf"
    )


@keys_app.command("report-list")
def report_list(data_dir: DataDir = None) -> None:
    """Every department's reporting keys (what the labels carry) and whether they still work."""
    settings = load_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        keys = ReportKeyStore(engine, settings.secret_bytes).list()
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    table = Table(title=f"reporting keys ({len(keys)})")
    for col in ("key id", "department", "created", "works until", "state"):
        table.add_column(col)
    for k in keys:
        table.add_row(
            k.key_id,
            k.department,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.valid_until.strftime("%Y-%m-%d %H:%M") if k.valid_until else "",
            "active" if k.active(now) else "rotated out",
        )
    console.print(table)
