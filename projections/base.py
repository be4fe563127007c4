"""What a projection is: a named fold of canonical events into its own SQL tables.

A projection never talks to the bus and never commits: `projections.tracking.apply_once` calls
`apply` inside the transaction that also records offsets and event ids, which is what makes the
effect happen exactly once. Its tables are prefixed by its name (`asset_registry_assets`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection, MetaData

    from schemas.catalogue import Event


class Projection(Protocol):
    """A read model fed by canonical events.

    `topics` are unprefixed catalogue names (`canonical.asset.v1`); the runner adds the
    deployment prefix. `apply` folds a batch inside the caller's transaction: unknown event
    types are ignored (not errors), applying the same events again changes nothing, and the
    result of one call on a batch equals calls on any split of it, in order.
    """

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[str, ...]: ...

    @property
    def metadata(self) -> MetaData: ...

    def apply(self, conn: Connection, events: Sequence[Event]) -> None: ...
