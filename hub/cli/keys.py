"""`hub keys create|list|revoke`: API keys for the HTTP API, stored hashed in the read-model database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from hub.auth.keys import KeyStore
from hub.auth.roles import ROLE_PERMISSIONS, Role
from hub.cli.app import DataDir, app, console, err, load_settings
from projections.runtime.db import make_engine

keys_app = typer.Typer(help="API keys: who may call the HTTP API, with which role.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store(data_dir: DataDir) -> KeyStore:
    settings = load_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return KeyStore(make_engine(settings.database_url))


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option("--role", help="viewer, app, integrator, auditor or admin.")],
    department: Annotated[
        str | None,
        typer.Option(
            "--department", help="Limit the key to one department (code or name, e.g. 0301 or 重症医学科)."
        ),
    ] = None,
    label: Annotated[
        str, typer.Option("--label", help="Who or what holds the key (shown in `keys list`).")
    ] = "",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="The key stops working after this many days.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it once: only its SHA-256 is stored, so it cannot be shown again."""
    now = datetime.now(UTC)
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    info, token = _store(data_dir).create(
        role, department=department, label=label, expires_at=expires_at, now=now
    )
    err.print(
        f"created key {info.key_id} (role {role.value}"
        f"{', department ' + info.department if info.department else ''}"
        f"{', expires ' + expires_at.date().isoformat() if expires_at else ''})."
        " Store it now; it is not shown again. Send it as `Authorization: Bearer <key>`."
    )
    print(token)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Every key with its role, department and state; never the secret."""
    keys = _store(data_dir).list()
    now = datetime.now(UTC)
    if as_json:
        for k in keys:
            row = {
                "key_id": k.key_id,
                "role": k.role.value,
                "department": k.department,
                "label": k.label,
                "created_at": k.created_at.isoformat(),
                "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                "state": k.state(now),
            }
            print(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"API keys ({len(keys)})")
    for col in ("key id", "role", "department", "label", "created", "expires", "state", "may"):
        table.add_column(col, overflow="fold")
    for k in keys:
        table.add_row(
            k.key_id,
            k.role.value,
            k.department or "(all)",
            k.label,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.expires_at.strftime("%Y-%m-%d") if k.expires_at else "",
            k.state(now),
            ", ".join(sorted(p.value for p in ROLE_PERMISSIONS[k.role])),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id `keys list` shows.")], data_dir: DataDir = None
) -> None:
    """Revoke a key: every API node refuses it from its next request on."""
    if not _store(data_dir).revoke(key_id):
        err.print(f"[red]no key {key_id!r}[/red] (see `hub keys list`)")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
