"""`hub channels`: each source over each transport, its state, counts and last hour (as GET /channels)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hub.bootstrap import build_hub
from hub.channels import Channel, channels
from hub.cli.app import DataDir, app, console, load_settings, run

BARS = " ▁▂▃▄▅▆▇█"
STATE_STYLE = {"listening": "green", "erroring": "red", "stopped": "yellow"}


def sparkline(values: list[int], width: int = 30) -> str:
    """The last `width` values as block characters, scaled to the largest."""
    tail = values[-width:]
    top = max(tail, default=0)
    if top == 0:
        return "▁" * len(tail)
    return "".join(BARS[max(1, round(v / top * (len(BARS) - 1)))] if v else "▁" for v in tail)


def channel_table(found: list[Channel]) -> Table:
    table = Table(title=f"Channels ({len(found)}; counts from the raw archive, last 30 minutes on the right)")
    for column, justify in (
        ("channel", "left"),
        ("state", "left"),
        ("endpoint", "left"),
        ("received", "right"),
        ("translated", "right"),
        ("archived only", "right"),
        ("dead-lettered", "right"),
        ("pending", "right"),
        ("AA/AE/AR", "right"),
        ("per min", "right"),
        ("last received", "left"),
        ("last 30 min", "left"),
        ("last error", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for ch in found:
        c = ch.counts
        received = str(c.received) if ch.on_topic is None else f"{ch.on_topic} on topic"
        acks = f"{c.ack_aa}/{c.ack_ae}/{c.ack_ar}" if ch.transport == "mllp" else ""
        style = STATE_STYLE.get(ch.state, "")
        table.add_row(
            ch.channel,
            f"[{style}]{ch.state}[/]" + (f"\n{ch.state_detail}" if ch.state_detail else ""),
            ch.endpoint,
            received,
            str(c.translated),
            str(c.archived_only),
            str(c.dead_lettered),
            str(c.pending),
            acks,
            f"{ch.rate_per_minute:g}",
            "" if c.last_received_at is None else c.last_received_at.isoformat(timespec="seconds"),
            sparkline(ch.received_per_minute),
            c.last_error or "",
        )
    return table


@app.command("channels")
def channels_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per channel instead of a table.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Channels: every source over every transport (MLLP, inbox folders, HTTP/FHIR, raw topics)."""
    settings = load_settings(data_dir)

    async def go() -> list[Channel]:
        async with build_hub(settings) as hub:
            return await channels(hub)

    found = run(go)
    if as_json:
        for ch in found:
            row = {
                "channel": ch.channel,
                "state": ch.state,
                "endpoint": ch.endpoint,
                "received": ch.counts.received,
                "translated": ch.counts.translated,
                "archived_only": ch.counts.archived_only,
                "dead_lettered": ch.counts.dead_lettered,
                "pending": ch.counts.pending,
                "ack": {"AA": ch.counts.ack_aa, "AE": ch.counts.ack_ae, "AR": ch.counts.ack_ar},
                "on_topic": ch.on_topic,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    console.print(channel_table(found))
