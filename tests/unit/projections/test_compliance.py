"""Compliance: due dates from the facts, notices at the right dates with a fixed clock, the due query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from projections.compliance.projection import Compliance
from projections.compliance.queries import DueFilter, list_due
from projections.compliance.rules import ComplianceConfig, ComplianceRule, add_months
from projections.compliance.tables import METADATA, items
from projections.runtime.db import write_transaction
from schemas._base import DeptRef
from schemas.assets import Category
from schemas.ids import event_id_for, workorder_id_for
from tests.unit.adapters._hrp import LEDGER
from tests.unit.adapters._hrp import run as hrp_run
from tests.unit.projections.factories import corrected, decommissioned, relocated
from tests.unit.projections.test_compliance_factories import (
    BED,
    ComplianceFeed,
    accepted,
    bed,
    calibrated,
    commissioned,
    contract,
    inspected,
    ventilator,
)
from tests.unit.projections.test_work_orders_factories import DB_PARAMS, projection_database, reset


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, Compliance())


@pytest.fixture
def feed(module_engine: Engine) -> ComplianceFeed:
    """A compliance feed on the module's database (SQLite, then PostgreSQL), tables empty."""
    reset(module_engine, METADATA)
    return ComplianceFeed(module_engine)


def site_midnight(day: date) -> datetime:
    """00:00 of `day` in Asia/Shanghai, as UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)


def kinds(events: list) -> list[tuple[str, str, date]]:
    return sorted((e.type, e.payload.kind, e.payload.due_on) for e in events)


class TestDueDates:
    def test_calibration_due_a_year_after_the_last_passing_one(self, feed: ComplianceFeed) -> None:
        """A 6854 ventilator calibrated 2023-06-06 is due again 2024-06-06, PM and safety from acquisition."""
        feed(ventilator("r", "A1"), calibrated("c", "A1", date(2023, 6, 6)))
        got = {k: (v["due_on"], v["basis"], v["interval_months"]) for k, v in feed.items("A1").items()}
        assert got == {
            "calibration": (date(2024, 6, 6), "calibrated", 12),
            "preventive_maintenance": (date(2020, 9, 15), "acquired", 6),
            "electrical_safety": (date(2021, 3, 15), "acquired", 12),
        }

    def test_commissioning_then_acceptance_then_acquisition(self, feed: ComplianceFeed) -> None:
        """Without any activity the clock starts at commissioning; else acceptance; else acquisition."""
        feed(
            ventilator("r1", "A1"),
            commissioned("m", "A1", date(2021, 5, 31)),
            accepted("a", "A1", date(2021, 5, 1)),
        )
        feed(
            ventilator("r2", "A2"),
            accepted("a2", "A2", date(2021, 5, 1)),
            accepted("a3", "A2", date(2021, 6, 1), result="failed"),
        )
        feed(ventilator("r3", "A3"))
        assert (
            (feed.items("A1")["preventive_maintenance"]["due_on"], feed.items("A1")["calibration"]["basis"]),
            (feed.items("A2")["calibration"]["due_on"], feed.items("A2")["calibration"]["basis"]),
            (feed.items("A3")["calibration"]["due_on"], feed.items("A3")["calibration"]["basis"]),
        ) == (
            (date(2021, 11, 30), "commissioned"),
            (date(2022, 5, 1), "accepted"),
            (date(2021, 3, 15), "acquired"),
        )

    def test_failed_calibration_does_not_restart_the_clock(self, feed: ComplianceFeed) -> None:
        """Passed 2023-01-10, failed 2023-12-01: still due 2024-01-10, the failure shown as last result."""
        feed(
            ventilator("r", "A1"),
            calibrated("c1", "A1", date(2023, 1, 10)),
            calibrated("c2", "A1", date(2023, 12, 1), result="failed"),
        )
        item = feed.items("A1")["calibration"]
        assert (item["due_on"], item["last_done_on"], item["last_result"]) == (
            date(2024, 1, 10),
            date(2023, 1, 10),
            "failed",
        )

    def test_inspection_stating_its_next_due_date_wins(self, feed: ComplianceFeed) -> None:
        """A PM inspection that says "next due 2024-02-01" is due then, not 6 months after."""
        feed(
            ventilator("r", "A1"),
            inspected("i", "A1", "preventive_maintenance", date(2023, 11, 1), next_due=date(2024, 2, 1)),
        )
        item = feed.items("A1")["preventive_maintenance"]
        assert (item["due_on"], item["basis"]) == (date(2024, 2, 1), "next_due")

    def test_dates_projected_from_a_start_of_service_are_marked_projected(self, feed: ComplianceFeed) -> None:
        """With no record of its kind a due date is projected; a calibration (even failed) confirms it."""
        feed(ventilator("r", "A1"), commissioned("m", "A1", date(2021, 5, 31)))
        before = {k: (v["basis"], v["projected"]) for k, v in feed.items("A1").items()}
        feed(
            calibrated("c", "A1", date(2023, 6, 6), result="failed"),
            contract("h", "A1", "HT-1", date(2025, 1, 1)),
        )
        after = {k: (v["basis"], v["projected"]) for k, v in feed.items("A1").items()}
        assert (before, after) == (
            {
                "calibration": ("commissioned", True),
                "preventive_maintenance": ("commissioned", True),
                "electrical_safety": ("commissioned", True),
            },
            {
                "calibration": ("commissioned", False),
                "preventive_maintenance": ("commissioned", True),
                "electrical_safety": ("commissioned", True),
                "contract": ("contract", False),
            },
        )

    def test_sites_may_trust_acceptance_and_commissioning_dates(self, module_engine: Engine) -> None:
        """With projected_bases={"acquired"} a commissioning date confirms the schedule it starts."""
        reset(module_engine, METADATA)
        feed = ComplianceFeed(
            module_engine, Compliance(ComplianceConfig(projected_bases=frozenset({"acquired"})))
        )
        feed(ventilator("r1", "A1"), commissioned("m", "A1", date(2021, 5, 31)), ventilator("r2", "A2"))
        assert (
            feed.items("A1")["preventive_maintenance"]["projected"],
            feed.items("A2")["preventive_maintenance"]["projected"],
        ) == (False, True)

    def test_rules_decide_which_kinds_apply(self, feed: ComplianceFeed) -> None:
        """A ward bed (6856) has yearly PM only; an explicit next-due safety inspection still counts."""
        feed(
            bed("r", "A1"),
            inspected("i", "A1", "electrical_safety", date(2023, 3, 1), next_due=date(2024, 3, 1)),
        )
        got = {k: v["due_on"] for k, v in feed.items("A1").items()}
        assert got == {"preventive_maintenance": date(2021, 3, 15), "electrical_safety": date(2024, 3, 1)}

    def test_certificate_expiry_is_the_latest_valid_until(self, feed: ComplianceFeed) -> None:
        """Two certificates: the later calibration's valid_until is the certificate's due date."""
        feed(
            ventilator("r", "A1"),
            calibrated("c2", "A1", date(2023, 6, 6), valid_until=date(2024, 6, 5)),
            calibrated("c1", "A1", date(2022, 6, 6), valid_until=date(2023, 6, 5)),
        )
        item = feed.items("A1")["certificate"]
        assert (item["due_on"], item["ref"]) == (date(2024, 6, 5), "JD-c2")

    def test_contract_and_warranty_expiry(self, feed: ComplianceFeed) -> None:
        """The service contract that ends last, and the warranty, each give an expiry; a re-registration updates."""
        feed(
            ventilator("r", "A1"),
            contract("h1", "A1", "HT-2023-01", date(2023, 12, 31)),
            contract("h2", "A1", "HT-2024-01", date(2024, 12, 31)),
            contract("w", "A1", "BX-01", date(2025, 3, 1), kind="warranty"),
        )
        feed(contract("h3", "A1", "HT-2024-01", date(2024, 10, 31), at=datetime(2024, 2, 1, tzinfo=UTC)))
        got = {
            k: (v["due_on"], v["ref"]) for k, v in feed.items("A1").items() if k in {"contract", "warranty"}
        }
        assert got == {
            "contract": (date(2024, 10, 31), "HT-2024-01"),
            "warranty": (date(2025, 3, 1), "BX-01"),
        }

    def test_a_late_registration_brings_the_rules(self, feed: ComplianceFeed) -> None:
        """A calibration arriving before the ledger row is kept; the registration then makes it count."""
        feed(calibrated("c", "A1", date(2023, 6, 6)))
        before = set(feed.items("A1"))
        feed(ventilator("r", "A1"))
        assert (before, feed.items("A1")["calibration"]["due_on"]) == (set(), date(2024, 6, 6))

    def test_category_correction_recomputes(self, feed: ComplianceFeed) -> None:
        """Correcting a ventilator into a bed drops its calibration obligation."""
        feed(ventilator("r", "A1"), calibrated("c", "A1", date(2023, 6, 6)))
        feed(corrected("x", "A1", ["category", "name"], category=BED, name="电动病床"))
        assert sorted(feed.items("A1")) == ["preventive_maintenance"]

    def test_decommissioned_assets_drop_out(self, feed: ComplianceFeed) -> None:
        """A decommissioned device's obligations are inactive and not listed as due."""
        feed(ventilator("r", "A1"), decommissioned("d", "A1"))
        with feed.engine.connect() as conn:
            _, total = list_due(conn, DueFilter(today=date(2030, 1, 1)))
        assert ({i["active"] for i in feed.items("A1").values()}, total) == ({False}, 0)

    def test_shortest_interval_of_matching_rules_wins(self, module_engine: Engine) -> None:
        """A name rule of 3 months beats the 6854 rule of 12 for calibration; a device without code matches by name."""
        reset(module_engine, METADATA)
        rules = (
            ComplianceRule("calibration", 12, category_prefix="6854"),
            ComplianceRule("calibration", 3, name_contains="呼吸机"),
        )
        feed = ComplianceFeed(module_engine, Compliance(ComplianceConfig(rules=rules)))
        feed(
            ventilator("r1", "A1"),
            ventilator("r2", "A2", category=Category(code=None, name=None), name="无创呼吸机"),
            calibrated("c1", "A1", date(2023, 6, 6)),
            calibrated("c2", "A2", date(2023, 6, 6)),
        )
        assert (feed.items("A1")["calibration"]["due_on"], feed.items("A2")["calibration"]["due_on"]) == (
            date(2023, 9, 6),
            date(2023, 9, 6),
        )


