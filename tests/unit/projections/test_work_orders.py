"""The work-order fold: lifecycle state, order tolerance, cost, downtime, approval, asset resolution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from projections.work_orders.config import WorkOrderConfig
from projections.work_orders.projection import WorkOrders
from projections.work_orders.queries import WorkOrderFilter, get_work_order, list_work_orders
from projections.work_orders.tables import METADATA
from schemas._base import DeptRef
from tests.unit.projections.factories import linked, registered
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    T0,
    Feed,
    approved,
    assigned,
    cancelled,
    closed,
    completed,
    on_hold,
    projection_database,
    rejected,
    request_corrected,
    requested,
    reset,
    started,
)

H = timedelta(hours=1)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, WorkOrders())


@pytest.fixture
def wo_engine(module_engine: Engine) -> Engine:
    """The module's read-model database (SQLite, then PostgreSQL), work-order tables empty."""
    reset(module_engine, METADATA)
    return module_engine


class TestLifecycle:
    def test_state_follows_the_lifecycle_to_closed(self, wo_engine: Engine) -> None:
        """requested -> assigned -> started -> completed -> closed ends in `closed` with every time set."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            assigned("a", "WO-1", at=T0 + H),
            started("s", "WO-1", at=T0 + 2 * H),
            completed("c", "WO-1", at=T0 + 3 * H),
            closed("x", "WO-1", at=T0 + 4 * H),
        )
        row = feed.order("WO-1")
        assert (
            row["status"],
            row["assigned_at"],
            row["started_at"],
            row["completed_at"],
            row["closed_at"],
        ) == (
            "closed",
            T0 + H,
            T0 + 2 * H,
            T0 + 3 * H,
            T0 + 4 * H,
        )

    def test_late_assignment_fills_fields_without_moving_state_back(self, wo_engine: Engine) -> None:
        """An `assigned` arriving after `completed` names the engineer; the state stays completed."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + 3 * H))
        feed(assigned("a", "WO-1", at=T0 + H, engineer="钱卫东"))
        row = feed.order("WO-1")
        assert (row["status"], row["engineer"], row["assigned_at"], row["responded_at"]) == (
            "completed",
            "钱卫东",
            T0 + H,
            T0 + H,
        )

    def test_request_arriving_last_still_fills_the_request_fields(self, wo_engine: Engine) -> None:
        """Events before their `requested` are kept; the request's fields land when it arrives."""
        feed = Feed(wo_engine)
        feed(started("s", "WO-1", at=T0 + H, engineer="周建国"))
        assert (feed.order("WO-1")["status"], feed.order("WO-1")["requested_at"]) == ("started", None)
        feed(requested("r", "WO-1", priority="high"))
        row = feed.order("WO-1")
        assert (row["status"], row["priority"], row["requested_at"], row["engineer"]) == (
            "started",
            "high",
            T0,
            "周建国",
        )

    def test_resuming_after_hold_returns_to_started(self, wo_engine: Engine) -> None:
        """started and on_hold share a rank: the later one decides, so a resume leaves the hold."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), started("s1", "WO-1", at=T0 + H), on_hold("h", "WO-1", at=T0 + 2 * H))
        assert (feed.order("WO-1")["status"], feed.order("WO-1")["on_hold"]) == ("on_hold", True)
        feed(started("s2", "WO-1", at=T0 + 5 * H))
        row = feed.order("WO-1")
        assert (row["status"], row["on_hold"], row["hold_minutes"]) == ("started", False, 180)

    def test_equal_rank_is_decided_by_the_later_business_time(self, wo_engine: Engine) -> None:
        """An approval that happened after a rejection wins over it, whatever the arrival order."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), approved("ap", "WO-1", at=T0 + 2 * H), rejected("rj", "WO-1", at=T0 + H))
        assert (feed.order("WO-1")["status"], feed.order("WO-1")["approval_state"]) == (
            "approved",
            "approved",
        )

    def test_cancellation_is_final(self, wo_engine: Engine) -> None:
        """A late `started` after `cancelled` does not reopen the work order."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), cancelled("x", "WO-1", at=T0 + H), started("s", "WO-1", at=T0 + 2 * H))
        row = feed.order("WO-1")
        assert (row["status"], row["cancelled_at"], row["down_from"]) == ("cancelled", T0 + H, None)

    def test_first_completion_stops_the_clock_latest_supplies_figures(self, wo_engine: Engine) -> None:
        """A re-sent completion corrects cost; the first completion time stays the resolution time."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c1", "WO-1", at=T0 + 2 * H, cost="800.00"))
        feed(completed("c2", "WO-1", at=T0 + 3 * H, cost="850.00"))
        row = feed.order("WO-1")
        assert (row["completed_at"], row["resolved_at"], row["cost"]) == (
            T0 + 2 * H,
            T0 + 2 * H,
            Decimal("850.00"),
        )

    def test_timeline_lists_every_event_oldest_first(self, wo_engine: Engine) -> None:
        """GET /workorders/{id}'s timeline holds each event once, in business-time order, with its actor."""
        feed = Feed(wo_engine)
        feed(assigned("a", "WO-1", at=T0 + H), requested("r", "WO-1"))
        feed(assigned("a", "WO-1", at=T0 + H))  # the same event again (a translator's re-publish)
        with wo_engine.connect() as conn:
            detail = get_work_order(conn, "WO-1", now=NOW)
        assert detail is not None
        assert [(e["event_type"], e["actor"]) for e in detail["timeline"]] == [
            ("workorder.requested", "黄桂"),
            ("workorder.assigned", "周建国"),
        ]


