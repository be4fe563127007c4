"""Translators in worker processes, for the paths that translate to answer a sender (MLLP).

Translating a DFT^P03 is about 1 ms of pure Python; on the listener's event loop that CPU is
taken from the listener itself and from the pipeline sharing the process (one GIL). A pool
process translates instead and sends the `Translation` back (unpickling it costs about a third
of translating), so the listener keeps answering while the pipeline runs, and the result is
still handed to the translation worker: a message is translated once.

Each pool process loads the registered adapters and their mappings itself (the same
`MappingSource` rule: the hospital's override file if present, reloaded when it changes) and
says which mapping version it used. Whatever the translator raises is a whole-message failure
there, as in-process (hub.translation.safe). A pool that breaks (a process killed) is replaced;
the message in flight is translated in-process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from hub.translation.registry import ADAPTERS
from hub.translation.safe import run_translator
from hub.translation.worker import MappingSource

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.base import SourceLocation, TranslateContext, Translation
    from hub.ports import RawRecord

logger = structlog.get_logger()

# -- inside a pool process
_sources: dict[str, MappingSource] = {}


def _start(mapping_dir: Path | None, secret: bytes | None) -> None:
    for system, adapter in ADAPTERS.items():
        _sources[system] = MappingSource(adapter, mapping_dir, secret=secret)


def _translate(
    system: str, record: RawRecord, payload: bytes, ctx: TranslateContext, location: SourceLocation | None
) -> tuple[str, Translation]:
    mapping = _sources[system].current()
    ctx = replace(ctx, mapping_version=mapping.version)
    return mapping.version, run_translator(ADAPTERS[system], record, payload, mapping, ctx, location=location)


def _ready() -> bool:
    return True


# -- in the hub's process
class TranslatorPool:
    """`await translate(...)` in one of `processes` spawned processes (started on first use)."""

    def __init__(self, processes: int, mapping_dir: Path | None, secret: bytes | None) -> None:
        if processes < 1:
            raise ValueError("a translator pool needs at least one process")
        self._processes = processes
        self._args = (mapping_dir, secret)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the hub's process has threads (SQLite, the bus) whose locks a
            # forked child would inherit held.
            self._executor = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=self._args,
            )
        return self._executor

    def start(self) -> None:
        """Start the processes now (they import the adapters: a second or two), not on the first message."""
        pool = self._pool()
        for _ in range(self._processes):
            pool.submit(_ready)

    async def translate(
        self,
        system: str,
        record: RawRecord,
        payload: bytes,
        ctx: TranslateContext,
        location: SourceLocation | None = None,
    ) -> tuple[str, Translation]:
        """(mapping version used, translation). Raises BrokenProcessPool when the pool broke
        (it is replaced for the next call)."""
        pool = self._pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, _translate, system, record, payload, ctx, location)
        except BrokenProcessPool:
            logger.warning("translator_pool_broken", processes=self._processes)
            if self._executor is pool:
                self._executor = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
