"""Retrying dead letters: run the current mapping over the raw messages that have open ones.

Shared by `hub dlq retry` and `POST /dlq/retry`. Units that now translate are published (units
that had landed before are recognised by their event ids and not repeated); dead letters that no
longer fail are marked resolved by the translation worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.bootstrap import Hub
    from hub.deadletters import DeadLetter


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    retried: int  # raw messages translated again
    resolved: int  # dead letters that no longer fail
    still_open: int


class HubDeadLetters:
    """Dead letters of one hub: list them, retry them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def query(self, *, status: str | None, system: str | None, limit: int) -> list[DeadLetter]:
        return await self._hub.dead_letters.query(status=status, system=system, limit=limit)

    async def retry(self, *, system: str | None, raw_ref: str | None) -> RetryOutcome:
        hub = self._hub
        refs = [raw_ref] if raw_ref else await hub.dead_letters.open_raw_refs(system)
        before = len(await hub.dead_letters.query(system=system))
        for ref in refs:
            record = await hub.archive.get(ref)
            await hub.worker(record.system).process(record)
        after = len(await hub.dead_letters.query(system=system))
        return RetryOutcome(retried=len(refs), resolved=before - after, still_open=after)