class TestCost:
    def test_completion_cost_already_includes_parts(self, wo_engine: Engine) -> None:
        """By default the completion's cost is the total: parts are shown, not added again."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            completed("c", "WO-1", at=T0 + H, cost="19100.00", parts=[("主控板", "18500.00")]),
        )
        row = feed.order("WO-1")
        assert (row["cost"], row["parts_cost"], row["cost_minor"]) == (
            Decimal("19100.00"),
            Decimal("18500.00"),
            1910000,
        )

    def test_labour_only_costing_adds_the_parts(self, wo_engine: Engine) -> None:
        """With cost_includes_parts=False the parts are added to the reported cost."""
        feed = Feed(wo_engine, WorkOrders(WorkOrderConfig(cost_includes_parts=False)))
        feed(
            requested("r", "WO-1"),
            completed("c", "WO-1", at=T0 + H, cost="600.00", parts=[("主控板", "18500.00")]),
        )
        assert feed.order("WO-1")["cost"] == Decimal("19100.00")

    def test_without_a_cost_the_priced_parts_are_the_cost(self, wo_engine: Engine) -> None:
        """A completion listing priced parts but no total costs the sum of its parts."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            completed("c", "WO-1", at=T0 + H, parts=[("电池", "420.00"), ("滤网", "30.50")]),
        )
        assert feed.order("WO-1")["cost"] == Decimal("450.50")

    def test_cost_in_another_currency_is_not_summed_in_fen(self, wo_engine: Engine) -> None:
        """A cost in USD keeps its currency and stays out of the CNY sums (no conversion)."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + H, cost="100.00", currency="USD"))
        row = feed.order("WO-1")
        assert (row["cost"], row["currency"], row["cost_minor"], row["approval_amount"]) == (
            Decimal("100.00"),
            "USD",
            None,
            Decimal("100.00"),
        )


class TestDowntime:
    def test_reported_downtime_wins(self, wo_engine: Engine) -> None:
        """The completion's downtime_minutes is the downtime, ending at the completion."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + 10 * H, downtime=90))
        row = feed.order("WO-1")
        assert (row["downtime_minutes"], row["down_from"], row["down_to"]) == (
            90,
            T0 + 10 * H - timedelta(minutes=90),
            T0 + 10 * H,
        )

    def test_downtime_defaults_to_request_until_completion(self, wo_engine: Engine) -> None:
        """Without a reported figure the device was down from the request to the completion."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + 10 * H + timedelta(seconds=59)))
        assert feed.order("WO-1")["downtime_minutes"] == 600

    def test_open_work_order_is_down_until_further_notice(self, wo_engine: Engine) -> None:
        """An open work order's down interval has no end yet and no final figure."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), started("s", "WO-1", at=T0 + H))
        row = feed.order("WO-1")
        assert (row["down_from"], row["down_to"], row["downtime_minutes"]) == (T0, None, None)


