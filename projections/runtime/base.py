"""What a projection is: a named fold of canonical events into its own SQL tables.

A projection never talks to the bus and never commits: `projections.runtime.tracking.apply_once` calls
`apply` inside the transaction that also records offsets and event ids, which is what makes the
effect happen exactly once. Its tables are prefixed by its name (`asset_registry_assets`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Connection, MetaData

    from schemas.catalogue import Event
    from schemas.envelope import EventBase


class Projection(Protocol):
    """A read model fed by canonical events.

    `topics` are unprefixed catalogue names (`canonical.asset.v1`); the runner adds the
    deployment prefix. `apply` folds a batch inside the caller's transaction: unknown event
    types are ignored (not errors), applying the same events again changes nothing, and the
    result of one call on a batch equals calls on any split of it, in order.

    Every projection `hub.bootstrap.make_projections` returns is checked by the shared contract
    (tests/contract/test_projection_contract.py). One that cannot meet a case by design says so
    in an optional `contract_exemptions: Mapping[str, str]` attribute: case name -> reason.
    """

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[str, ...]: ...

    @property
    def metadata(self) -> MetaData: ...

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase] | None:
        """Fold `events`; return derived events this batch concluded (staged in the same
        transaction by the caller, published once; see projections.runtime.derived), or None."""
        ...


@runtime_checkable
class Ticking(Protocol):
    """A projection whose conclusions also depend on time passing (SLA breaches, due dates).

    The runner calls `tick` with its clock's `now` after applying, and periodically while idle,
    in a transaction of its own. Like `apply`, it returns derived events with deterministic ids
    (e.g. uuid5 over work order + SLA kind + escalation level), so ticking twice is harmless.
    """

    def tick(self, conn: Connection, now: datetime) -> Sequence[EventBase]: ...
