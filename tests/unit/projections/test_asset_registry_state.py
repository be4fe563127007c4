"""State of a golden record: loans, calibration, contracts, valuation, lifecycle; each fact where it belongs in time."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from hub.translation.corrections import correction
from hub.translation.snapshots import content_hash
from projections.assets.queries import loan_overdue
from schemas._base import DeptRef
from schemas.assets import (
    AcceptedPayload,
    AssetAccepted,
    AssetCommissioned,
    AssetInspected,
    CommissionedPayload,
    InspectedPayload,
)
from tests.unit.projections.factories import eid
from tests.unit.projections.registry_factories import (
    EQUIP,
    ER,
    HOUR,
    ICU,
    T0,
    Feed,
    calibrated,
    card,
    contract,
    hrp,
    link,
    loaned,
    mint,
    moved,
    returned,
    scrapped,
    status,
    used,
    valuation,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

A = card("ZC-1")
REHAB = DeptRef(code="0401", name="康复医学科")


class TestLoans:
    def test_a_loan_records_borrower_responsible_and_due(self, engine: Engine) -> None:
        """asset.loaned opens a loan with the borrowing department, the responsible person and the due time."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l1", A, "JY-1", ER, due=T0 + 48 * HOUR, at=T0 + HOUR))
        row = feed.asset(A)
        assert (row["on_loan"], row["loan_id"], row["loan_borrower_name"], row["loan_responsible"]) == (
            True,
            "JY-1",
            "急诊科",
            "张杰",
        )
        assert (row["loan_due_at"], row["loan_started_at"]) == (T0 + 48 * HOUR, T0 + HOUR)

    def test_overdue_is_judged_at_query_time(self, engine: Engine) -> None:
        """The same open loan is not overdue before its due time and overdue after it."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l1", A, "JY-1", ER, due=T0 + 48 * HOUR, at=T0 + HOUR))
        row = feed.asset(A)
        assert not loan_overdue(row, T0 + 47 * HOUR)
        assert loan_overdue(row, T0 + 49 * HOUR)

    def test_a_return_closes_the_loan(self, engine: Engine) -> None:
        """asset.returned closes the loan and keeps who had it; a returned device is never overdue."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l1", A, "JY-1", ER, due=T0 + 2 * HOUR, at=T0 + HOUR))
        feed(returned("b1", A, "JY-1", at=T0 + 3 * HOUR))
        row = feed.asset(A)
        assert (row["on_loan"], row["loan_returned_at"], row["loan_borrower_name"]) == (
            False,
            T0 + 3 * HOUR,
            "急诊科",
        )
        assert not loan_overdue(row, T0 + 10 * HOUR)

    def test_a_loan_arriving_after_its_return_stays_closed_and_fills_the_borrower(
        self, engine: Engine
    ) -> None:
        """Out of order, the return then the loan: the loan is closed and knows who had the device."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), returned("b1", A, "JY-1", at=T0 + 3 * HOUR))
        feed(loaned("l1", A, "JY-1", ER, at=T0 + HOUR))
        row = feed.asset(A)
        assert (row["on_loan"], row["loan_borrower_name"], row["loan_started_at"]) == (
            False,
            "急诊科",
            T0 + HOUR,
        )

    def test_a_late_return_of_an_older_loan_does_not_close_a_newer_one(self, engine: Engine) -> None:
        """A return older than the current loan is history only."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l2", A, "JY-2", ICU, at=T0 + 5 * HOUR))
        feed(returned("b1", A, "JY-1", at=T0 + 3 * HOUR))
        row = feed.asset(A)
        assert (row["on_loan"], row["loan_id"], row["loan_borrower_code"]) == (True, "JY-2", "0101")


