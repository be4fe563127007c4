"""decode: bus record bytes -> canonical event, or a Poison verdict; never an exception."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from projections.runtime.decode import Poison, decode
from schemas.assets import AssetRelocated
from schemas.catalogue import dump_event, parse_event
from schemas.envelope import EventBase
from tests.unit.projections.factories import T0, asset_events, eid, record

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


class TestDecode:
    @given(stream=asset_events())
    def test_current_events_decode_to_what_parse_event_gives(self, stream: list[EventBase]) -> None:
        """The fast path returns exactly the event parse_event would, for every event type."""
        for event in stream:
            data = dump_event(event)
            assert decode(record(data, 0)) == parse_event(data) == event

    def test_an_old_version_is_upcast(self) -> None:
        """A stored v1 asset.relocated (flat strings) decodes as the current v2 model."""
        v1 = {
            "event_id": str(eid("v1")), "type": "asset.relocated", "schema_version": 1,
            "occurred_at": T0.isoformat(), "recorded_at": T0.isoformat(), "subject": "A1",
            "source": {"system": "hrp", "site": "main", "message_id": "m", "adapter_version": "0.1"},
            "payload": {"to_department": "急诊科", "location": "抢救室"},
        }  # fmt: skip
        event = decode(record(json.dumps(v1).encode(), 0))
        assert isinstance(event, AssetRelocated)
        assert (event.schema_version, event.payload.to.department.name) == (2, "急诊科")

    @given(data=st.binary(max_size=200))
    def test_arbitrary_bytes_never_raise(self, data: bytes) -> None:
        """Any bytes give an event or a Poison with a reason, never an exception."""
        result = decode(record(data, 0))
        assert isinstance(result, Poison | EventBase)
        if isinstance(result, Poison):
            assert result.error

    @given(value=JSON_VALUES)
    def test_arbitrary_json_is_poison_with_a_reason(self, value: object) -> None:
        """Well-formed JSON that is not an event is Poison naming why (fields, not values)."""
        result = decode(record(json.dumps(value).encode(), 0))
        assert isinstance(result, Poison)
        assert result.error
        assert len(result.error) <= 2000

    def test_a_malformed_old_version_is_poison_not_a_crash(self) -> None:
        """An old-version event the upcaster cannot read (no payload) is poison, keeping its event id."""
        broken = {"event_id": "abc", "type": "asset.relocated", "schema_version": 1}
        result = decode(record(json.dumps(broken).encode(), 0))
        assert result == Poison(
            "ValueError: not an event: expected a JSON object with a `payload` object", "abc"
        )
