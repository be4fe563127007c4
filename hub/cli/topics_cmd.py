"""`hub topics list|create` and `hub schemas export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hub.bootstrap import make_bus
from hub.cli.app import DataDir, app, console, load_settings, run
from topics.catalogue import CATALOGUE

topics_app = typer.Typer(help="The topic catalogue, and provisioning it on the bus.", no_args_is_help=True)
schemas_app = typer.Typer(help="The canonical event contract.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")


@topics_app.command("list")
def topics_list(data_dir: DataDir = None) -> None:
    """Show the catalogue: name, key, partitions, retention, event types, and whether the bus has it."""
    settings = load_settings(data_dir)

    async def existing() -> dict[str, int]:
        bus = make_bus(settings)
        await bus.start()
        try:
            return await bus.list_topics()
        finally:
            await bus.close()

    on_bus = run(existing)
    table = Table(title=f"Topics ({settings.bus.value} bus, prefix {settings.topic_prefix or '(none)'})")
    for col in ("topic", "key", "partitions", "retention", "on bus", "event types"):
        table.add_column(col)
    for spec in CATALOGUE:
        name = spec.full_name(settings.topic_prefix)
        table.add_row(
            name,
            spec.key,
            str(spec.partitions),
            "forever" if spec.retention_ms < 0 else f"{spec.retention_ms} ms",
            "yes" if name in on_bus else "no",
            ", ".join(sorted(spec.event_types)) or "-",
        )
    console.print(table)


@topics_app.command("create")
def topics_create(data_dir: DataDir = None) -> None:
    """Create every catalogue topic that is missing (idempotent), with its partitions and retention."""
    settings = load_settings(data_dir)

    async def create() -> list[str]:
        bus = make_bus(settings)
        await bus.start()
        try:
            return await bus.ensure_topics(CATALOGUE, settings.topic_prefix)
        finally:
            await bus.close()

    created = run(create)
    console.print(
        f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else "; all present")
    )


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Argument(help="Directory to write JSON Schemas and asyncapi.yaml into.")],
    data_dir: DataDir = None,
) -> None:
    """Write one JSON Schema per event type and an AsyncAPI 3 document (topics, SSE stream, webhooks)."""
    from hub.schema_export import export_schemas

    settings = load_settings(data_dir)
    written = export_schemas(out, prefix=settings.topic_prefix)
    console.print(f"wrote {len(written)} file(s) to {out}")
