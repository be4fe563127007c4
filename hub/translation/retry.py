"""Retrying dead letters: run the current mapping over the raw messages that have open ones.

Shared by `hub dlq retry` and `POST /dlq/retry`. Units that now translate are published (units
that had landed before are recognised by their event ids and not repeated); dead letters that no
longer fail are marked resolved by the translation worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.errors import MappingError

if TYPE_CHECKING:
    from hub.bootstrap import Hub
    from hub.translation.deadletters import DeadLetter

Visible = Callable[[Iterable[str]], Awaitable[set[str]]]
"""Narrows raw references to those a caller may see (hub.api.scope.Scope.raw_refs)."""

SCAN_ALL = 1_000_000  # a scoped listing filters every dead letter before it pages


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """Dead letters sharing a source system and a failure code."""

    system: str
    code: str
    count: int
    raw_refs: int  # distinct messages: what a retry of the group translates again
    reason: str  # the first one's wording, as an example
    mapping_versions: tuple[str, ...]  # the mappings they failed under


@dataclass(frozen=True, slots=True)
class MappingInUse:
    """The mapping a retry of `system` translates with now."""

    system: str
    version: str
    overridden: bool  # the hospital's file in HUB_MAPPING_DIR, not the bundled default
    file: str


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    retried: int  # raw messages translated again
    resolved: int  # dead letters that no longer fail, and notes no longer made
    still_open: int  # failures still open (notes not counted)


class HubDeadLetters:
    """Dead letters of one hub: list them, retry them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def query(
        self,
        *,
        status: str | None,
        system: str | None,
        limit: int,
        visible: Visible | None = None,
        kind: str | None = "failure",
    ) -> list[DeadLetter]:
        """Dead letters (of `kind`: failures, or notes), oldest first; with `visible`, only those of
        raw messages it keeps."""
        store = self._hub.dead_letters
        if visible is None:
            return await store.query(status=status, system=system, limit=limit, kind=kind)
        letters = await store.query(status=status, system=system, limit=SCAN_ALL, kind=kind)
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
        code: str | None = None,
        kind: str | None = "failure",
    ) -> tuple[list[DeadLetter], int]:
        """One page of dead letters (failures, or `kind="note"` notes), oldest first, and how many
        match over all pages."""
        store = self._hub.dead_letters
        if visible is None and code is None:
            found = await store.query(status=status, system=system, limit=limit, offset=offset, kind=kind)
            return found, await store.count(status=status, system=system, kind=kind)
        mine = await self.matching(status=status, system=system, code=code, visible=visible, kind=kind)
        return mine[offset : offset + limit], len(mine)

    async def matching(
        self,
        *,
        status: str | None,
        system: str | None,
        code: str | None,
        visible: Visible | None = None,
        kind: str | None = "failure",
    ) -> list[DeadLetter]:
        """Every dead letter matching the filters (oldest first), those of `visible` messages only."""
        letters = await self._hub.dead_letters.query(status=status, system=system, limit=SCAN_ALL, kind=kind)
        if code is not None:
            letters = [d for d in letters if d.code == code]
        if visible is None:
            return letters
        keep = await visible(d.raw_ref for d in letters)
        return [d for d in letters if d.raw_ref in keep]

    async def groups(
        self, *, status: str | None, system: str | None, visible: Visible | None = None
    ) -> list[ReasonGroup]:
        """The matching dead letters grouped by (system, code), largest group first."""
        found: dict[tuple[str, str], list[DeadLetter]] = {}
        for letter in await self.matching(status=status, system=system, code=None, visible=visible):
            found.setdefault((str(letter.system), letter.code), []).append(letter)
        out = [
            ReasonGroup(
                system=key[0],
                code=key[1],
                count=len(letters),
                raw_refs=len({d.raw_ref for d in letters}),
                reason=letters[0].reason,
                mapping_versions=tuple(sorted({d.mapping_version for d in letters if d.mapping_version})),
            )
            for key, letters in found.items()
        ]
        return sorted(out, key=lambda g: (-g.count, g.system, g.code))

    def mappings(self) -> list[MappingInUse]:
        """The mapping each source system translates (and retries) with now."""
        out = []
        for system, worker in sorted(self._hub.workers.items()):
            source = worker.mappings
            try:
                version = str(getattr(source.current(), "version", "unversioned"))
            except MappingError as exc:  # a broken override: shown, never silently replaced
                version = f"invalid: {exc}"[:200]
            out.append(
                MappingInUse(
                    system=system,
                    version=version,
                    overridden=source.path != worker.adapter.default_mapping,
                    file=source.path.name,
                )
            )
        return out

    async def of_message(self, raw_ref: str) -> list[DeadLetter]:
        """Every dead letter of one raw message, open or resolved."""
        return await self._hub.dead_letters.query(status=None, raw_ref=raw_ref, limit=SCAN_ALL, kind=None)

    async def reprocess(self, refs: Sequence[str]) -> RetryOutcome:
        """Translate `refs` again with the current mapping, whatever their status (the message browser)."""
        hub = self._hub

        async def still_open() -> tuple[int, int]:
            """Open letters (failures and notes), and open failures."""
            letters = [d for ref in refs for d in await self.of_message(ref) if d.status == "open"]
            return len(letters), sum(d.kind == "failure" for d in letters)

        before, _ = await still_open()
        for ref in refs:
            record = await hub.archive.get(ref)
            await hub.worker(record.system).process(record)
        after, failing = await still_open()
        return RetryOutcome(retried=len(refs), resolved=before - after, still_open=failing)

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

        async def still_open() -> tuple[int, int]:
            """Open letters (failures and notes: a retry resolves both), and open failures."""
            letters = await hub.dead_letters.query(system=system, limit=SCAN_ALL, kind=None)
            mine = letters if visible is None else [d for d in letters if d.raw_ref in refs]
            return len(mine), sum(d.kind == "failure" for d in mine)

        before, _ = await still_open()
        for ref in refs:
            record = await hub.archive.get(ref)
            await hub.worker(record.system).process(record)
        after, failing = await still_open()
        return RetryOutcome(retried=len(refs), resolved=before - after, still_open=failing)