class TestCalibrationAndInspection:
    def test_the_latest_calibration_is_the_state(self, engine: Engine) -> None:
        """A newer certificate replaces the older one; an older one arriving late does not."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), calibrated("c2", A, on=date(2024, 3, 1), until=date(2025, 2, 28), at=T0))
        feed(
            calibrated(
                "c1", A, on=date(2023, 3, 1), until=date(2024, 2, 29), result="failed", at=T0 - 8000 * HOUR
            )
        )
        row = feed.asset(A)
        assert (row["calibrated_on"], row["calibration_valid_until"], row["calibration_result"]) == (
            date(2024, 3, 1),
            date(2025, 2, 28),
            "passed",
        )
        assert row["calibration_certificate"] == "JD-c2"

    def test_the_latest_inspection_is_the_state(self, engine: Engine) -> None:
        """asset.inspected keeps kind, date, result and next due date of the newest inspection."""
        feed = Feed(engine)
        payload = InspectedPayload(
            kind="electrical_safety",
            inspected_on=date(2024, 3, 1),
            result="passed",
            next_due_on=date(2025, 3, 1),
        )
        base = hrp("r1", "ZC-1")
        event = AssetInspected(
            **base.model_dump(include={"occurred_at", "recorded_at", "source", "subject"}),
            event_id=eid("i1"),
            payload=payload,
        )
        feed(base, event)
        row = feed.asset(A)
        assert (row["inspection_kind"], row["inspection_next_due_on"]) == (
            "electrical_safety",
            date(2025, 3, 1),
        )


class TestLifecycle:
    def test_a_late_relocation_applies_even_after_a_newer_status_change(self, engine: Engine) -> None:
        """Status and location keep separate clocks: an old relocation arriving late still moves the device."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1", at=T0), status("s1", A, "idle", at=T0 + 5 * HOUR))
        feed(moved("m1", A, ER, "抢救室", at=T0 + 2 * HOUR))
        row = feed.asset(A)
        assert (row["department_code"], row["location"], row["status"]) == ("0102", "抢救室", "idle")
        assert row["last_occurred_at"] == T0 + 5 * HOUR

    def test_acceptance_and_commissioning_into_a_department(self, engine: Engine) -> None:
        """Acceptance records its date and result; commissioning into a department moves the device there."""
        feed = Feed(engine)
        base = hrp("r1", "ZC-1", at=T0)
        envelope = base.model_dump(include={"recorded_at", "source", "subject"})
        feed(
            base,
            AssetAccepted(
                **envelope,
                event_id=eid("a1"),
                occurred_at=T0 + HOUR,
                payload=AcceptedPayload(accepted_on=date(2024, 3, 2)),
            ),
            AssetCommissioned(
                **envelope,
                event_id=eid("k1"),
                occurred_at=T0 + 2 * HOUR,
                payload=CommissionedPayload(commissioned_on=date(2024, 3, 3), department=EQUIP),
            ),
        )
        row = feed.asset(A)
        assert (row["accepted_on"], row["acceptance_result"], row["commissioned_on"]) == (
            date(2024, 3, 2),
            "passed",
            date(2024, 3, 3),
        )
        assert row["department_name"] == "设备科"

    def test_decommissioning_keeps_the_earliest_date(self, engine: Engine) -> None:
        """Two disposal reports: the device is decommissioned from the earlier date."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), scrapped("d2", A, at=T0 + 48 * HOUR))
        feed(scrapped("d1", A, at=T0 + 24 * HOUR))
        row = feed.asset(A)
        assert (row["decommissioned"], row["decommissioned_on"], row["status"]) == (
            True,
            date(2024, 3, 2),
            "scrapped",
        )

    def test_usage_keeps_the_latest_use(self, engine: Engine) -> None:
        """asset.used moves last_used_at forward only."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), used("u2", A, at=T0 + 5 * HOUR), used("u1", A, at=T0 + HOUR))
        assert feed.asset(A)["last_used_at"] == T0 + 5 * HOUR


