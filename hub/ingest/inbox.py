"""Drop-folder transport: `inbox/<system>/` is watched; each file is archived, then answered by moving it.

The answer comes only after the bytes are durable and translated: `processed/` (with a
`.error.txt` beside it listing rows that were dead-lettered, if any) or `failed/` (with a
`.error.txt` saying why the file as a whole could not be stored or read). A file still being
written (size or mtime changing between scans, or a `.part`/`.tmp`/hidden name) is left alone.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from hub.errors import ConfigError, NotStored
from hub.pipeline import ingest_path

if TYPE_CHECKING:
    from pathlib import Path

    from hub.bootstrap import Hub
    from hub.translation.deadletters import DeadLetter

logger = structlog.get_logger()

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")


class InboxWatcher:
    def __init__(self, hub: Hub, root: Path, *, settle_s: float = 0.5, wait_s: float = 600.0) -> None:
        self._hub = hub
        self._root = root
        self._seen: dict[Path, tuple[int, float]] = {}
        self._settle_s = settle_s
        self._wait_s = wait_s
        for system in hub.workers:
            for sub in ("", "processed", "failed"):
                (root / system / sub).mkdir(parents=True, exist_ok=True)

    def _ready(self) -> list[tuple[str, Path]]:
        ready = []
        for system in sorted(self._hub.workers):
            for path in sorted((self._root / system).iterdir()):
                if not path.is_file() or path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # answered meanwhile by another process watching the same folder
                sig = (stat.st_size, stat.st_mtime)
                if self._seen.get(path) == sig:
                    ready.append((system, path))
                else:
                    self._seen[path] = sig  # seen changing: wait for the next scan
        return ready

    async def scan_once(self) -> int:
        handled = 0
        for system, path in self._ready():
            await self.handle(system, path)
            self._seen.pop(path, None)
            handled += 1
        return handled

    async def handle(self, system: str, path: Path) -> None:
        """Archive one file, wait for its translation, answer it by moving it.

        Several `hub serve` processes may watch one folder: they may both archive a file (the
        archive keeps one record per content) and race to answer it; the one that finds the file
        gone leaves it to the other instead of failing.
        """
        try:
            outcome = await ingest_path(self._hub, system, path)
        except FileNotFoundError:
            logger.info("inbox_file_taken", system=system, filename=path.name)
            return
        except (NotStored, ConfigError) as exc:
            _answer(path, self._root / system / "failed", f"{path.name}: not stored: {exc}\n")
            logger.warning("inbox_file_refused", system=system, filename=path.name, reason=str(exc))
            return
        raw_ref = outcome.record.raw_ref
        status = await self._wait_translated(raw_ref)
        if status is None:
            logger.info("inbox_file_pending", system=system, filename=path.name, raw_ref=raw_ref)
            return  # stays in the inbox; it is archived, and the next scan answers it
        letters = [d for d in await self._hub.dead_letters.query(system=system) if d.raw_ref == raw_ref]
        whole = [d for d in letters if d.position == "message"]
        note = _error_text(path.name, raw_ref, outcome.duplicate, letters)
        target = self._root / system / ("failed" if whole else "processed")
        if not _answer(path, target, note if letters else None):
            logger.info("inbox_file_taken", system=system, filename=path.name, raw_ref=raw_ref)
            return
        logger.info(
            "inbox_file_answered",
            system=system,
            filename=path.name,
            raw_ref=raw_ref,
            outcome=target.name,
            dead_letters=len(letters),
            duplicate=outcome.duplicate,
        )

    async def _wait_translated(self, raw_ref: str) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while loop.time() < deadline:
            status = await self._hub.archive.status(raw_ref)
            if status is not None and status.status != "pending":
                return status.status
            await asyncio.sleep(0.1)
        return None

    async def run_forever(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            await self.scan_once()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue


def _error_text(name: str, raw_ref: str, duplicate: bool, letters: list[DeadLetter]) -> str:
    lines = [f"{name}: archived as {raw_ref}" + (" (already received: an exact resend)" if duplicate else "")]
    lines += [f"  {_where(d.location.as_dict())}: {d.reason}" for d in letters]
    lines += [
        "",
        "Fix the source or the mapping, then run: hub dlq retry --system "
        + (letters[0].system if letters else ""),
    ]
    return "\n".join(lines) + "\n"


def _where(location: dict[str, object]) -> str:
    parts = [
        str(location[k]) if k == "file" else f"{k} {location[k]}"
        for k in ("file", "line", "column", "field")
        if k in location
    ]
    return ", ".join(parts) or "(whole file)"


def _answer(path: Path, folder: Path, error_text: str | None) -> bool:
    """Move `path` into `folder` (with its error note); False when it is gone (answered elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}{path.suffix}"
    note = folder / f"{target.name}.error.txt"
    if error_text is not None:
        note.write_text(error_text, encoding="utf-8")  # beside the file before it shows up there
    try:
        shutil.move(path, target)
    except FileNotFoundError:
        if error_text is not None and target.name != path.name:
            note.unlink(missing_ok=True)  # a renamed answer that never happened; the winner wrote its own
        return False
    return True
