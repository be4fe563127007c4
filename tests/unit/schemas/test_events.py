"""Canonical events survive the wire unchanged, and the models refuse what the contract forbids."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.catalogue import EVENT_CLASSES, dump_event, parse_event
from tests.unit.schemas.examples import PAYLOADS, example_dict, example_event

EVENT_TYPES = sorted(EVENT_CLASSES)


class TestExampleFactory:
    def test_covers_every_event_type(self) -> None:
        """The example factory has a payload for every type in the catalogue, and no stale ones."""
        assert set(PAYLOADS) == set(EVENT_CLASSES)


class TestRoundTrip:
    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_dump_then_parse_is_identity(self, event_type: str) -> None:
        """parse_event(dump_event(e)) gives back an equal event of the same class."""
        event = example_event(event_type)
        back = parse_event(dump_event(event))
        assert type(back) is type(event)
        assert back == event

    def test_decimal_keeps_its_scale(self) -> None:
        """Money travels as an exact decimal string: 12800.50 stays 12800.50, never a float."""
        back = parse_event(dump_event(example_event("asset.contract_registered")))
        assert back.payload.amount is not None
        assert str(back.payload.amount.amount) == "12800.50"


class TestStrictness:
    def test_unknown_envelope_field_is_rejected(self) -> None:
        """A producer adding a field the envelope does not define gets a validation error."""
        with pytest.raises(ValidationError, match="priority"):
            parse_event({**example_dict("asset.used"), "priority": "high"})

    def test_unknown_payload_field_is_rejected(self) -> None:
        """A payload with a field its model does not define is refused (extra=forbid)."""
        data = example_dict("asset.status_changed")
        data["payload"] = {**data["payload"], "colour": "red"}
        with pytest.raises(ValidationError, match="colour"):
            parse_event(data)

    @pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
    def test_naive_envelope_datetime_is_rejected(self, field: str) -> None:
        """Envelope times without a UTC offset are refused: a naive time is ambiguous across sites."""
        with pytest.raises(ValidationError, match=field):
            parse_event({**example_dict("asset.used"), field: "2024-03-05T10:15:00"})

    def test_naive_payload_datetime_is_rejected(self) -> None:
        """Datetimes inside payloads must be aware too (asset.returned returned_at)."""
        data = example_dict("asset.returned")
        data["payload"] = {**data["payload"], "returned_at": "2024-03-05T10:15:00"}
        with pytest.raises(ValidationError, match="returned_at"):
            parse_event(data)

    def test_events_are_frozen(self) -> None:
        """A published event is a fact: assigning to a field raises."""
        event = example_event("asset.used")
        with pytest.raises(ValidationError):
            event.subject = "AST-2"  # type: ignore[misc]