class TestMoney:
    def test_the_latest_valuation_period_wins(self, engine: Engine) -> None:
        """A valuation for an earlier period arriving late leaves the newer figures."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), valuation("v6", A, "2024-06", "90000.00"))
        feed(valuation("v5", A, "2024-05", "91000.00"))
        row = feed.asset(A)
        assert (row["valuation_period"], row["net_value"]) == ("2024-06", Decimal("90000.00"))


class TestContracts:
    def test_contracts_are_listed_by_number_latest_fact_per_number(self, engine: Engine) -> None:
        """Two contracts are kept; the same number registered again with a later fact replaces its entry."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), contract("k1", A, "HT-2", ends=date(2024, 12, 31)))
        feed(contract("k2", A, "HT-1", ends=date(2025, 6, 30), vendor="德尔格"))
        feed(contract("k3", A, "HT-2", ends=date(2025, 12, 31), at=T0 + HOUR))
        contracts = feed.asset(A)["contracts"]
        assert [(c["contract_no"], c["vendor"], c["ends_on"]) for c in contracts] == [
            ("HT-1", "德尔格", "2025-06-30"),
            ("HT-2", "迈瑞", "2025-12-31"),
        ]

    def test_contracts_of_a_merged_record_join_the_golden_record(self, engine: Engine) -> None:
        """A contract registered against a provisional record is listed on the golden record after the merge."""
        spd = mint("spd.code", "S-1")
        feed = Feed(engine)
        feed(
            contract("k1", spd, "HT-9", ends=date(2025, 1, 31)),
            hrp("r1", "ZC-1"),
            contract("k2", A, "HT-1", ends=date(2025, 1, 31)),
        )
        feed(link("l1", A, "spd.code", "S-1"))
        assert [c["contract_no"] for c in feed.asset(A)["contracts"]] == ["HT-1", "HT-9"]


class TestDepartments:
    def test_a_loan_to_a_department_without_code_compares_by_name(self, engine: Engine) -> None:
        """Borrower named without a code: the loan still records the name."""
        feed = Feed(engine)
        feed(hrp("r1", "ZC-1"), loaned("l1", A, "JY-1", DeptRef(name="康复医学科")))
        assert feed.asset(A)["loan_borrower_name"] == "康复医学科"

    def test_a_loan_corrected_by_a_retry_names_the_borrower_by_code(self, engine: Engine) -> None:
        """`asset.loan_corrected` (a retry after the mapping named the borrower): the open loan's
        borrower is the corrected one; a later loan of the device is not touched by it."""
        feed = Feed(engine)
        wrong = loaned("l1", A, "JY-1", DeptRef(name="康复医学科"), at=T0 + HOUR)
        right = wrong.model_copy(
            update={"payload": wrong.payload.model_copy(update={"borrower_department": REHAB})}
        )
        previous = wrong.model_dump(mode="json")["payload"]
        fix = correction(right, previous, content_hash(right.model_dump(mode="json")["payload"]))
        assert fix.type == "asset.loan_corrected"
        feed(hrp("r1", "ZC-1"), wrong)
        feed(fix)
        row = feed.asset(A)
        assert (row["on_loan"], row["loan_id"], row["loan_borrower_code"], row["loan_borrower_name"]) == (
            True, "JY-1", "0401", "康复医学科"
        )  # fmt: skip
        assert row["loan_started_at"] == T0 + HOUR
        b = card("ZC-2")
        wrong_b = wrong.model_copy(update={"event_id": eid("lb"), "subject": b})
        right_b = right.model_copy(update={"event_id": eid("lb"), "subject": b})
        fix_b = correction(right_b, previous, content_hash(right_b.model_dump(mode="json")["payload"]))
        feed(hrp("r2", "ZC-2"), wrong_b, loaned("l2", b, "JY-2", ER, at=T0 + 5 * HOUR))
        feed(fix_b)  # the device is on another loan since: that one stands
        assert (feed.asset(b)["loan_id"], feed.asset(b)["loan_borrower_name"]) == ("JY-2", "急诊科")
