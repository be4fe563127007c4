"""Deterministic ids: the registry's fast mint is exactly uuid5's (ids on the log never change)."""

from __future__ import annotations

from uuid import uuid5

from hypothesis import given
from hypothesis import strategies as st

from schemas._base import Identifier
from schemas.ids import SUBJECT_NAMESPACE, asset_id_for, asset_id_from, item_id_for, workorder_id_for


@given(
    scheme=st.sampled_from(["hrp.card", "udi", "serial", "his.code", "fhir.device"]),
    value=st.text(min_size=1).filter(lambda v: v.strip() != ""),
)
def test_asset_id_is_uuid5_over_scheme_and_value(scheme: str, value: str) -> None:
    ident = Identifier(scheme=scheme, value=value)
    expected = "AST-" + uuid5(SUBJECT_NAMESPACE, f"asset\x1f{ident.scheme}\x1f{ident.value}").hex[:20]
    assert asset_id_for(ident) == asset_id_from(ident.scheme, ident.value) == expected


def test_a_known_card_keeps_its_id() -> None:
    """Pinned: every stored record and event keyed by this card depends on it."""
    assert asset_id_for(Identifier(scheme="hrp.card", value="ZC-00000000")) == "AST-c1723f91bf745063bb30"


@given(system=st.sampled_from(["his", "spd", "hrp", "oa", "fhir"]), code=st.text())
def test_item_and_work_order_ids_are_uuid5_over_system_and_code(system: str, code: str) -> None:
    """The fast mint gives the same item and work-order ids as uuid5 always did."""
    assert (
        item_id_for(system, code) == "ITM-" + uuid5(SUBJECT_NAMESPACE, f"item\x1f{system}\x1f{code}").hex[:20]
    )
    expected = "WO-" + uuid5(SUBJECT_NAMESPACE, f"workorder\x1f{system}\x1f{code}").hex[:20]
    assert workorder_id_for(system, code) == expected


def test_a_known_item_and_work_order_keep_their_ids() -> None:
    """Pinned: stock, traces and work orders on the log are keyed by these."""
    assert item_id_for("his", "HC0301") == "ITM-c8ae2d47045b5c968611"
    assert workorder_id_for("oa", "WO-2024-0001") == "WO-5e74d841f76d581f83ed"
