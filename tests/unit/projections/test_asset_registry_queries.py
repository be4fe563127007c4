"""list_assets / get_asset: the filters and pagination the API serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from projections.assets.registry import AssetRegistry, get_asset, list_assets
from projections.runtime.tracking import apply_batch
from schemas._base import DeptRef
from schemas.assets import Category
from tests.unit.projections.factories import linked, records, registered, status_changed

if TYPE_CHECKING:
    from sqlalchemy import Engine

ER = DeptRef(code="ER", name="急诊科")
LAB = Category(code="6840", name="临床检验分析仪器")


@pytest.fixture
def fleet(engine: Engine) -> Engine:
    """Five assets over two departments, two categories and three statuses."""
    events = [
        registered("r1", "A1", name="呼吸机 SV300"),
        registered("r2", "A2", name="Ventilator Evita", department=ER),
        registered("r3", "A3", name="全自动生化分析仪", category=LAB),
        registered("r4", "A4", name="除颤仪", department=ER, category=LAB),
        registered("r5", "A5", name="100%_纯氧流量计"),
        status_changed("s2", "A2", "under_repair"),
        status_changed("s4", "A4", "idle"),
        linked("l3", "A3", "udi", "(01)06901234567892"),
    ]
    apply_batch(engine, AssetRegistry(), records(events))
    return engine


def _ids(engine: Engine, **filters: object) -> tuple[list[str], int]:
    with engine.connect() as conn:
        rows, total = list_assets(conn, **filters)  # type: ignore[arg-type]
    return [r["asset_id"] for r in rows], total


class TestListAssets:
    def test_without_filters_lists_everything_by_asset_id(self, fleet: Engine) -> None:
        """No filter: every asset, ordered by id, with the total."""
        assert _ids(fleet) == (["A1", "A2", "A3", "A4", "A5"], 5)

    def test_department_matches_code_or_name(self, fleet: Engine) -> None:
        """department= matches either the code or the harmonised name."""
        assert _ids(fleet, department="ER") == (["A2", "A4"], 2)
        assert _ids(fleet, department="急诊科") == (["A2", "A4"], 2)

    def test_status_matches_exactly(self, fleet: Engine) -> None:
        """status= keeps only assets in that harmonised status."""
        assert _ids(fleet, status="in_use") == (["A1", "A3", "A5"], 3)

    def test_name_is_a_case_insensitive_substring(self, fleet: Engine) -> None:
        """name= finds Chinese and Latin substrings, ignoring case."""
        assert _ids(fleet, name="分析仪") == (["A3"], 1)
        assert _ids(fleet, name="ventilator") == (["A2"], 1)

    def test_name_wildcards_are_literal(self, fleet: Engine) -> None:
        """% and _ in the name filter match themselves, not anything."""
        assert _ids(fleet, name="100%_") == (["A5"], 1)
        assert _ids(fleet, name="%") == (["A5"], 1)

    def test_category_matches_code_or_name(self, fleet: Engine) -> None:
        """category= matches the class code or its name."""
        assert _ids(fleet, category="6840") == (["A3", "A4"], 2)
        assert _ids(fleet, category="临床检验分析仪器") == (["A3", "A4"], 2)

    def test_identifier_matches_any_linked_value(self, fleet: Engine) -> None:
        """identifier= finds the asset by any linked identifier value."""
        assert _ids(fleet, identifier="(01)06901234567892") == (["A3"], 1)
        assert _ids(fleet, identifier="ZC-A4") == (["A4"], 1)
        assert _ids(fleet, identifier="nope") == ([], 0)

    def test_filters_combine(self, fleet: Engine) -> None:
        """Several filters narrow together."""
        assert _ids(fleet, department="ER", category="6840", status="idle") == (["A4"], 1)

    def test_pagination_keeps_the_total(self, fleet: Engine) -> None:
        """limit/offset page through the ordered list; total counts every match."""
        assert _ids(fleet, limit=2, offset=0) == (["A1", "A2"], 5)
        assert _ids(fleet, limit=2, offset=4) == (["A5"], 5)
        assert _ids(fleet, limit=2, offset=10) == ([], 5)

    def test_listed_rows_carry_their_identifiers(self, fleet: Engine) -> None:
        """Each listed asset includes its crosswalk entries."""
        with fleet.connect() as conn:
            rows, _ = list_assets(conn, identifier="(01)06901234567892")
        assert rows[0]["identifiers"] == [
            {"scheme": "hrp.card", "value": "ZC-A3", "linked_by": "registered"},
            {"scheme": "udi", "value": "(01)06901234567892", "linked_by": "mapping"},
        ]


class TestGetAsset:
    def test_unknown_asset_is_none(self, fleet: Engine) -> None:
        """An id the registry never saw gives None."""
        with fleet.connect() as conn:
            assert get_asset(conn, "AST-missing") is None
