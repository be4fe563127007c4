"""Identity resolution in the registry: crosswalk, provisional records, merges, golden ids, conflicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from projections.assets.identity import SCHEME_PRIORITY, Cluster, scheme_rank
from projections.assets.queries import list_conflicts, resolve_asset_id
from projections.assets.tables import aliases, assets, history, merges
from tests.unit.projections.factories import eid
from tests.unit.projections.registry_factories import (
    ER,
    HOUR,
    T0,
    Feed,
    card,
    hrp,
    link,
    loaned,
    mint,
    reg,
    status,
    used,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _idents(row: dict) -> list[tuple[str, str]]:
    return [(i["scheme"], i["value"]) for i in row["identifiers"]]


class TestProvisionalRecords:
    def test_an_event_before_the_record_it_names_lands_on_it_after_the_link(self, engine: Engine) -> None:
        """An SPD status change keyed by an unlinked SPD code is kept, then merged into the HRP record that links it."""
        spd = mint("spd.code", "SB-77")
        feed = Feed(engine)
        feed(status("s1", spd, "under_repair", at=T0 + HOUR, system="spd"))
        assert feed.asset(spd)["provisional"] is True
        feed(hrp("r1", "ZC-1", ("spd.code", "SB-77"), at=T0))
        row = feed.asset(card("ZC-1"))
        assert (row["asset_id"], row["status"], row["provisional"]) == (card("ZC-1"), "under_repair", False)
        assert row["merged_from"] == [spd]
        assert ("spd.code", "SB-77") in _idents(row)
        with engine.connect() as conn:
            types = conn.execute(select(history.c.type).where(history.c.asset_id == card("ZC-1"))).scalars()
            assert sorted(types) == ["asset.registered", "asset.status_changed"]
        assert _count(engine, assets) == 1

    def test_the_old_id_resolves_to_the_golden_record(self, engine: Engine) -> None:
        """A lookup by the provisional record's id, and later events keyed by it, reach the golden record."""
        spd = mint("spd.code", "SB-77")
        feed = Feed(engine)
        feed(status("s1", spd, "idle", at=T0, system="spd"))
        feed(hrp("r1", "ZC-1", ("spd.code", "SB-77")))
        feed(status("s2", spd, "under_repair", at=T0 + 2 * HOUR, system="spd"))
        row = feed.asset(spd)
        assert (row["asset_id"], row["requested_id"], row["status"]) == (card("ZC-1"), spd, "under_repair")
        assert _count(engine, assets) == 1

    def test_the_link_arriving_first_gives_the_same_record(self, engine: Engine) -> None:
        """Registration first, then the SPD event: the same golden record and state, with nothing to merge."""
        spd = mint("spd.code", "SB-77")
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1", ("spd.code", "SB-77"), at=T0))
        feed(status("s1", spd, "under_repair", at=T0 + HOUR, system="spd"))
        row = feed.asset(card("ZC-1"))
        assert (row["status"], row["merged_from"]) == ("under_repair", [])
        assert _count(engine, aliases) == 0

    def test_two_provisional_records_merge_into_one(self, engine: Engine) -> None:
        """An OA loan and a HIS usage keyed by two unlinked numbers end on one record when a registration names both."""
        oa, his = mint("oa.no", "SB1600037"), mint("his.code", "VENT-3")
        feed = Feed(engine)
        feed(loaned("l1", oa, "JY-1", ER, at=T0 + HOUR))
        feed(used("u1", his, at=T0 + 2 * HOUR))
        assert _count(engine, assets) == 2
        feed(hrp("r1", "ZC-9", ("oa.no", "SB1600037"), ("his.code", "VENT-3"), at=T0))
        row = feed.asset(card("ZC-9"))
        assert row["merged_from"] == sorted([oa, his])
        assert (row["on_loan"], row["loan_id"], row["last_used_at"]) == (True, "JY-1", T0 + 2 * HOUR)
        assert _count(engine, assets) == 1
        with engine.connect() as conn:
            assert resolve_asset_id(conn, his) == card("ZC-9")

    def test_a_mapping_link_merges_a_provisional_record_into_a_registered_one(self, engine: Engine) -> None:
        """asset.identifier_linked (a mapping export) attaches an OA number whose loan arrived first."""
        oa = mint("oa.no", "SB-5")
        feed = Feed(engine)
        feed(hrp("r1", "ZC-5"), loaned("l1", oa, "JY-9", ER, at=T0 + HOUR))
        feed(link("k1", card("ZC-5"), "oa.no", "SB-5"))
        row = feed.asset(card("ZC-5"))
        assert (row["loan_id"], row["merged_from"]) == ("JY-9", [oa])
        assert ("oa.no", "SB-5", "mapping") in [
            (i["scheme"], i["value"], i["linked_by"]) for i in row["identifiers"]
        ]


