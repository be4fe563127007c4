"""Rich tables shared by commands: dead letters, reconciliation, per-file results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

from hub.translation.deadletters import DeadLetter
from schemas.records import SourceLocation


def where(location: SourceLocation | Mapping[str, Any]) -> str:
    """A location for people: `a.csv, line 3, column 原值, field cost`, or `(whole message)`."""
    return str(location if isinstance(location, SourceLocation) else SourceLocation(**location))


def dead_letter_table(letters: Iterable[DeadLetter], title: str = "Dead letters") -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("system", "where", "code", "reason", "attempts", "mapping"):
        table.add_column(col, overflow="fold")
    for d in letters:
        table.add_row(
            d.system, where(d.location), d.code, d.reason, str(d.attempts), d.mapping_version or "-"
        )
    return table


def reconciliation_table(
    recon: Mapping[str, Mapping[str, int]], open_letters: Mapping[str, Mapping[str, int]]
) -> Table:
    table = Table(title="Per source: received = translated + dead-lettered + pending")
    for col in (
        "source",
        "received",
        "translated",
        "dead-lettered",
        "pending",
        "balanced",
        "resends",
        "events",
        "rows failed",
        "rows skipped",
        "dead letters open",
    ):
        table.add_column(col, justify="right" if col != "source" else "left")
    for system in sorted(recon):
        r = recon[system]
        balanced = r["received"] == r["translated"] + r["dead_lettered"] + r["pending"]
        table.add_row(
            system,
            str(r["received"]),
            str(r["translated"]),
            str(r["dead_lettered"]),
            str(r["pending"]),
            "[green]yes[/green]" if balanced else "[red]NO[/red]",
            str(r["resends"]),
            str(r["events"]),
            str(r["rows_failed"]),
            str(r["rows_skipped"]),
            str(open_letters.get(system, {}).get("open", 0)),
        )
    return table
