"""What the registry writes back: only the golden-record columns some row of the batch changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from projections.assets.registry import changed_columns
from projections.assets.state import COLUMNS


def row(asset_id: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(COLUMNS)
    out.update(asset_id=asset_id, decommissioned=False, provisional=False, on_loan=False, **values)
    return out


class TestChangedColumns:
    def test_a_new_row_writes_its_set_columns_and_the_not_null_ones(self) -> None:
        """A row not stored yet sends every column it sets, plus the NOT NULL flags, nothing else."""
        (written,) = changed_columns([row("A1", name="呼吸机")], {})
        assert set(written) == {"asset_id", "name", "decommissioned", "provisional", "on_loan"}

    def test_a_stored_row_writes_what_changed_including_a_cleared_value(self) -> None:
        """Against its stored row, a changed value and a value set back to NULL are written; equal ones not."""
        stored = row("A1", name="呼吸机", status="in_use", location="ICU-3")
        (written,) = changed_columns([row("A1", name="呼吸机", status="under_repair")], {"A1": stored})
        assert written == {
            "asset_id": "A1",
            "status": "under_repair",
            "location": None,
            "decommissioned": False,
            "provisional": False,
            "on_loan": False,
        }

    def test_every_row_carries_the_union_of_the_changed_columns(self) -> None:
        """Rows share one column list (one statement): a column one row changes goes with all of them."""
        stored = {"A1": row("A1", name="a"), "A2": row("A2", name="b")}
        written = changed_columns([row("A1", name="a", model="X"), row("A2", name="c")], stored)
        assert [sorted(set(w) - {"decommissioned", "provisional", "on_loan"}) for w in written] == [
            ["asset_id", "model", "name"],
            ["asset_id", "model", "name"],
        ]

    def test_a_decimal_of_another_scale_is_a_change(self) -> None:
        """185000.00 replacing a stored 185000.0 is written: the stored text keeps the scale it was given."""
        stored = {"A1": row("A1", original_value=Decimal("185000.0"))}
        (written,) = changed_columns([row("A1", original_value=Decimal("185000.00"))], stored)
        assert written["original_value"] == Decimal("185000.00")