class TestMonths:
    @pytest.mark.parametrize(
        ("day", "months", "expected"),
        [
            (date(2024, 1, 31), 1, date(2024, 2, 29)),
            (date(2023, 1, 31), 1, date(2023, 2, 28)),
            (date(2023, 8, 31), 6, date(2024, 2, 29)),
            (date(2023, 12, 15), 12, date(2024, 12, 15)),
            (date(2023, 11, 30), 3, date(2024, 2, 29)),
        ],
    )
    def test_add_months_clamps_to_the_month_end(self, day: date, months: int, expected: date) -> None:
        """Adding months keeps the day where it exists and falls back to the month's last day."""
        assert add_months(day, months) == expected

    def test_rule_needs_exactly_one_matcher(self) -> None:
        """A rule with neither (or both) of category_prefix and name_contains is refused."""
        with pytest.raises(ValueError, match="one of them"):
            ComplianceRule("calibration", 12)


class TestTick:
    def test_due_notice_opens_thirty_site_days_ahead(self, feed: ComplianceFeed) -> None:
        """Due 2024-06-06: nothing at 23:59:59 on 05-06 in Shanghai; due + scheduled at 00:00 on 05-07."""
        feed(
            ventilator("r", "A1"),
            calibrated("c", "A1", date(2023, 6, 6)),
            commissioned("m", "A1", date(2023, 12, 20)),
        )
        opens = site_midnight(date(2024, 5, 7))
        early = [e for e in feed.tick(opens - timedelta(seconds=1)) if e.payload.kind == "calibration"]
        on_time = [e for e in feed.tick(opens) if e.payload.kind == "calibration"]
        assert (early, kinds(on_time)) == (
            [],
            [
                ("compliance.due", "calibration", date(2024, 6, 6)),
                ("workorder.scheduled", "calibration", date(2024, 6, 6)),
            ],
        )

    def test_overdue_the_day_after_the_due_date_once(self, feed: ComplianceFeed) -> None:
        """Not overdue on the due date itself; overdue the next site day, concluded once."""
        feed(
            ventilator("r", "A1"),
            calibrated("c", "A1", date(2023, 6, 6)),
            commissioned("m", "A1", date(2023, 12, 20)),
        )
        feed.tick(site_midnight(date(2024, 5, 20)))
        on_due_date = feed.tick(site_midnight(date(2024, 6, 6)) + timedelta(hours=23))
        after = feed.tick(site_midnight(date(2024, 6, 7)))
        again = feed.tick(site_midnight(date(2024, 6, 8)))
        assert (
            [e for e in on_due_date if e.payload.kind == "calibration"],
            kinds([e for e in after if e.payload.kind == "calibration"]),
            again,
        ) == (
            [],
            [("compliance.overdue", "calibration", date(2024, 6, 6))],
            [],
        )

    def test_first_seen_overdue_gets_overdue_and_a_task_only(self, feed: ComplianceFeed) -> None:
        """An obligation already past due at the first tick concludes overdue and scheduled, no due notice."""
        feed(
            bed("r", "A1"), inspected("i", "A1", "preventive_maintenance", date(2021, 1, 4), result="failed")
        )
        assert kinds(feed.tick(site_midnight(date(2024, 1, 1)))) == [
            ("compliance.overdue", "preventive_maintenance", date(2021, 3, 15)),
            ("workorder.scheduled", "preventive_maintenance", date(2021, 3, 15)),
        ]

    def test_projected_dates_conclude_no_notice_until_a_record_confirms_them(
        self, feed: ComplianceFeed
    ) -> None:
        """A legacy ledger row (purchase date only) stays quiet, overdue or not; a failed PM record
        confirms the same due date and its overdue notice and task follow on the next tick."""
        feed(bed("r", "A1"), ventilator("r2", "A2"))
        quiet = feed.tick(site_midnight(date(2024, 1, 1)))
        feed(inspected("i", "A1", "preventive_maintenance", date(2021, 1, 4), result="failed"))
        assert (quiet, kinds(feed.tick(site_midnight(date(2024, 1, 2))))) == (
            [],
            [
                ("compliance.overdue", "preventive_maintenance", date(2021, 3, 15)),
                ("workorder.scheduled", "preventive_maintenance", date(2021, 3, 15)),
            ],
        )

    def test_ids_and_subjects_are_deterministic(self, feed: ComplianceFeed) -> None:
        """Ids are uuid5 over (notice, asset, kind, due date); the task's subject is a minted work-order id."""
        feed(
            bed("r", "A1"), inspected("i", "A1", "preventive_maintenance", date(2021, 1, 4), result="failed")
        )
        overdue, scheduled = sorted(feed.tick(site_midnight(date(2024, 1, 1))), key=lambda e: e.type)
        assert (overdue.event_id, scheduled.event_id, scheduled.subject, overdue.source.adapter_version) == (
            event_id_for("hub", "compliance.overdue:A1:preventive_maintenance", "2021-03-15"),
            event_id_for("hub", "workorder.scheduled:A1:preventive_maintenance", "2021-03-15"),
            workorder_id_for("hub", "A1|preventive_maintenance|2021-03-15"),
            "hub/compliance/1",
        )

    def test_new_activity_starts_a_new_cycle(self, feed: ComplianceFeed) -> None:
        """After the PM is done the next due date gets its own notices when its window opens."""
        feed(bed("r", "A1"))
        feed.tick(site_midnight(date(2024, 1, 1)))
        feed(inspected("i", "A1", "preventive_maintenance", date(2024, 1, 5)))
        quiet = feed.tick(site_midnight(date(2024, 12, 5)) - timedelta(seconds=1))
        window = feed.tick(site_midnight(date(2024, 12, 6)))
        assert (quiet, kinds(window)) == (
            [],
            [
                ("compliance.due", "preventive_maintenance", date(2025, 1, 5)),
                ("workorder.scheduled", "preventive_maintenance", date(2025, 1, 5)),
            ],
        )

    def test_reapplying_facts_does_not_repeat_notices(self, feed: ComplianceFeed) -> None:
        """A relocation after the notices recomputes the item but keeps what was concluded."""
        feed(
            bed("r", "A1"), inspected("i", "A1", "preventive_maintenance", date(2021, 1, 4), result="failed")
        )
        assert feed.tick(site_midnight(date(2024, 1, 1)))
        feed(relocated("m", "A1", code="ER", name="急诊科", at=datetime(2024, 4, 2, tzinfo=UTC)))
        assert (
            feed.tick(site_midnight(date(2024, 1, 3))),
            feed.items("A1")["preventive_maintenance"]["department_code"],
        ) == ([], "ER")

    def test_lead_time_is_configurable(self, module_engine: Engine) -> None:
        """With due_within_days=7 the due notice comes a week ahead, not 30 days."""
        reset(module_engine, METADATA)
        feed = ComplianceFeed(
            module_engine, Compliance(ComplianceConfig(due_within_days=7, schedule_kinds=frozenset()))
        )
        feed(
            bed("r", "A1"),
            inspected("i", "A1", "preventive_maintenance", date(2024, 1, 10)),
        )
        assert (
            feed.tick(site_midnight(date(2025, 1, 2))),
            kinds(feed.tick(site_midnight(date(2025, 1, 3)))),
        ) == (
            [],
            [("compliance.due", "preventive_maintenance", date(2025, 1, 10))],
        )


