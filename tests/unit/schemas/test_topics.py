"""The topic catalogue routes every event type to exactly one topic of the right family."""

from __future__ import annotations

import pytest

from schemas.catalogue import DERIVED_TYPES, EVENT_CLASSES
from topics.catalogue import (
    CANONICAL_TOPICS,
    CATALOGUE,
    DLQ_TOPICS,
    FOREVER,
    RAW_TOPICS,
    topic_for_event_type,
)

EVENT_TYPES = sorted(EVENT_CLASSES)


class TestTopicCatalogue:
    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_event_type_has_exactly_one_topic(self, event_type: str) -> None:
        """Exactly one catalogue topic lists the type, and topic_for_event_type returns that topic."""
        holders = [spec for spec in CATALOGUE if event_type in spec.event_types]
        assert len(holders) == 1
        assert topic_for_event_type(event_type) == holders[0]

    def test_derived_types_only_on_derived_topics(self) -> None:
        """Each derived type is published to a derived.* topic, never to a canonical one."""
        assert DERIVED_TYPES
        for event_type in DERIVED_TYPES:
            assert topic_for_event_type(event_type).name.startswith("derived.")

    def test_derived_topics_hold_only_derived_types(self) -> None:
        """Derived topics carry only derived types, and no other topic carries a derived type."""
        for spec in CATALOGUE:
            if spec.name.startswith("derived."):
                assert spec.event_types <= DERIVED_TYPES
            else:
                assert not spec.event_types & DERIVED_TYPES

    def test_raw_and_dlq_topics_carry_no_events(self) -> None:
        """Raw and dead-letter topics carry records, not canonical events."""
        for spec in (*RAW_TOPICS, *DLQ_TOPICS):
            assert spec.event_types == frozenset()

    def test_canonical_and_raw_topics_keep_everything(self) -> None:
        """Canonical and raw topics have infinite retention and are not compacted: the log is the record."""
        for spec in (*CANONICAL_TOPICS, *RAW_TOPICS):
            assert spec.retention_ms == FOREVER
            assert spec.configs() == {"retention.ms": "-1", "cleanup.policy": "delete"}

    def test_unknown_type_has_no_topic(self) -> None:
        """Asking for the topic of a type outside the catalogue is an error, not a default topic."""
        with pytest.raises(KeyError, match=r"asset\.teleported"):
            topic_for_event_type("asset.teleported")