class TestApproval:
    def test_small_repair_needs_no_approval(self, wo_engine: Engine) -> None:
        """A repair below the threshold is not_required and never flagged."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + H, cost="9999.99"))
        row = feed.order("WO-1")
        assert (row["approval_required"], row["approval_state"], row["completed_unapproved"]) == (
            False,
            "not_required",
            False,
        )

    def test_completion_at_the_threshold_without_approval_is_flagged(self, wo_engine: Engine) -> None:
        """Exactly 10,000 CNY needs approval: with none, the state is pending and the completion flagged."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + H, cost="10000.00"))
        row = feed.order("WO-1")
        assert (row["approval_required"], row["approval_state"], row["completed_unapproved"]) == (
            True,
            "pending",
            True,
        )

    def test_approved_amount_decides_before_completion(self, wo_engine: Engine) -> None:
        """An approval naming 52,000 CNY makes the repair approval-required and approved at its level."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            approved("a1", "WO-1", at=T0 + H, amount="52000.00", level=1),
            approved("a2", "WO-1", at=T0 + 2 * H, amount="52000.00", level=2),
        )
        row = feed.order("WO-1")
        assert (
            row["approval_required"],
            row["approval_state"],
            row["approval_level"],
            row["approval_amount"],
        ) == (
            True,
            "approved",
            2,
            Decimal("52000.00"),
        )

    def test_rejection_after_approval_rejects(self, wo_engine: Engine) -> None:
        """The latest decision counts: level 1 approves, level 2 rejects -> rejected."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            approved("a1", "WO-1", at=T0 + H, amount="18900.00"),
            rejected("rj", "WO-1", at=T0 + 2 * H),
        )
        row = feed.order("WO-1")
        assert (row["status"], row["approval_state"], row["rejected_at"]) == (
            "rejected",
            "rejected",
            T0 + 2 * H,
        )

    def test_approved_repair_completes_unflagged(self, wo_engine: Engine) -> None:
        """An approved over-threshold repair that completes is not flagged."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1"),
            approved("a", "WO-1", at=T0 + H, amount="19100.00"),
            completed("c", "WO-1", at=T0 + 2 * H, cost="19100.00"),
        )
        assert (feed.order("WO-1")["approval_state"], feed.order("WO-1")["completed_unapproved"]) == (
            "approved",
            False,
        )

    def test_threshold_is_configurable(self, wo_engine: Engine) -> None:
        """With a 5,000 threshold a 6,000 repair needs approval."""
        feed = Feed(wo_engine, WorkOrders(WorkOrderConfig(approval_threshold=Decimal(5000))))
        feed(requested("r", "WO-1"), completed("c", "WO-1", at=T0 + H, cost="6000"))
        assert feed.order("WO-1")["approval_state"] == "pending"


class TestAssetResolution:
    def test_work_order_on_an_oa_number_lands_on_the_linked_asset(self, wo_engine: Engine) -> None:
        """A request naming only oa.no is found by the card asset's id and grouped by its fields, once linked."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", asset=("oa.no", "SB1600037")))
        feed(
            registered("reg", "AST-CARD", card="ZC-2016-00037"), linked("l", "AST-CARD", "oa.no", "SB1600037")
        )
        with wo_engine.connect() as conn:
            rows, total = list_work_orders(conn, WorkOrderFilter(asset="ZC-2016-00037"), now=NOW)
            by_id, _ = list_work_orders(conn, WorkOrderFilter(asset="AST-CARD"), now=NOW)
        assert (
            total,
            rows[0]["asset_id"],
            rows[0]["asset_category_code"],
            [r["workorder_id"] for r in by_id],
        ) == (
            1,
            "AST-CARD",
            "6854",
            ["WO-1"],
        )

    def test_link_to_another_asset_replaces_a_self_registration(self, wo_engine: Engine) -> None:
        """A device registered under its own minted id moves to the asset a later link names."""
        from schemas._base import Identifier
        from schemas.ids import asset_id_for

        minted = asset_id_for(Identifier(scheme="oa.no", value="N9"))
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", asset=("oa.no", "N9")))
        with wo_engine.connect() as conn:
            before = list_work_orders(conn, WorkOrderFilter(), now=NOW)[0][0]["asset_id"]
        feed(linked("l", "AST-REAL", "oa.no", "N9"))
        with wo_engine.connect() as conn:
            after = list_work_orders(conn, WorkOrderFilter(), now=NOW)[0][0]["asset_id"]
        assert (before, after) == (minted, "AST-REAL")