class TestDueQuery:
    @pytest.fixture
    def loaded(self, feed: ComplianceFeed) -> ComplianceFeed:
        feed(
            ventilator("r1", "A1"),
            calibrated("c1", "A1", date(2023, 6, 6)),
            inspected("p1", "A1", "preventive_maintenance", date(2024, 1, 1), next_due=date(2024, 7, 1)),
            inspected("e1", "A1", "electrical_safety", date(2023, 9, 1)),
            ventilator("r2", "A2", department=DeptRef(code="ER", name="急诊科")),
            calibrated("c2", "A2", date(2023, 5, 20)),
            inspected("p2", "A2", "preventive_maintenance", date(2024, 1, 15)),
            inspected("e2", "A2", "electrical_safety", date(2023, 12, 1)),
        )
        return feed

    def query(self, feed: ComplianceFeed, **kw: object) -> list[tuple[str, str, date]]:
        with feed.engine.connect() as conn:
            rows, _ = list_due(conn, DueFilter(today=date(2024, 6, 1), **kw))  # type: ignore[arg-type]
        return [(r["asset_id"], r["kind"], r["due_on"]) for r in rows]

    def test_within_window_includes_overdue_soonest_first(self, loaded: ComplianceFeed) -> None:
        """Within 30 days of 2024-06-01: A2's calibration (overdue 05-20), A1's (06-06), A1's PM (07-01)."""
        assert self.query(loaded, within_days=30) == [
            ("A2", "calibration", date(2024, 5, 20)),
            ("A1", "calibration", date(2024, 6, 6)),
            ("A1", "preventive_maintenance", date(2024, 7, 1)),
        ]

    def test_filters_by_projected(self, loaded: ComplianceFeed) -> None:
        """projected=True lists the dates the hub only projected, for the department to confirm."""
        loaded(ventilator("r3", "A3"))
        assert (
            self.query(loaded, within_days=30, projected=True),
            self.query(loaded, within_days=30, projected=False),
        ) == (
            [
                ("A3", "preventive_maintenance", date(2020, 9, 15)),
                ("A3", "calibration", date(2021, 3, 15)),
                ("A3", "electrical_safety", date(2021, 3, 15)),
            ],
            [
                ("A2", "calibration", date(2024, 5, 20)),
                ("A1", "calibration", date(2024, 6, 6)),
                ("A1", "preventive_maintenance", date(2024, 7, 1)),
            ],
        )

    def test_filters_by_department_kind_and_overdue(self, loaded: ComplianceFeed) -> None:
        """department (code or name), kind and overdue each narrow the list."""
        assert (
            self.query(loaded, within_days=30, department="急诊科"),
            self.query(loaded, within_days=365, kind="electrical_safety"),
            self.query(loaded, within_days=30, overdue=True),
            self.query(loaded, within_days=30, overdue=False),
        ) == (
            [("A2", "calibration", date(2024, 5, 20))],
            [("A1", "electrical_safety", date(2024, 9, 1)), ("A2", "electrical_safety", date(2024, 12, 1))],
            [("A2", "calibration", date(2024, 5, 20))],
            [("A1", "calibration", date(2024, 6, 6)), ("A1", "preventive_maintenance", date(2024, 7, 1))],
        )


