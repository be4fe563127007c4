"""Deterministic ids: the registry's fast mint is exactly uuid5's (ids on the log never change)."""

from __future__ import annotations

from uuid import uuid5

from hypothesis import given
from hypothesis import strategies as st

from schemas._base import Identifier
from schemas.ids import SUBJECT_NAMESPACE, asset_id_for, asset_id_from


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
