"""Identity resolution: which golden record (hub asset id) each name of a device belongs to.

A device has many names: source identifiers (`hrp.card`, `udi`, `serial` = `<manufacturer>|<serial>`,
`his.code`, `spd.code`, `oa.no`, `fhir.device`) and record ids, the subjects events are keyed by.
Adapters mint a subject from one identifier (`schemas.ids.asset_id_for`), so an identifier and the
id minted from it are one name; a subject no linked identifier explains (an adapter's own id) is
an *alias*. A *cluster* is every name known to mean one device; it lives on one golden record.

Rules, and why:
- Links come from `asset.registered` (all its identifiers, plus its UDI and manufacturer+serial,
  which is how two systems' records of one device meet automatically) and `asset.identifier_linked`.
  A link joins the subject's cluster and the identifier's: nothing is emitted for an automatic
  match, it is a deterministic consequence of the log.
- An event keyed by a name no link explains yet creates a provisional cluster; a later link that
  names it merges it (state and history move to the golden record, see projections.assets.state).
- The golden id is the cluster's best candidate: first a *declared* alias (the subject of an
  `asset.registered` not minted from any identifier it names: an id the source chose for the
  device itself), then ids minted from identifiers by SCHEME_PRIORITY, then undeclared aliases
  (provisional ids whose identifier nobody named yet); ties by smallest id. It depends only on
  the cluster's names, so it is the same whatever order the links arrived in. A name's rank
  only improves (an alias gets declared, or explained by an identifier), so an id merged away
  can become the golden id again: its record is revived and its merge record dropped.
- Clusters anchored by an HRP card (the ledger: one card, one device) never merge with another
  anchored cluster: the link is refused and reported as a Conflict (asset.identity_conflict).
  Which one keeps a contested non-card identifier (UDI, serial, a system's code) is settled by
  projections.assets.claims, from the claims alone, never from the order they arrive in: the
  record of the latest person's link (`linked_by="person"`, by occurred_at then event id), else
  the record whose first claim comes first by (occurred_at, event_id); one conflict per pair of
  claiming records, resolved once a person's link follows it. Moving the identifier moves no
  rows: both records are anchored by a card, which outranks it. HRP cards are not moved at all,
  by people either (the ledger is corrected instead): a second record claiming a card is a
  conflict raised by that link, and which record holds the card is first come, first served.
- What still depends on how partitions interleave: a record that links an identifier while it
  is provisional (before its registration names its card) merges with whichever record holds
  the identifier at that moment; a card claimed by two records; and an anchored record whose
  claims come from several subjects (its first claim is the first to arrive).

`Crosswalk` holds, for one batch, the names the batch touches and the full clusters its links
touch, folds links in memory, and writes only the differences back (`flush`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, update

from projections.assets.claims import PERSON, Claim, Claims
from projections.assets.tables import aliases, claims, identifiers, merges
from projections.runtime.fetch import select_in
from projections.runtime.upsert import chunks, in_values, upsert
from schemas._base import Identifier
from schemas.ids import asset_id_from

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import Connection

    from schemas.envelope import EventBase

# `eui64` and `ns` (an identifier of a namespace no mapping lists) name a device before a FHIR
# server's own Device.id does (adapters/namespaces.py).
SCHEME_PRIORITY = (
    "hrp.card", "udi", "serial", "his.code", "spd.code", "oa.no", "eui64", "ns", "fhir.device",
)  # fmt: skip
ANCHOR_SCHEME = "hrp.card"
_DECLARED_RANK = -1
_RANKS = {scheme: rank for rank, scheme in enumerate(SCHEME_PRIORITY)}
_OTHER_RANK = len(SCHEME_PRIORITY)
_UNDECLARED_RANK = _OTHER_RANK + 1

Key = tuple[str, str]  # (scheme, value)
_ALIAS_COLUMNS = ("alias_id", "asset_id", "declared")


def minted_id(ident: Identifier) -> str:
    """`schemas.ids.asset_id_for`, remembered: a batch mints the same identifiers several times."""
    return _minted(ident.scheme, ident.value)


# Sized for a batch (a thousand records, a few identifiers each), not the fleet: an entry costs
# ~250 bytes, and at 1 << 16 the cache alone held 16 MB of the projector by 30,000 assets.
@lru_cache(maxsize=1 << 13)
def _minted(scheme: str, value: str) -> str:
    # Keyed by plain strings: hashing the frozen pydantic model costs more than the uuid5.
    return asset_id_from(scheme, value)


def scheme_rank(scheme: str) -> int:
    """Position of `scheme` in SCHEME_PRIORITY (unknown schemes after all known ones)."""
    return _RANKS.get(scheme, _OTHER_RANK)


def link_identifiers(event: EventBase) -> list[Identifier]:
    """The identifiers a linking event names, deduplicated, in the order it names them.

    A registration's details add its UDI and manufacturer+serial: two records with equal ones
    are one device (the automatic match).
    """
    from schemas.assets import AssetIdentifierLinked, AssetRegistered  # noqa: PLC0415  (cycle-free, light)

    found: list[Identifier] = []
    if isinstance(event, AssetRegistered):
        found += event.payload.identifiers
        details = event.payload.details
        if details.udi and details.udi.strip():
            found.append(Identifier(scheme="udi", value=details.udi))
        if details.manufacturer and details.serial_number:
            serial = f"{details.manufacturer.strip()}|{details.serial_number.strip()}"
            if serial.strip("|") == serial:  # both parts non-blank
                found.append(Identifier(scheme="serial", value=serial))
    elif isinstance(event, AssetIdentifierLinked):
        found.append(event.payload.identifier)
    unique: dict[Key, Identifier] = {}
    for ident in found:
        unique.setdefault((ident.scheme, ident.value), ident)
    return list(unique.values())


@dataclass
class Cluster:
    """Every name of one device: identifiers (with the id minted from each) and aliases."""

    idents: dict[Key, str] = field(default_factory=dict)
    aliases: dict[str, bool] = field(default_factory=dict)  # alias -> declared

    def candidates(self) -> Iterator[tuple[int, str]]:
        for (scheme, _), minted in self.idents.items():
            yield scheme_rank(scheme), minted
        for alias, declared in self.aliases.items():
            yield _DECLARED_RANK if declared else _UNDECLARED_RANK, alias

    def golden(self) -> str:
        return min(self.candidates())[1]

    def preference(self, record_id: str) -> tuple[int, str]:
        """How strongly `record_id` (a name of this cluster) claims to be the golden id."""
        return min(
            (c for c in self.candidates() if c[1] == record_id), default=(_UNDECLARED_RANK + 1, record_id)
        )

    def anchored(self) -> bool:
        return any(scheme == ANCHOR_SCHEME for scheme, _ in self.idents)

    def names(self) -> Iterator[str]:
        yield from self.idents.values()
        yield from self.aliases

    def explain(self) -> None:
        """Drop undeclared aliases an identifier now explains (such an alias is that identifier's id)."""
        minted = set(self.idents.values())
        for alias in [a for a, declared in self.aliases.items() if not declared and a in minted]:
            del self.aliases[alias]


@dataclass(frozen=True, slots=True)
class Rekey:
    """Rows of `sources` (old golden ids, best first) now form the golden record `target`."""

    sources: tuple[str, ...]
    target: str
    event: EventBase


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two records claim `identifier`: `holder` first, `claimant` by `trigger`, the refused link."""

    identifier: Identifier
    holder: str
    claimant: str
    trigger: Claim


@dataclass(frozen=True, slots=True)
class Resolution:
    """A person linked `identifier` to `asset_id`: open conflicts over it are resolved."""

    identifier: Identifier
    asset_id: str
    event: EventBase


class Crosswalk:
    """The names one batch touches, their clusters, and the links folded over them."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}  # name -> golden id
        self.clusters: dict[str, Cluster] = {}  # complete clusters in memory, by golden id
        self.retired: dict[str, str] = {}  # old golden id -> the golden id it went to
        self.retired_by: dict[str, EventBase] = {}
        self.verdicts: list[Conflict | Resolution] = []  # over cards: refused links, people's links
        self.contests: list[Conflict] = []  # over other identifiers: new pairs of claiming records
        self.claims = Claims(self.final)
        self._meta: dict[Key, tuple[str, str]] = {}  # identifier -> (linked_by, event id)
        self._stored_idents: dict[Key, dict[str, Any]] = {}
        self._stored_aliases: dict[str, tuple[str, bool]] = {}  # alias -> (golden, declared)
        self._targets: set[str] = set()  # golden ids rekeys produced (one may be an id merged away before)

    # -- loading ---------------------------------------------------------------------------

    def load(self, conn: Connection, names: set[str], cluster_names: set[str], keys: set[Key]) -> None:
        """Resolve `names` from the tables; load the whole cluster of each of `cluster_names`, and
        the claims of `keys` (every non-card identifier the batch links).

        Every name the batch will use must be in `names`: a name not found is new.
        """
        self.claims.load(conn, keys)
        self._read(conn, "minted_id", "alias_id", sorted(names))
        goldens = sorted({self.owner[n] for n in cluster_names if n in self.owner})
        self._read(conn, "asset_id", "asset_id", goldens)
        for golden in goldens:
            self.clusters.setdefault(golden, Cluster())
        for key, row in self._stored_idents.items():
            if row["asset_id"] in self.clusters:
                self.clusters[row["asset_id"]].idents[key] = row["minted_id"]
        for alias, (golden, declared) in self._stored_aliases.items():
            if golden in self.clusters:
                self.clusters[golden].aliases[alias] = declared

    def _read(self, conn: Connection, ident_key: str, alias_key: str, values: list[str]) -> None:
        for row in select_in(conn, identifiers, ident_key, values):
            key = (row["scheme"], row["value"])
            self._stored_idents[key] = row
            self._meta.setdefault(key, (row["linked_by"], row["event_id"]))
            self.owner[row["minted_id"]] = row["asset_id"]
        for row in select_in(conn, aliases, alias_key, values, columns=_ALIAS_COLUMNS):
            self._stored_aliases[row["alias_id"]] = (row["asset_id"], bool(row["declared"]))
            self.owner[row["alias_id"]] = row["asset_id"]

    # -- folding ---------------------------------------------------------------------------

    def final(self, asset_id: str) -> str:
        """The golden id `asset_id` lives under after every merge so far."""
        while asset_id in self.retired:
            asset_id = self.retired[asset_id]
        return asset_id

    def ensure(self, subject: str) -> str:
        """The golden id of `subject`; a name never seen starts a provisional cluster of its own."""
        golden = self.owner.get(subject)
        if golden is None:
            self.clusters[subject] = Cluster(aliases={subject: False})
            self.owner[subject] = golden = subject
        return golden

    def link(
        self,
        subject: str,
        idents: list[Identifier],
        linked_by: str,
        event: EventBase,
        *,
        declare: bool = False,
    ) -> list[Rekey]:
        """Link `idents` to `subject`'s device; return the row moves this implies, in order.

        `declare`: the event is a registration, so a subject none of `idents` mints is an id the
        source chose for the device (a declared alias).
        """
        ops: list[Rekey] = []
        golden = self.ensure(subject)
        mints = [minted_id(i) for i in idents]
        if declare and subject not in mints:
            self.clusters[golden].aliases[subject] = True
        fresh = [i for i, m in zip(idents, mints, strict=True) if m not in self.owner]
        claimed = sorted(
            (i for i, m in zip(idents, mints, strict=True) if m in self.owner),
            key=lambda i: (scheme_rank(i.scheme), i.value),
        )
        # Only contested names and non-card identifiers need the claim (the common registration
        # names one fresh card: no claim to build, a million times over in a rebuild).
        noted = [i for i in idents if i.scheme != ANCHOR_SCHEME]
        claim = Claim.of(event, linked_by) if claimed or noted else None
        for ident in fresh:
            self._add(golden, ident, linked_by, event)
        if claim is not None:
            for ident in claimed:
                golden = self._claim(golden, ident, claim, event, ops)
        best = self.clusters[golden].golden()
        if best != golden:
            self._rename(golden, best, (golden,), event, ops)
        if claim is not None:
            for ident in noted:
                self._note(ident, best, claim)
        return ops

    def _note(self, ident: Identifier, golden: str, claim: Claim) -> None:
        """Keep `golden`'s first claim of `ident` (or a person's); a first claim pairs `golden` with
        every other record claiming it: one conflict each (projections.assets.claims).

        Called once the link is folded, so `golden` is final: a registration's declared id may
        have just become the golden id.
        """
        key = (ident.scheme, ident.value)
        others = self.claims.representatives(key)
        if not self.claims.record(key, golden, claim) or claim.linked_by == PERSON:
            return
        for other, theirs in sorted(others.items()):
            if other != golden:
                first, second = sorted(((theirs, other), (claim, golden)), key=lambda p: p[0].order)
                self.contests.append(Conflict(ident, first[1], second[1], second[0]))

    def _claim(self, golden: str, ident: Identifier, claim: Claim, event: EventBase, ops: list[Rekey]) -> str:
        key, minted = (ident.scheme, ident.value), minted_id(ident)
        linked_by = claim.linked_by
        holder = self.owner[minted]
        if holder != golden:
            ours, theirs = self.clusters[golden], self.clusters[holder]
            if ours.anchored() and theirs.anchored():
                if ident.scheme != ANCHOR_SCHEME and key in theirs.idents:
                    self._contest(key, ident, holder, golden, claim)
                else:  # a card: first come, first served, and never moved (see the docstring)
                    self.verdicts.append(Conflict(ident, holder, golden, claim))
                return golden
            golden = self._merge(golden, holder, event, ops)
        if key not in self.clusters[golden].idents:
            self._add(golden, ident, linked_by, event)
        if linked_by == PERSON and ident.scheme == ANCHOR_SCHEME:
            self.verdicts.append(Resolution(ident, golden, event))
        return golden

    def _contest(self, key: Key, ident: Identifier, holder: str, golden: str, claim: Claim) -> None:
        """`golden` claims `key`, which anchored `holder` holds: settle it by the claims alone."""
        minted = minted_id(ident)
        if claim.linked_by == PERSON:
            latest = self.claims.latest_person(key)
            self.claims.record(key, golden, claim)
            if latest is None or claim.order > latest[1].order:
                self._move(key, minted, holder, golden, claim)
            return
        if self.claims.latest_person(key) is not None:
            return  # a person decided where it lives
        mine = self.claims.representative(key, golden) or claim  # this one, if it is its first
        held = self.claims.representative(key, holder)
        if held is not None and mine.order < held.order:
            self._move(key, minted, holder, golden, mine)

    def _add(self, golden: str, ident: Identifier, linked_by: str, event: EventBase) -> None:
        key, minted = (ident.scheme, ident.value), minted_id(ident)
        cluster = self.clusters[golden]
        cluster.idents[key] = minted
        cluster.explain()
        self.owner[minted] = golden
        self._meta.setdefault(key, (linked_by, str(event.event_id)))

    def _move(self, key: Key, minted: str, holder: str, golden: str, claim: Claim) -> None:
        # Neither golden id changes: both clusters are anchored by a card, which outranks the
        # moved (non-card) identifier, so the move needs no row to move.
        del self.clusters[holder].idents[key]
        self.clusters[golden].idents[key] = minted
        self.owner[minted] = golden
        self._meta[key] = (claim.linked_by, claim.event_id)

    def _merge(self, a: str, b: str, event: EventBase, ops: list[Rekey]) -> str:
        ca, cb = self.clusters.pop(a), self.clusters.pop(b)
        merged = Cluster({**ca.idents, **cb.idents}, {**ca.aliases, **cb.aliases})
        merged.explain()
        target = merged.golden()
        self.clusters[target] = merged
        sources = tuple(sorted((a, b), key=merged.preference))
        self._retarget(merged, target, sources, event, ops)
        return target

    def _rename(
        self, old: str, new: str, sources: tuple[str, ...], event: EventBase, ops: list[Rekey]
    ) -> None:
        cluster = self.clusters.pop(old)
        self.clusters[new] = cluster
        self._retarget(cluster, new, sources, event, ops)

    def _retarget(
        self, cluster: Cluster, target: str, sources: tuple[str, ...], event: EventBase, ops: list[Rekey]
    ) -> None:
        for name in cluster.names():
            self.owner[name] = target
        self.retired.pop(target, None)  # revived: an id merged away that wins again
        self._targets.add(target)
        for source in sources:
            if source != target:
                self.retired[source] = target
                self.retired_by[source] = event
        ops.append(Rekey(sources, target, event))

    # -- writing ---------------------------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write the crosswalk rows that changed, and re-point merge records at final ids."""
        want_idents: dict[Key, dict[str, Any]] = {}
        want_aliases: dict[str, tuple[str, bool]] = {}
        for golden, cluster in self.clusters.items():
            for (scheme, value), minted in cluster.idents.items():
                linked_by, event_id = self._placed_by((scheme, value), golden)
                want_idents[(scheme, value)] = {
                    "value": value,
                    "scheme": scheme,
                    "asset_id": golden,
                    "minted_id": minted,
                    "linked_by": linked_by,
                    "event_id": event_id,
                }
            want_aliases.update((a, (golden, declared)) for a, declared in cluster.aliases.items())
        changed = [row for key, row in sorted(want_idents.items()) if self._stored_idents.get(key) != row]
        upsert(conn, identifiers, changed, key=("value", "scheme"))
        gone = sorted(
            a for a in self._stored_aliases if a not in want_aliases and self.owner.get(a) in self.clusters
        )
        for chunk in chunks(conn, gone):
            conn.execute(delete(aliases).where(in_values(conn, aliases.c.alias_id, chunk)))
        alias_rows = [
            {"alias_id": a, "asset_id": g, "declared": declared}
            for a, (g, declared) in sorted(want_aliases.items())
            if self._stored_aliases.get(a) != (g, declared)
        ]
        upsert(conn, aliases, alias_rows, key=("alias_id",))
        self.claims.flush(conn)
        repoint(conn, claims.c.asset_id, self.retired, self.final)
        self._flush_merges(conn)

    def _placed_by(self, key: Key, golden: str) -> tuple[str, str]:
        """The identifier row's (linked_by, event id): from the claims where they decide (a
        contested identifier's row must not depend on which claim arrived first), else the
        first link that named it."""
        if key[0] != ANCHOR_SCHEME and key in self.claims.by_key:
            placed = self.claims.placed_by(key, golden)
            if placed is not None:
                return placed
        return self._meta[key]

    def _flush_merges(self, conn: Connection) -> None:
        """Record ids merged away in this batch, and earlier merges re-pointed at today's golden ids."""
        for chunk in chunks(conn, sorted(self._targets)):
            conn.execute(delete(merges).where(in_values(conn, merges.c.record_id, chunk)))
        rows = []
        for record_id in sorted(self.retired):
            event = self.retired_by[record_id]
            target = self.final(record_id)
            rows.append(
                {
                    "record_id": record_id,
                    "merged_into": target,
                    "event_id": str(event.event_id),
                    "occurred_at": event.occurred_at,
                }
            )
        repoint(conn, merges.c.merged_into, self.retired, self.final)
        upsert(conn, merges, rows, key=("record_id",))


def repoint(conn: Connection, column: Any, retired: Iterable[str], final: Callable[[str], str]) -> None:
    """`column = final(old)` wherever `column` holds an id merged away (one executemany)."""
    pairs = [{"old": old, "new": final(old)} for old in sorted(retired)]
    if pairs:
        table = column.table
        statement = update(table).where(column == bindparam("old")).values({column.name: bindparam("new")})
        conn.execute(statement, pairs)