class TestLegacyImport:
    def test_a_first_ledger_import_states_no_per_asset_notices(self, module_engine: Engine) -> None:
        """The sample HRP ledger (purchase dates only) lists its overdue dates as projected and concludes
        no notice; judged as before (nothing projected) the same import concludes several per asset."""
        events = [e.event for e in hrp_run(LEDGER.read_bytes()).events]
        now = site_midnight(date(2026, 12, 6))
        runs = []
        for config in (ComplianceConfig(), ComplianceConfig(projected_bases=frozenset())):
            reset(module_engine, METADATA)
            feed = ComplianceFeed(module_engine, Compliance(config))
            feed(*events)
            notices = len(feed.tick(now))
            with module_engine.connect() as conn:
                rows, total = list_due(conn, DueFilter(today=now.date(), overdue=True), limit=500)
            runs.append((notices, total, {r["projected"] for r in rows}))
        (held, listed, flags), (flood, listed_before, flags_before) = runs
        assert (held, flags, flood > len(events), flags_before, listed == listed_before > 0) == (
            0,
            {True},
            True,
            {False},
            True,
        )

    def test_projected_schedules_are_stated_once_per_batch(self, feed: ComplianceFeed) -> None:
        """One log line per applied batch counts the projected schedules, not one per device."""
        with capture_logs() as logs:
            feed(ventilator("r1", "A1"), ventilator("r2", "A2"), calibrated("c", "A1", date(2023, 6, 6)))
        stated = [e for e in logs if e["event"] == "compliance_schedules_projected"]
        assert [(e["items"], e["assets"]) for e in stated] == [(5, 2)]


