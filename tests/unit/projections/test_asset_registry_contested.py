"""Contested identifiers: two anchored records claiming one UDI are settled by the claims, not by arrival."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from projections.assets.queries import list_conflicts
from projections.assets.registry import METADATA
from projections.assets.tables import identifiers
from projections.runtime.db import write_transaction
from projections.runtime.derived import OUTBOX_METADATA
from projections.runtime.tracking import TRACKING_METADATA
from tests.unit.projections.factories import eid
from tests.unit.projections.registry_factories import HOUR, T0, Feed, card, hrp, link, mint

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase


def _holder(engine: Engine, value: str) -> tuple[str, str, str]:
    """(holder, linked_by, event id) of a UDI's crosswalk row."""
    c = identifiers.c
    with engine.connect() as conn:
        row = conn.execute(
            select(c.asset_id, c.linked_by, c.event_id).where(c.scheme == "udi", c.value == value)
        ).one()
    return row[0], row[1], row[2]


def _conflicts(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows, _ = list_conflicts(conn, status=None)
    return sorted((r["holder_asset_id"], r["claimant_asset_id"], r["event_id"], r["status"]) for r in rows)


def _reset(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        for metadata in (METADATA, TRACKING_METADATA, OUTBOX_METADATA):
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())


Outcome = tuple[tuple[str, str, str], list[tuple[str, str, str, str]], list[dict[str, Any]]]


def _both_orders(engine: Engine, *events: EventBase, after: tuple[EventBase, ...] = ()) -> list[Outcome]:
    """Apply `after` then `events` one per batch, then again with `events` reversed: what each
    order left. `events` name different subjects (partitions), so either order can happen."""
    seen: list[Outcome] = []
    for order in (events, tuple(reversed(events))):
        _reset(engine)
        feed = Feed(engine)
        feed(*after)
        for event in order:
            feed(event)
        seen.append((_holder(engine, "U-1"), _conflicts(engine), feed.derived()))
    return seen


class TestContestedIdentifier:
    def test_the_earlier_claim_keeps_the_udi_whichever_arrives_first(self, engine: Engine) -> None:
        """Cards ZC-1 (at T0+1h) and ZC-2 (at T0) both name U-1: ZC-2 keeps it, in either arrival order."""
        late, early = hrp("r1", "ZC-1", udi="U-1", at=T0 + HOUR), hrp("r2", "ZC-2", udi="U-1", at=T0)
        first, second = _both_orders(engine, late, early)
        assert first == second
        assert first[0] == (card("ZC-2"), "registered", str(eid("r2")))
        assert first[1] == [(card("ZC-2"), card("ZC-1"), str(eid("r1")), "open")]
        [event] = first[2]
        assert event["payload"]["asset_ids"] == [card("ZC-2"), card("ZC-1")]
        assert event["causation_id"] == str(eid("r1"))

    def test_three_claimants_make_one_conflict_per_pair(self, engine: Engine) -> None:
        """Three cards naming one UDI: three conflicts, each raised by the later claim of its pair."""
        events = [hrp(f"r{n}", f"ZC-{n}", udi="U-1", at=T0 + n * HOUR) for n in (1, 2, 3)]
        first, second = _both_orders(engine, *events)
        assert first == second
        assert first[1] == sorted(
            [
                (card("ZC-1"), card("ZC-2"), str(eid("r2")), "open"),
                (card("ZC-1"), card("ZC-3"), str(eid("r3")), "open"),
                (card("ZC-2"), card("ZC-3"), str(eid("r3")), "open"),
            ]
        )
        assert len(first[2]) == 3

    def test_a_record_claiming_again_adds_no_conflict(self, engine: Engine) -> None:
        """A record's later links of the identifier it already claims raise nothing new."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1", udi="U-1", at=T0), hrp("r2", "ZC-2", udi="U-1", at=T0 + HOUR))
        feed(link("k1", card("ZC-2"), "udi", "U-1", at=T0 + 2 * HOUR))
        feed(link("k2", card("ZC-1"), "udi", "U-1", at=T0 + 3 * HOUR))
        assert len(_conflicts(engine)) == 1
        assert len(feed.derived()) == 1

    def test_a_person_decides_whatever_the_mapping_says_and_whenever_it_arrives(self, engine: Engine) -> None:
        """A person's link to ZC-1 holds against ZC-2's earlier mapping claim, in either order, and resolves."""
        person = link(
            "p1", mint("oa.no", "LOCAL-1"), "udi", "U-1", by="person", actor="工程师王", at=T0 + 2 * HOUR
        )
        registrations = (hrp("r1", "ZC-1", at=T0), hrp("r2", "ZC-2", at=T0))
        local = hrp("r3", "ZC-1", ("oa.no", "LOCAL-1"), at=T0)  # another name of ZC-1, another partition
        events = (
            link("k1", card("ZC-2"), "udi", "U-1", at=T0 + HOUR),
            link("k2", card("ZC-1"), "udi", "U-1", at=T0 + HOUR + HOUR / 2),
            person,
        )
        first, second = _both_orders(engine, *events, after=(*registrations, local))
        assert first == second
        assert first[0] == (card("ZC-1"), "person", str(eid("p1")))
        assert first[1] == [(card("ZC-2"), card("ZC-1"), str(eid("k2")), "resolved")]

    def test_a_claim_after_the_persons_link_stays_open(self, engine: Engine) -> None:
        """A mapping claim later than the person's decision is a new, open conflict; the UDI stays put."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1", udi="U-1", at=T0), hrp("r2", "ZC-2", at=T0))
        feed(link("p1", card("ZC-1"), "udi", "U-1", by="person", actor="工程师王", at=T0 + HOUR))
        feed(link("k1", card("ZC-2"), "udi", "U-1", at=T0 + 2 * HOUR))
        assert _holder(engine, "U-1")[0] == card("ZC-1")
        assert _conflicts(engine) == [(card("ZC-1"), card("ZC-2"), str(eid("k1")), "open")]
        feed(link("p2", card("ZC-1"), "udi", "U-1", by="person", actor="工程师王", at=T0 + 3 * HOUR))
        assert _conflicts(engine) == [(card("ZC-1"), card("ZC-2"), str(eid("k1")), "resolved")]