class TestAutomaticMatches:
    @pytest.mark.parametrize("hrp_first", [True, False])
    def test_equal_udi_links_two_systems_records(self, engine: Engine, hrp_first: bool) -> None:
        """A FHIR device and an HRP card with the same UDI are one device, kept under the card's id either way."""
        udi = "(01)06942527215250(21)ASF1"
        fhir = reg("f1", mint("udi", udi), ("udi", udi), ("fhir.device", "dev-1"), system="fhir", udi=udi)
        ledger = hrp("r1", "ZC-3", udi=udi, name=None, location="ICU 3床")
        feed = Feed(engine)
        for event in (ledger, fhir) if hrp_first else (fhir, ledger):
            feed(event)
        row = feed.asset(card("ZC-3"))
        assert row["asset_id"] == card("ZC-3")
        assert {("hrp.card", "ZC-3"), ("udi", udi), ("fhir.device", "dev-1")} <= set(_idents(row))
        assert (row["name"], row["location"]) == ("呼吸机", "ICU 3床")
        assert _count(engine, assets) == 1
        assert feed.derived() == []

    def test_equal_manufacturer_and_serial_link_two_records(self, engine: Engine) -> None:
        """Manufacturer + serial in two registrations' details is a match, as the identifier `<manufacturer>|<serial>`."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-4", manufacturer="德尔格", serial_number="ASF-9"))
        feed(
            reg(
                "s1",
                mint("spd.code", "X-4"),
                ("spd.code", "X-4"),
                system="spd",
                manufacturer="德尔格",
                serial_number="ASF-9",
            )
        )
        row = feed.asset(mint("spd.code", "X-4"))
        assert row["asset_id"] == card("ZC-4")
        assert ("serial", "德尔格|ASF-9") in _idents(row)


class TestGoldenId:
    def test_scheme_priority_orders_candidates(self) -> None:
        """hrp.card outranks udi, serial, his.code, spd.code, oa.no, eui64, ns and fhir.device (a FHIR
        server's own id comes after any identifier that says whose it is); unknown schemes come last."""
        assert [scheme_rank(s) for s in SCHEME_PRIORITY] == list(range(9))
        assert scheme_rank("ns") < scheme_rank("fhir.device")
        assert scheme_rank("gtin") == 9

    def test_a_cluster_picks_the_best_candidate(self) -> None:
        """The id minted from the best scheme wins, ties to the smallest id; declared aliases first, others last."""
        cluster = Cluster(idents={("oa.no", "1"): "AST-b", ("udi", "U"): "AST-z", ("udi", "V"): "AST-c"})
        assert cluster.golden() == "AST-c"
        cluster.aliases["AST-a"] = False  # a provisional id nobody explained yet
        assert cluster.golden() == "AST-c"
        cluster.aliases["LOCAL-1"] = True  # a registration's own id
        assert cluster.golden() == "LOCAL-1"

    def test_the_record_minted_from_the_card_survives_a_chain_of_merges(self, engine: Engine) -> None:
        """HIS, then SPD, then HRP records of one device: the id minted from the HRP card survives."""
        feed = Feed(engine)
        feed(used("u1", mint("his.code", "H-1")))
        feed(reg("s1", mint("spd.code", "S-1"), ("spd.code", "S-1"), ("his.code", "H-1"), system="spd"))
        feed(hrp("r1", "ZC-7", ("spd.code", "S-1")))
        row = feed.asset(mint("his.code", "H-1"))
        assert row["asset_id"] == card("ZC-7")
        assert row["merged_from"] == sorted([mint("his.code", "H-1"), mint("spd.code", "S-1")])
        with engine.connect() as conn:
            rows = conn.execute(select(merges.c.record_id, merges.c.merged_into)).all()
        assert {into for _, into in rows} == {card("ZC-7")}


class TestConflicts:
    def _two_cards_one_udi(self, feed: Feed) -> None:
        feed(hrp("r1", "ZC-1", udi="U-1"))
        feed(hrp("r2", "ZC-2", udi="U-1"))

    def test_a_link_between_two_anchored_records_is_refused(self, engine: Engine) -> None:
        """Two HRP cards claiming one UDI stay two devices; the UDI stays with the first."""
        feed = Feed(engine)
        self._two_cards_one_udi(feed)
        assert ("udi", "U-1") in _idents(feed.asset(card("ZC-1")))
        assert ("udi", "U-1") not in _idents(feed.asset(card("ZC-2")))
        assert _count(engine, assets) == 2

    def test_the_conflict_is_listed_and_announced_once(self, engine: Engine) -> None:
        """The refused link is stored as an open conflict and one asset.identity_conflict is staged, even when claimed again."""
        feed = Feed(engine)
        self._two_cards_one_udi(feed)
        feed(link("k1", card("ZC-2"), "udi", "U-1"))
        with engine.connect() as conn:
            rows, total = list_conflicts(conn)
        assert total == 1
        assert (rows[0]["holder_asset_id"], rows[0]["claimant_asset_id"], rows[0]["status"]) == (
            card("ZC-1"),
            card("ZC-2"),
            "open",
        )
        [event] = feed.derived()
        assert event["type"] == "asset.identity_conflict"
        assert event["payload"] == {
            "identifier": {"scheme": "udi", "value": "U-1"},
            "asset_ids": [card("ZC-1"), card("ZC-2")],
        }
        assert event["subject"] == card("ZC-1")
        assert (event["source"]["system"], event["source"]["adapter_version"]) == (
            "hub",
            "hub/asset_registry/1",
        )
        assert event["causation_id"] == rows[0]["event_id"]

    def test_a_person_moves_the_identifier_and_resolves_the_conflict(self, engine: Engine) -> None:
        """POSTed as linked_by person, the UDI moves to the asset the person names; the conflict is resolved."""
        feed = Feed(engine)
        self._two_cards_one_udi(feed)
        feed(link("p1", card("ZC-2"), "udi", "U-1", by="person", actor="工程师王"))
        assert ("udi", "U-1") in _idents(feed.asset(card("ZC-2")))
        assert ("udi", "U-1") not in _idents(feed.asset(card("ZC-1")))
        with engine.connect() as conn:
            rows, _ = list_conflicts(conn, status="resolved")
        assert [(r["resolved_asset_id"], r["resolved_by_event_id"]) for r in rows] == [
            (card("ZC-2"), str(eid("p1")))
        ]
        assert len(feed.derived()) == 1

    def test_a_person_confirming_the_holder_resolves_without_moving(self, engine: Engine) -> None:
        """A person linking the identifier to the asset holding it closes the conflict in the holder's favour."""
        feed = Feed(engine)
        self._two_cards_one_udi(feed)
        feed(link("p1", card("ZC-1"), "udi", "U-1", by="person", actor="工程师王"))
        with engine.connect() as conn:
            rows, _ = list_conflicts(conn, status=None)
        assert [(r["status"], r["resolved_asset_id"]) for r in rows] == [("resolved", card("ZC-1"))]

    def test_people_do_not_move_hrp_cards(self, engine: Engine) -> None:
        """A person linking another record's HRP card is refused like any conflict: the ledger is corrected instead."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), hrp("r2", "ZC-2"))
        feed(link("p1", card("ZC-2"), "hrp.card", "ZC-1", by="person", actor="工程师王"))
        assert ("hrp.card", "ZC-1") in _idents(feed.asset(card("ZC-1")))
        with engine.connect() as conn:
            assert list_conflicts(conn)[1] == 1

    def test_a_conflict_follows_a_later_merge(self, engine: Engine) -> None:
        """When the claimant is later merged away, the conflict names the golden record it lives on."""
        local = "LOCAL-2"
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1", udi="U-1"))
        feed(reg("r2", local, ("hrp.card", "ZC-2"), udi="U-1"))
        feed(reg("r3", "AAA-2", ("hrp.card", "ZC-2")))
        with engine.connect() as conn:
            rows, _ = list_conflicts(conn)
        assert rows[0]["claimant_asset_id"] == "AAA-2"
        assert feed.asset(local)["asset_id"] == "AAA-2"


class TestHistory:
    def test_history_keeps_the_record_id_and_source_of_every_event(self, engine: Engine) -> None:
        """Each event is a history row on the golden record, with the record id it named and where it came from."""
        his = mint("his.code", "H-2")
        feed = Feed(engine)
        feed(used("u1", his, at=T0 + HOUR), hrp("r1", "ZC-2", ("his.code", "H-2"), at=T0))
        with engine.connect() as conn:
            rows = conn.execute(
                select(history).where(history.c.asset_id == card("ZC-2")).order_by(history.c.occurred_at)
            ).mappings()
            got = [(r["type"], r["record_id"], r["source_system"], r["raw_ref"]) for r in rows]
        assert got == [
            ("asset.registered", card("ZC-2"), "hrp", "raw-r1"),
            ("asset.used", his, "his", "raw-u1"),
        ]

    def test_summaries_never_carry_the_patient_token(self, engine: Engine) -> None:
        """An asset.used summary names department and order, not the patient token."""
        feed = Feed(engine)
        feed(used("u1", "A1"))
        with engine.connect() as conn:
            summary = conn.execute(select(history.c.summary)).scalar_one()
        assert summary == "used in 重症医学科 (order ORD-u1)"
        assert "tok" not in summary


class TestStatusOfMergedRecords:
    def test_the_newer_fact_wins_when_records_merge(self, engine: Engine) -> None:
        """The provisional record's newer status replaces the registered record's older one on merge."""
        spd = mint("spd.code", "S-3")
        feed = Feed(engine)
        feed(hrp("r1", "ZC-3"), status("s1", card("ZC-3"), "idle", at=T0 + HOUR))
        feed(status("s2", spd, "under_repair", at=T0 + 3 * HOUR, system="spd"))
        feed(status("s3", spd, "sealed", at=T0 + 2 * HOUR, system="spd"))
        feed(link("k1", card("ZC-3"), "spd.code", "S-3"))
        assert feed.asset(card("ZC-3"))["status"] == "under_repair"
