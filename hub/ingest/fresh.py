"""The outbox's records as this process just committed them, handed to the relay from memory.

The relay used to read every new record back from the archive (a query, the payload, the record
rebuilt from its columns) moments after the archive wrote it. Once a relay follows this feed, the
archive adds each record it commits (inside the commit, under its write lock) and the relay takes
them from here. The archive stays the outbox: a record is on disk before its sender is answered,
and marked published only after the bus has it, so a crash loses nothing but this memory; the
relay's sweep of the archive (`unpublished`) publishes what is left. The relay sweeps at start,
after the feed overflowed (`lost`), and at least every second (records written by another process on
the same archive, or put back in the outbox); what a sweep returns is forgotten here, so each record
goes out once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hub.ports import RawRecord

FRESH_KEPT = 5_000  # records held for the relay; past this the feed is dropped and the relay sweeps
# Their payload bytes held at most (inline payloads reach 1 MiB: a broker outage during a file
# import must not pile them up in memory; the archive has them).
FRESH_KEPT_BYTES = 32 * 1024 * 1024


class FreshFeed:
    """Committed, not yet published records in commit order: (record, payload as stored or None)."""

    def __init__(self, kept: int = FRESH_KEPT, kept_bytes: int = FRESH_KEPT_BYTES) -> None:
        self._kept = kept
        self._kept_bytes = kept_bytes
        self._bytes = 0
        self._lock = threading.Lock()  # the archive's commit thread adds, the relay takes
        self._items: OrderedDict[str, tuple[RawRecord, bytes | None]] = OrderedDict()
        self.following = False  # nothing is kept until a relay follows (no relay, no memory held)
        self.lost = False  # records were dropped (overflow): only a sweep finds them

    def follow(self) -> None:
        self.following = True

    def add(self, items: Iterable[tuple[RawRecord, bytes | None]]) -> None:
        """Records just committed (or put back in the outbox); called under the archive's write lock."""
        if not self.following:
            return
        with self._lock:
            for record, payload in items:
                replaced = self._items.pop(record.raw_ref, None)
                if replaced is not None:
                    self._bytes -= _size(replaced[1])
                self._items[record.raw_ref] = (record, payload)
                self._bytes += _size(payload)
            if len(self._items) > self._kept or self._bytes > self._kept_bytes:
                self._items.clear()
                self._bytes = 0
                self.lost = True

    def swept(self) -> None:
        """A sweep of the archive is reading the outbox now (under the archive's write lock)."""
        with self._lock:
            self.lost = False

    def take(self, limit: int) -> list[tuple[RawRecord, bytes | None]]:
        with self._lock:
            n = min(limit, len(self._items))
            taken = [self._items.popitem(last=False)[1] for _ in range(n)]
            self._bytes -= sum(_size(payload) for _, payload in taken)
            return taken

    def forget(self, refs: Iterable[str]) -> None:
        """Records a sweep returned: they go out from the sweep, not again from here."""
        with self._lock:
            for ref in refs:
                dropped = self._items.pop(ref, None)
                if dropped is not None:
                    self._bytes -= _size(dropped[1])

    def __len__(self) -> int:
        return len(self._items)


def _size(payload: bytes | None) -> int:
    return 0 if payload is None else len(payload)
