"""`hub dlq list|retry`: see what failed and why, and land it after a mapping fix."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.bootstrap import build_hub
from hub.cli.app import DataDir, app, console, load_settings, run
from hub.cli.render import dead_letter_table
from hub.pipeline import drain
from hub.translation.retry import HubDeadLetters

dlq_app = typer.Typer(help="Dead letters: inputs that could not be translated.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

SystemOpt = Annotated[str | None, typer.Option("--system", help="Only this source system.")]


@dlq_app.command("list")
def dlq_list(
    system: SystemOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved dead letters.")] = False,
    notes: Annotated[
        bool,
        typer.Option(
            "--notes",
            help="List the notes instead: units applied with a field unknown (a department code...).",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 200,
    data_dir: DataDir = None,
) -> None:
    """List dead letters with where (file, line, column/field) and why."""
    settings = load_settings(data_dir)

    async def go() -> None:
        async with build_hub(settings) as hub:
            letters = await hub.dead_letters.query(
                status=None if all_ else "open",
                system=system,
                limit=limit,
                kind="note" if notes else "failure",
            )
            what = "Notes (units kept with a field unknown)" if notes else "Dead letters"
            console.print(
                dead_letter_table(letters, title=f"{what} ({len(letters)}{'' if all_ else ' open'})")
            )

    run(go)


@dlq_app.command("retry")
def dlq_retry(
    system: SystemOpt = None,
    raw_ref: Annotated[str | None, typer.Option("--raw-ref", help="Only this raw message.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Translate again every raw message that has open dead letters, with the current mapping.

    Rows that now translate are published (rows that had landed before are recognised and not
    repeated); dead letters that no longer fail are marked resolved. Exit 1 if some still fail.
    """
    settings = load_settings(data_dir)

    async def go() -> int:
        async with build_hub(settings) as hub:
            outcome = await HubDeadLetters(hub).retry(system=system, raw_ref=raw_ref)
            await drain(hub)
            after = await hub.dead_letters.query(system=system)
            console.print(
                f"retried {outcome.retried} message(s): {outcome.resolved} dead letter(s) resolved, "
                f"{outcome.still_open} still open"
            )
            if after:
                console.print(dead_letter_table(after[:50], title="Still failing"))
            return 1 if after else 0

    raise typer.Exit(run(go))