class TestUpgrade:
    def test_items_written_before_projected_get_it_as_apply_would_set_it(self, feed: ComplianceFeed) -> None:
        """ensure_tables' upgrade adds the column to an older items table and marks the projected dates."""
        feed(ventilator("r1", "A1"), calibrated("c1", "A1", date(2023, 6, 6)))
        with write_transaction(feed.engine) as conn:
            conn.execute(text(f"ALTER TABLE {items.name} DROP COLUMN projected"))
            feed.projection.upgrade_schema(conn)
            feed.projection.upgrade_schema(conn)  # a second start finds it done
        assert {k: v["projected"] for k, v in feed.items("A1").items()} == {
            "calibration": False,
            "preventive_maintenance": True,
            "electrical_safety": True,
        }


class TestDemoSummary:
    def test_demo_tables_report_as_of_the_newest_activity(self, feed: ComplianceFeed) -> None:
        """demo_summary counts what is due around the newest calibration and lists lapsed ones first."""
        from projections.compliance.projection import demo_summary

        feed(
            ventilator("r1", "A1"),
            calibrated("c1", "A1", date(2023, 6, 6)),
            ventilator("r2", "A2"),
            calibrated("c2", "A2", date(2024, 6, 13)),
        )
        with feed.engine.connect() as conn:
            (title, _, counts), (_, _, overdue) = demo_summary(conn)
        assert (title.endswith("(as of 2024-06-13, the newest activity)"), counts, overdue[0][2:]) == (
            True,
            [
                ["calibration", "1", "1", "0"],
                ["electrical_safety", "2", "2", "2"],
                ["preventive_maintenance", "2", "2", "2"],
            ],
            ["calibration", "2024-06-06", "calibrated"],
        )
