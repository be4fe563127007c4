"""The typer application and what every command shares: settings, logging, the event loop."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from hub.errors import ConfigError
from hub.logging import configure_logging
from hub.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    name="hub",
    help="Hospital integration hub: ingest HIS/HRP/OA/SPD data, publish canonical events, serve read models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (scripts, CI logs) gets wide tables instead of rich's 80-column folding.
_WIDTH = int(os.environ.get("COLUMNS", "0")) or (None if sys.stdout.isatty() else 180)
console = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: HUB_DATA_DIR or ./hub-data).")
]


def load_settings(data_dir: Path | None = None, *, log_level: str = "warning") -> Settings:
    """Settings from env/hub.toml, with the command line's --data-dir on top.

    `log_level`: the command's default when HUB_LOG_LEVEL is unset.
    """
    if data_dir is not None:
        os.environ["HUB_DATA_DIR"] = str(data_dir)
    try:
        settings = Settings()
    except (ValidationError, ConfigError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings.log_format, settings.log_level or log_level)
    return settings


# Batches of thousands of events make many short-lived objects: a larger first generation runs
# the collector less often, and freezing what start-up imported (modules, pydantic models, SQL
# metadata) keeps every full collection from walking it again (bench_registry measures the gain).
GC_GEN0 = 10_000


def tune_gc_for_service() -> None:
    """For a long-running process only (`hub serve`): frozen objects are never collected."""
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
    gc.freeze()


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:

    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())
