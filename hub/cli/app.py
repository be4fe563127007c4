"""The typer application and what every command shares: settings, logging, the event loop."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import platform
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


# glibc gives each thread that allocates its own malloc arena (up to 8 per core); freed memory
# stays in the arena it came from. hub serve's threads (one per bus consumer, SQLite and
# translation threads) left tens of MB of such free space per process: with 2 arenas the pair's
# peak RSS at 10,000 rows fell by about 30 MB (bench_e2e_file). The projector child inherits it.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def limit_malloc_arenas() -> None:
    """For `hub serve`, before any thread starts: at most MALLOC_ARENAS glibc malloc arenas, in
    this process (mallopt) and in the processes it starts (MALLOC_ARENA_MAX). A MALLOC_ARENA_MAX
    already set is left as it is (glibc read it at start); elsewhere than glibc, nothing."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    libc_name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(libc_name), "mallopt", None) if libc_name else None
    if mallopt is None or platform.libc_ver()[0] != "glibc":
        return
    os.environ["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:

    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())
