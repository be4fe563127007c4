"""The HRP asset-document samples: what each yields, its bad rows, and that it names ledger assets."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING

import pytest

from schemas._base import DeptRef
from schemas.assets import AssetCalibrated, AssetRelocated
from tests.unit.adapters._hrp import EXAMPLES, LEDGER, run

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.base import Translation

ACCEPTANCE = EXAMPLES / "资产业务_01_验收单_2024.csv"
TRANSFERS = EXAMPLES / "资产业务_02_调拨单_2024.csv"
CERTIFICATES = EXAMPLES / "资产业务_03_计量证书_2024.csv"
CONTRACTS = EXAMPLES / "资产业务_04_维保合同_2024.csv"
DEPRECIATION = EXAMPLES / "资产业务_05_折旧明细_2024-06.xlsx"
DISPOSALS = EXAMPLES / "资产业务_06_报废处置单_2024.csv"
DOCUMENTS = (ACCEPTANCE, TRANSFERS, CERTIFICATES, CONTRACTS, DEPRECIATION, DISPOSALS)
EXPECTED = {
    ACCEPTANCE.name: ({"asset.accepted": 14, "asset.commissioned": 12}, 1),
    TRANSFERS.name: ({"asset.relocated": 14}, 1),
    CERTIFICATES.name: ({"asset.calibrated": 59}, 1),
    CONTRACTS.name: ({"asset.contract_registered": 50}, 0),
    DEPRECIATION.name: ({"asset.valuation_updated": 476}, 0),
    DISPOSALS.name: ({"asset.decommissioned": 8}, 0),
}
EXPORT_DAY = date(2024, 6, 30)


@pytest.fixture(scope="module")
def results() -> dict[str, Translation]:
    return {path.name: run(path.read_bytes(), path.name) for path in (LEDGER, *DOCUMENTS)}


class TestDocumentSamples:
    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_counts(self, results: dict[str, Translation], name: str) -> None:
        """Each document sample yields its documented events and failures (examples/hrp/README.md)."""
        events, failures = EXPECTED[name]
        assert Counter(e.event.type for e in results[name].events) == events
        assert len(results[name].failures) == failures

    def test_bad_rows_fail_where_the_readme_says(self, results: dict[str, Translation]) -> None:
        """The three deliberately bad document rows fail at their documented line, column and code."""
        got = [
            (f.location.file, f.location.line, f.location.column, f.code)
            for path in DOCUMENTS
            for f in results[path.name].failures
        ]
        assert got == [
            (ACCEPTANCE.name, 10, "验收结论", "unknown_acceptance_result"),
            (TRANSFERS.name, 8, "调拨日期", "invalid_date"),
            (CERTIFICATES.name, 51, "资产编号", "missing_required"),
        ]

    def test_every_document_names_an_asset_of_the_ledger(self, results: dict[str, Translation]) -> None:
        """Documents refer to assets the ledger registers: their subjects are the ledger's subjects."""
        registered = {e.event.subject for e in results[LEDGER.name].events}
        for path in DOCUMENTS:
            assert {e.event.subject for e in results[path.name].events} <= registered, path.name

    def test_documents_sort_after_the_ledgers(self) -> None:
        """`hub demo` loads in name order: every document file sorts after every ledger file."""
        ledgers = [
            p.name
            for p in EXAMPLES.iterdir()
            if p.suffix in {".csv", ".xlsx"} and not p.name.startswith("资产业务")
        ]
        assert max(ledgers) < min(p.name for p in DOCUMENTS)

    def test_monitor_transfer_matches_the_re_exported_ledger(self, results: dict[str, Translation]) -> None:
        """The first transfer moves ZC-2015-00021 from 急诊科 to the ICU, as the updated ledger shows."""
        first = results[TRANSFERS.name].events[0].event
        assert isinstance(first, AssetRelocated)
        assert first.payload.from_ is not None
        assert (first.payload.from_.department, first.payload.to.department) == (
            DeptRef(code="0102", name="急诊科"),
            DeptRef(code="0101", name="重症医学科"),
        )
        assert first.payload.to.location == "住院部5楼ICU抢救间"

    def test_certificates_include_expired_and_expiring_ones(self, results: dict[str, Translation]) -> None:
        """Four certificates expired before the export day, five expire within 30 days of it."""
        certificates = [
            e.event for e in results[CERTIFICATES.name].events if isinstance(e.event, AssetCalibrated)
        ]
        valid = [c.payload.valid_until for c in certificates if c.payload.valid_until]
        assert sum(v < EXPORT_DAY for v in valid) == 4
        assert sum(EXPORT_DAY <= v < date(2024, 7, 30) for v in valid) == 5
        assert Counter(c.payload.result for c in certificates) == {"passed": 55, "limited": 3, "failed": 1}


def test_generators_reproduce_the_committed_samples(tmp_path: Path) -> None:
    """Both HRP generators, run again in a fresh interpreter, write byte-identical files."""
    for script in ("generate_hrp.py", "generate_hrp_documents.py"):
        subprocess.run(
            [sys.executable, str(EXAMPLES.parent / script), str(tmp_path)], check=True, capture_output=True
        )
    committed = [p for p in EXAMPLES.iterdir() if p.suffix in {".csv", ".xlsx"}]
    assert len(committed) == 10
    for path in committed:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
