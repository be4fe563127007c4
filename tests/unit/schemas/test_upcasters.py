"""Stored v1 asset.relocated events, as an old producer wrote them, read as the current v2 model."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from hub.schema_export import event_schema_file
from schemas.assets import AssetRelocated
from schemas.catalogue import EVENT_CLASSES, dump_event, latest_version, parse_event
from schemas.upcasters import upcast

FIXTURE = Path(__file__).parent / "fixtures" / "asset_relocated_v1.json"


def stored_v1() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


class TestStoredV1Relocation:
    def test_fixture_is_v1_with_flat_strings(self) -> None:
        """The fixture really is the old shape, so the tests below exercise the upcaster."""
        data = stored_v1()
        assert data["schema_version"] == 1
        assert {"from_department", "to_department", "location"} <= set(data["payload"])

    def test_parses_as_current_version(self) -> None:
        """parse_event turns the stored v1 bytes into an AssetRelocated at the latest version."""
        event = parse_event(FIXTURE.read_bytes())
        assert isinstance(event, AssetRelocated)
        assert event.schema_version == latest_version("asset.relocated") == 2

    def test_keeps_the_meaning(self) -> None:
        """Departments and place move into LocationRefs with the same names; the rest is unchanged."""
        event = parse_event(FIXTURE.read_bytes())
        assert isinstance(event, AssetRelocated)
        assert event.payload.to.department.name == "急诊科"
        assert event.payload.to.location == "抢救室 3床"
        assert event.payload.from_ is not None
        assert event.payload.from_.department.name == "ICU"
        assert event.payload.reason == "调拨"
        assert event.payload.document_no == "DB-2023-0412"

    def test_keeps_the_envelope(self) -> None:
        """Identity, times and provenance of the stored event are carried over untouched."""
        data = stored_v1()
        event = parse_event(FIXTURE.read_bytes())
        assert str(event.event_id) == data["event_id"]
        assert event.occurred_at == datetime(2023, 11, 2, 1, 30, tzinfo=UTC)
        assert event.source.raw_ref == data["source"]["raw_ref"]
        assert event.subject == data["subject"]
        assert event.correlation_id == data["correlation_id"]

    def test_does_not_rewrite_the_stored_dict(self) -> None:
        """Upcasting reads the old event without modifying it: the log is never rewritten."""
        data = stored_v1()
        before = copy.deepcopy(data)
        parse_event(data)
        assert data == before

    def test_upcast_validates_against_exported_v2_schema(self, schema_of: Any) -> None:
        """The upcast event, serialised, is valid against the published asset.relocated v2 schema."""
        event = parse_event(FIXTURE.read_bytes())
        jsonschema.validate(json.loads(dump_event(event)), schema_of(event_schema_file("asset.relocated")))

    def test_without_origin_has_no_from(self) -> None:
        """A v1 event that did not name the origin department upcasts with `from` unset."""
        data = stored_v1()
        del data["payload"]["from_department"]
        event = parse_event(data)
        assert isinstance(event, AssetRelocated)
        assert event.payload.from_ is None


optional_text = st.none() | st.text(max_size=24)


class TestUpcastProperty:
    @given(
        from_department=optional_text,
        to_department=optional_text,
        location=optional_text,
        reason=optional_text,
        document_no=optional_text,
    )
    def test_any_v1_payload_validates_as_latest(
        self,
        from_department: str | None,
        to_department: str | None,
        location: str | None,
        reason: str | None,
        document_no: str | None,
    ) -> None:
        """Any v1 relocation payload upcasts to a dict valid as the latest model, names kept."""
        data = stored_v1()
        data["payload"] = {
            k: v
            for k, v in {
                "from_department": from_department,
                "to_department": to_department,
                "location": location,
                "reason": reason,
                "document_no": document_no,
            }.items()
            if v is not None
        }
        lifted = upcast(data)
        assert lifted["schema_version"] == latest_version("asset.relocated")
        event = EVENT_CLASSES["asset.relocated"].model_validate(lifted)
        assert isinstance(event, AssetRelocated)
        assert event.payload.to.department.name == (to_department or None)
        assert event.payload.to.location == location
        assert (event.payload.from_ is not None) == bool(from_department)
        assert event.payload.reason == reason
        assert event.payload.document_no == document_no
