"""The bundled OA samples flow into the events examples/oa/README.md documents, on known HRP assets."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from functools import cache

import pytest

from adapters.base import TranslateContext, Translation
from adapters.hrp import ADAPTER as HRP
from adapters.hrp.mapping import default_mapping as hrp_mapping
from hub.ports import RawRecord
from schemas._base import Identifier
from schemas.assets import AssetRegistered
from schemas.ids import asset_id_for
from tests.unit.adapters._oa import HRP_LEDGER, JSON_EXPORT, JSONL_PUSH, SHANGHAI, XML_EXPORT, run


@cache
def translated(name: str) -> Translation:
    path = {"json": JSON_EXPORT, "xml": XML_EXPORT, "jsonl": JSONL_PUSH}[name]
    return run(path.read_bytes(), path.name)


@cache
def ledger_cards() -> frozenset[str]:
    raw = RawRecord(
        "r", "hrp", "demo", HRP_LEDGER.name, "0" * 64, 0, "file", datetime(2024, 7, 1, tzinfo=UTC)
    )
    mapping = hrp_mapping()
    ctx = TranslateContext(
        site="demo", tz=SHANGHAI, adapter_version=HRP.version, mapping_version=mapping.version
    )
    result = HRP.translate(raw, HRP_LEDGER.read_bytes(), mapping, ctx)
    return frozenset(
        e.event.payload.identifiers[0].value for e in result.events if isinstance(e.event, AssetRegistered)
    )


class TestJsonExport:
    def test_event_counts(self) -> None:
        """The Q2 export gives the documented events per type."""
        counts = Counter(e.event.type for e in translated("json").events)
        assert counts == {
            "workorder.requested": 80, "workorder.approved": 12, "workorder.rejected": 1,
            "workorder.assigned": 74, "workorder.started": 84, "workorder.on_hold": 11,
            "workorder.completed": 72, "workorder.closed": 71, "workorder.cancelled": 5,
        }  # fmt: skip

    def test_documented_bad_records(self) -> None:
        """Exactly the two documented bad records fail, each naming record, line and field."""
        failures = [
            (f.position, f.code, f.location.line, f.location.column) for f in translated("json").failures
        ]
        assert failures == [
            ("record:151", "unknown_kind", 1606, "单据类型"),
            ("record:261", "unknown_code", 2742, "紧急程度"),
        ]
        assert "'报废申请'" in translated("json").failures[0].reason
        assert "'特急加急'" in translated("json").failures[1].reason
        assert translated("json").skipped == ("record:301: 回访 (ignored_kinds)",)

    def test_requests_land_on_ledger_assets(self) -> None:
        """Every request names a card number the HRP ledger sample registers."""
        assets = {
            e.event.payload.asset for e in translated("json").events if e.event.type == "workorder.requested"
        }
        assert {a.scheme for a in assets} == {"hrp.card"}
        assert {a.value for a in assets} <= ledger_cards()

    def test_costly_repairs_have_approvals(self) -> None:
        """Every completion of 10,000 CNY or more has an approval or a rejection for its work order."""
        events = [e.event for e in translated("json").events]
        decided = {e.subject for e in events if e.type in ("workorder.approved", "workorder.rejected")}
        costly = {
            e.subject for e in events if e.type == "workorder.completed" and e.payload.cost.amount >= 10_000
        }
        assert costly
        assert costly <= decided

    def test_covers_the_departments(self) -> None:
        """The requests come from the twelve clinical departments, by code."""
        codes = {
            e.event.payload.reporting_department.code
            for e in translated("json").events
            if e.event.type == "workorder.requested"
        }
        assert len(codes) == 12
        assert None not in codes


class TestXmlExport:
    def test_event_counts(self) -> None:
        """The GBK lending and repair report gives loans, returns and the repair lifecycles."""
        counts = Counter(e.event.type for e in translated("xml").events)
        assert (counts["asset.loaned"], counts["asset.returned"], counts["workorder.requested"]) == (
            11,
            9,
            16,
        )
        assert sum(counts.values()) == 92

    def test_documented_bad_record(self) -> None:
        """The one bad record is the loan with a due date that does not exist; its return still lands."""
        [failure] = translated("xml").failures
        assert (failure.position, failure.code, failure.location.line) == ("record:1", "invalid_date", 3)
        assert (failure.location.column, failure.location.field) == ("预计归还时间", "due_at")
        returns = [e for e in translated("xml").events if e.event.type == "asset.returned"]
        assert any(e.event.payload.loan_id == "JY20240004" and e.position == "record:5" for e in returns)

    def test_loans_on_ledger_assets(self) -> None:
        """Loans name assets of the HRP ledger; the still-open ones are those the ledger shows as 借出."""
        loans = [e.event for e in translated("xml").events if e.event.type == "asset.loaned"]
        returned = {
            e.event.payload.loan_id for e in translated("xml").events if e.event.type == "asset.returned"
        }
        card_ids = {asset_id_for(Identifier(scheme="hrp.card", value=c)): c for c in ledger_cards()}
        assert {e.subject for e in loans} <= set(card_ids)
        still_out = {card_ids[e.subject] for e in loans if e.payload.loan_id not in returned}
        assert still_out == {"ZC-2012-00013", "ZC-2014-00025", "ZC-2020-00033"}

    def test_two_requests_use_the_oa_number(self) -> None:
        """The two documented requests without a card number name the asset by its oa.no."""
        schemes = Counter(
            e.event.payload.asset.scheme
            for e in translated("xml").events
            if e.event.type == "workorder.requested"
        )
        assert schemes == {"hrp.card": 14, "oa.no": 2}


class TestWebhookLog:
    def test_resent_documents_keep_their_event_ids(self) -> None:
        """The three records re-sent by the webhook have the same event ids as in the JSON export."""
        export_ids = {e.event.event_id for e in translated("json").events}
        push = translated("jsonl")
        resent = [e for e in push.events if e.event.event_id in export_ids]
        assert [e.position for e in resent] == ["line:1", "line:2", "line:3"]
        assert len(push.events) == 7
        assert push.failures == ()

    def test_export_file_starts_with_bom(self) -> None:
        """The JSON export is UTF-8 with a byte-order mark, as Windows OA exports write it."""
        data = JSON_EXPORT.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        assert len(json.loads(data.decode("utf-8-sig"))["记录"]) == translated("json").units

    def test_xml_is_gbk(self) -> None:
        """The XML export is GBK and says so in its declaration."""
        data = XML_EXPORT.read_bytes()
        assert data.startswith(b'<?xml version="1.0" encoding="GBK"?>')
        assert "借用科室" in data.decode("gbk")
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
