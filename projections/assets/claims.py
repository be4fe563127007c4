"""Claims on non-card identifiers: what settles an identifier two anchored records both claim.

A *claim* is a link of an identifier (UDI, serial, a system's code: any scheme but the HRP card)
to a record, from `asset.registered` or `asset.identifier_linked`. Stored
(`asset_registry_claims`): each golden record's first claim of an identifier (its
*representative* claim; later ones by the same record add nothing), and every person's link.

The rule (projections.assets.identity applies it when an anchored record claims an identifier another
anchored record holds), a function of the claims alone, never of the order they arrive in:
- Claims are ordered by (occurred_at, event_id): the business time, then the event id for ties.
- The identifier lives on the record of the latest person's link, if any; otherwise on the
  record whose representative claim comes first.
- Every pair of records with a representative claim on the identifier is one conflict: the
  record whose claim comes first is `holder_asset_id`, the other `claimant_asset_id`, and the
  later of the two claims is the trigger (the refused link: its event, times and source).
- A conflict is resolved iff the latest person's link of the identifier is no earlier (by
  occurred_at: a person at the same moment has seen it) than its trigger; it then names that
  link and the record it chose.

A record's representative claim is its first in arrival order, which is a property of the log
when the record's claims come from one subject (one partition): the usual case, one source
system's id per anchored record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projections.assets.tables import claims
from projections.runtime.fetch import select_in
from projections.runtime.upsert import upsert

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from sqlalchemy import Connection

    from schemas.envelope import EventBase

Key = tuple[str, str]  # (scheme, value)
PERSON = "person"


@dataclass(frozen=True, slots=True)
class Claim:
    """One link of an identifier, with what a conflict it triggers carries."""

    event_id: str
    occurred_at: datetime
    recorded_at: datetime
    linked_by: str
    source_system: str
    site: str
    raw_ref: str | None
    correlation_id: str | None

    @property
    def order(self) -> tuple[datetime, str]:
        """The total order of claims: business time, then event id."""
        return (self.occurred_at, self.event_id)

    @classmethod
    def of(cls, event: EventBase, linked_by: str) -> Claim:
        return cls(
            event_id=str(event.event_id),
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            linked_by=linked_by,
            source_system=event.source.system.value,
            site=event.source.site,
            raw_ref=event.source.raw_ref,
            correlation_id=event.correlation_id,
        )


@dataclass
class Claims:
    """The stored claims of the identifiers one batch links, and this batch's new ones.

    Each claim is kept with the golden id its record had when it was read or made; `final`
    (the crosswalk's) follows merges since.
    """

    final: Callable[[str], str]
    by_key: dict[Key, list[tuple[str, Claim]]] = field(default_factory=dict)
    fresh: list[tuple[Key, str, Claim]] = field(default_factory=list)
    decided: set[Key] = field(default_factory=set)  # keys whose latest person's link is new

    def load(self, conn: Connection, keys: Iterable[Key]) -> None:
        wanted = set(keys)
        for key in wanted:
            self.by_key.setdefault(key, [])
        for row in select_in(conn, claims, "value", sorted({value for _, value in wanted})):
            key = (row["scheme"], row["value"])
            if key in wanted:
                self.by_key[key].append((row["asset_id"], _claim(row)))

    def representative(self, key: Key, golden: str) -> Claim | None:
        """`golden`'s first claim of `key` (the earliest, should merges have given it several)."""
        found = [c for g, c in self.by_key.get(key, ()) if c.linked_by != PERSON and self.final(g) == golden]
        return min(found, key=lambda c: c.order, default=None)

    def representatives(self, key: Key) -> dict[str, Claim]:
        """Each record's representative claim of `key`, by golden id."""
        out: dict[str, Claim] = {}
        for g, c in self.by_key.get(key, ()):
            if c.linked_by == PERSON:
                continue
            golden = self.final(g)
            if golden not in out or c.order < out[golden].order:
                out[golden] = c
        return out

    def latest_person(self, key: Key) -> tuple[str, Claim] | None:
        """The latest person's link of `key`, with the golden id it chose."""
        people = [(g, c) for g, c in self.by_key.get(key, ()) if c.linked_by == PERSON]
        if not people:
            return None
        golden, claim = max(people, key=lambda p: p[1].order)
        return self.final(golden), claim

    def placed_by(self, key: Key, holder: str) -> tuple[str, str] | None:
        """(linked_by, event id) of the link that decides where `key` lives: the latest person's,
        else `holder`'s first claim; None when no claim of it is known (linked before claims were kept)."""
        person = self.latest_person(key)
        claim = person[1] if person is not None else self.representative(key, holder)
        return None if claim is None else (claim.linked_by, claim.event_id)

    def record(self, key: Key, golden: str, claim: Claim) -> bool:
        """Keep `claim` if it is `golden`'s first of `key`, or a person's; True if it was kept."""
        known = self.by_key.setdefault(key, [])
        if claim.linked_by == PERSON:
            if any(c.event_id == claim.event_id for _, c in known):
                return False
            latest = self.latest_person(key)
            if latest is None or claim.order > latest[1].order:
                self.decided.add(key)
        elif self.representative(key, golden) is not None:
            return False
        known.append((golden, claim))
        self.fresh.append((key, golden, claim))
        return True

    def flush(self, conn: Connection) -> None:
        rows = [
            {
                "value": value,
                "scheme": scheme,
                "event_id": c.event_id,
                "asset_id": self.final(golden),
                "linked_by": c.linked_by,
                "occurred_at": c.occurred_at,
                "recorded_at": c.recorded_at,
                "source_system": c.source_system,
                "site": c.site,
                "raw_ref": c.raw_ref,
                "correlation_id": c.correlation_id,
            }
            for (scheme, value), golden, c in self.fresh
        ]
        # In key order (stable: a repeat keeps its first row): each page of the key is visited once.
        rows.sort(key=lambda r: (r["value"], r["scheme"], r["event_id"]))
        upsert(conn, claims, rows, key=("value", "scheme", "event_id"), update=False)


def _claim(row: Any) -> Claim:
    return Claim(
        event_id=row["event_id"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        linked_by=row["linked_by"],
        source_system=row["source_system"],
        site=row["site"],
        raw_ref=row["raw_ref"],
        correlation_id=row["correlation_id"],
    )
