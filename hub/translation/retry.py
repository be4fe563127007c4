"""Retrying dead letters: run the current mapping over the raw messages that have open ones.

Shared by `hub dlq retry` and `POST /dlq/retry`. Units that now translate are published (units
that had landed before are recognised by their event ids and not repeated); dead letters that no
longer fail are marked resolved by the translation worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.bootstrap import Hub
    from hub.translation.deadletters import DeadLetter

Visible = Callable[[Iterable[str]], Awaitable[set[str]]]
"""Narrows raw references to those a caller may see (hub.api.scope.Scope.raw_refs)."""

SCAN_ALL = 1_000_000  # a scoped listing filters every dead letter before it pages


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    retried: int  # raw messages translated again
    resolved: int  # dead letters that no longer fail
    still_open: int


class HubDeadLetters:
    """Dead letters of one hub: list them, retry them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def query(
        self, *, status: str | None, system: str | None, limit: int, visible: Visible | None = None
    ) -> list[DeadLetter]:
        """Dead letters, oldest first; with `visible`, only those of raw messages it keeps."""
        store = self._hub.dead_letters
        if visible is None:
            return await store.query(status=status, system=system, limit=limit)
        letters = await store.query(status=status, system=system, limit=SCAN_ALL)
        keep = await visible(d.raw_ref for d in letters)
        return [d for d in letters if d.raw_ref in keep][:limit]

    async def page(
        self,
        *,
        status: str | None,
        system: str | None,
        limit: int,
        offset: int,
        visible: Visible | None = None,
    ) -> tuple[list[DeadLetter], int]:
        """One page of dead letters, oldest first, and how many match over all pages."""
        store = self._hub.dead_letters
        if visible is None:
            found = await store.query(status=status, system=system, limit=limit, offset=offset)
            return found, await store.count(status=status, system=system)
        letters = await store.query(status=status, system=system, limit=SCAN_ALL)
        keep = await visible(d.raw_ref for d in letters)
        mine = [d for d in letters if d.raw_ref in keep]
        return mine[offset : offset + limit], len(mine)

    async def of_message(self, raw_ref: str) -> list[DeadLetter]:
        """Every dead letter of one raw message, open or resolved."""
        return await self._hub.dead_letters.query(status=None, raw_ref=raw_ref, limit=SCAN_ALL)

    async def reprocess(self, refs: Sequence[str]) -> RetryOutcome:
        """Translate `refs` again with the current mapping, whatever their status (the message browser)."""
        hub = self._hub

        async def still_open() -> int:
            count = 0
            for ref in refs:
                count += sum(d.status == "open" for d in await self.of_message(ref))
            return count

        before = await still_open()
        for ref in refs:
            record = await hub.archive.get(ref)
            await hub.worker(record.system).process(record)
        after = await still_open()
        return RetryOutcome(retried=len(refs), resolved=before - after, still_open=after)

    async def known(self, raw_ref: str) -> bool:
        """Whether the archive holds `raw_ref` (a retry of an unknown message is a 404, not a crash)."""
        return await self._hub.archive.lookup(raw_ref) is not None

    async def retry(
        self, *, system: str | None, raw_ref: str | None, visible: Visible | None = None
    ) -> RetryOutcome:
        """Translate again the raw messages with open dead letters (those `visible` keeps)."""
        hub = self._hub
        refs = [raw_ref] if raw_ref else await hub.dead_letters.open_raw_refs(system)
        if visible is not None:
            keep = await visible(refs)
            refs = [r for r in refs if r in keep]

        async def still_open() -> int:
            letters = await hub.dead_letters.query(system=system, limit=SCAN_ALL)
            return len(letters if visible is None else [d for d in letters if d.raw_ref in refs])

        before = await still_open()
        for ref in refs:
            record = await hub.archive.get(ref)
            await hub.worker(record.system).process(record)
        after = await still_open()
        return RetryOutcome(retried=len(refs), resolved=before - after, still_open=after)