class TestListFilters:
    def test_filters_combine(self, wo_engine: Engine) -> None:
        """status=open, priority, department (code or name) and the request window each narrow the page."""
        from tests.unit.projections.test_work_orders_factories import ER

        feed = Feed(wo_engine)
        feed(
            requested("r1", "WO-1", priority="urgent"),
            requested("r2", "WO-2", at=T0 + 24 * H, department=ER),
            requested("r3", "WO-3", at=T0 + 48 * H),
            completed("c3", "WO-3", at=T0 + 50 * H),
        )

        def ids(**kw: object) -> list[str]:
            with wo_engine.connect() as conn:
                return [r["workorder_id"] for r in list_work_orders(conn, WorkOrderFilter(**kw), now=NOW)[0]]  # type: ignore[arg-type]

        assert (
            ids(status="open"),
            ids(priority="urgent"),
            ids(department="急诊科"),
            ids(requested_from=T0 + H, requested_to=T0 + 48 * H),
            ids(status="completed"),
        ) == (["WO-2", "WO-1"], ["WO-1"], ["WO-2"], ["WO-2"], ["WO-3"])


class TestRequestCorrected:
    """`workorder.request_corrected` (a retry after a mapping fix named the reporting department)."""

    UNKNOWN = DeptRef(name="康复医学科")
    FIXED = DeptRef(code="0401", name="康复医学科")

    def columns(self, feed: Feed) -> tuple[object, ...]:
        row = feed.order("WO-1")
        with feed.engine.connect() as conn:
            detail = get_work_order(conn, "WO-1", now=NOW)
        assert detail is not None
        timeline = [(e["event_type"], e["event_id"]) for e in detail["timeline"]]
        return row["department_code"], row["department_name"], row["status"], timeline

    def test_the_order_takes_the_corrected_department(self, wo_engine: Engine) -> None:
        """The order's reporting department is the corrected one; the lifecycle is untouched, the
        timeline keeps one request (under the original's id); applying it again changes nothing."""
        feed = Feed(wo_engine)
        original = requested("r", "WO-1", department=self.UNKNOWN)
        feed(original, assigned("a", "WO-1", at=T0 + H))
        assert self.columns(feed)[:2] == (None, "康复医学科")
        fix = request_corrected("x", original, department=self.FIXED)
        feed(fix)
        after = self.columns(feed)
        assert after[:3] == ("0401", "康复医学科", "assigned")
        assert [t for t, _ in after[3]] == ["workorder.requested", "workorder.assigned"]  # type: ignore[union-attr]
        with wo_engine.connect() as conn:
            assert [
                r["workorder_id"]
                for r in list_work_orders(conn, WorkOrderFilter(department="0401"), now=NOW)[0]
            ] == ["WO-1"]
        feed(fix, original)  # redelivered, in any order: nothing changes
        assert self.columns(feed) == after

    def test_same_batch_and_correction_first_end_the_same(self, wo_engine: Engine) -> None:
        """Original and correction in one batch, or the correction first: the same order row."""
        original = requested("r", "WO-1", department=self.UNKNOWN)
        fix = request_corrected("x", original, department=self.FIXED)
        ends = []
        for batches in ([(original, fix)], [(original,), (fix,)], [(fix,), (original,)]):
            reset(wo_engine, METADATA)
            feed = Feed(wo_engine)
            for batch in batches:
                feed(*batch)
            row = feed.order("WO-1")
            ends.append((row["department_code"], row["department_name"], row["requested_event_id"]))
        assert ends == [("0401", "康复医学科", str(original.event_id))] * 3


class TestDemoSummary:
    def test_demo_tables_are_filled(self, wo_engine: Engine) -> None:
        """demo_summary gives the status counts, open orders, approvals and KPI tables `hub demo` prints."""
        from projections.work_orders.projection import demo_summary

        feed = Feed(wo_engine)
        feed(
            registered("reg", "AST-1", card="ZC-2019-00005"),
            requested("r1", "WO-1"),
            approved("a1", "WO-1", at=T0 + H, amount="19100.00"),
            completed("c1", "WO-1", at=T0 + 5 * H, cost="19100.00"),
            requested("r2", "WO-2", at=T0 + H),
        )
        with wo_engine.connect() as conn:
            tables = demo_summary(conn)
        by_title = {title.split(",")[0]: rows for title, _, rows in tables}
        assert (
            by_title["Work orders by status"],
            [r[0] for r in by_title["Open work orders (newest first)"]],
            by_title["Repairs at or above the approval threshold"],
            [r[:3] for r in by_title["KPIs by category"]],
        ) == (
            [["completed", "1", "0"], ["requested", "1", "0"]],
            ["WO-2"],
            [["WO-1", "19100.00", "approved", "1", "False"]],
            [["6854", "手术室、急救室、诊疗室设备及器具", "1"]],
        )
