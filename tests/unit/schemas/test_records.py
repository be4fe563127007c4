"""Raw-topic and dead-letter records: the models, and the exported schemas that describe them."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.records import INLINE_PAYLOAD_LIMIT, DeadLetterRecord, Failure, RawTopicRecord, SourceLocation

RECEIVED = datetime(2024, 3, 5, 2, 16, 1, tzinfo=UTC)
HL7 = b"MSH|^~\\&|HIS|H01|HUB|H01|20240305101600||ADT^A01|MSG0001|P|2.5\rPID|1||TOKEN\r"


def raw_record(payload: bytes) -> RawTopicRecord:
    return RawTopicRecord.for_payload(
        payload,
        raw_ref="raw:his:0001",
        system="his",
        site="main",
        message_id="MSG0001",
        transport="mllp",
        received_at=RECEIVED,
        metadata={"peer": "10.0.0.8"},
    )


def dead_letter_fields() -> dict[str, Any]:
    return {
        "dead_letter_id": "dl-1",
        "raw_ref": "raw:hrp:0002",
        "system": "hrp",
        "message_id": "zcdb-20240305.csv",
        "position": "line:18",
        "reason": "department code not in the code map",
        "code": "mapping.unknown_department",
        "location": SourceLocation(
            file="zcdb-20240305.csv", line=18, column="使用科室", column_index=4, field="department"
        ),
        "adapter_version": "hrp-1",
        "mapping_version": "sha256:9a1c",
        "failed_at": RECEIVED,
    }


def dead_letter(**overrides: Any) -> DeadLetterRecord:
    return DeadLetterRecord.model_validate({**dead_letter_fields(), **overrides})


def wire(model: RawTopicRecord | DeadLetterRecord, *, exclude_none: bool = False) -> Any:
    return json.loads(model.model_dump_json(exclude_none=exclude_none))


class TestRawTopicRecord:
    def test_small_payload_rides_inline(self) -> None:
        """A payload within the limit is carried as base64 with its sha256 and size, and no blob."""
        record = raw_record(HL7)
        assert record.payload_b64 is not None
        assert base64.b64decode(record.payload_b64) == HL7
        assert record.blob is None
        assert record.sha256 == hashlib.sha256(HL7).hexdigest()
        assert record.size == len(HL7)

    def test_payload_at_limit_is_inline(self) -> None:
        """Exactly 256 KiB is still inline."""
        assert raw_record(b"x" * INLINE_PAYLOAD_LIMIT).payload_b64 is not None

    def test_large_payload_points_at_blob(self) -> None:
        """One byte over the limit: the record carries the blob hash instead of the bytes."""
        payload = b"x" * (INLINE_PAYLOAD_LIMIT + 1)
        record = raw_record(payload)
        assert record.payload_b64 is None
        assert record.blob == hashlib.sha256(payload).hexdigest()

    def test_both_or_neither_is_rejected(self) -> None:
        """A record must carry either the bytes or the blob reference, not both and not neither."""
        fields = wire(raw_record(HL7))
        with pytest.raises(ValidationError, match="exactly one"):
            RawTopicRecord.model_validate({**fields, "blob": fields["sha256"]})
        with pytest.raises(ValidationError, match="exactly one"):
            RawTopicRecord.model_validate({**fields, "payload_b64": None})

    def test_inline_over_limit_is_rejected(self) -> None:
        """A producer may not inline a payload larger than the limit."""
        fields = wire(raw_record(HL7))
        with pytest.raises(ValidationError, match="blob store"):
            RawTopicRecord.model_validate({**fields, "size": INLINE_PAYLOAD_LIMIT + 1})

    def test_naive_received_at_is_rejected(self) -> None:
        """received_at must carry an offset."""
        fields = wire(raw_record(HL7))
        with pytest.raises(ValidationError, match="received_at"):
            RawTopicRecord.model_validate({**fields, "received_at": "2024-03-05T10:16:01"})

    @pytest.mark.parametrize("exclude_none", [False, True])
    @pytest.mark.parametrize("size", [10, INLINE_PAYLOAD_LIMIT + 1])
    def test_schema_accepts_real_records(self, size: int, exclude_none: bool, schema_of: Any) -> None:
        """Inline and blob records, with absent or null optional fields, validate against the schema."""
        record = raw_record(b"y" * size)
        jsonschema.validate(wire(record, exclude_none=exclude_none), schema_of("raw_record.v1.schema.json"))

    def test_schema_rejects_both_payload_and_blob(self, schema_of: Any) -> None:
        """The schema states the inline-xor-blob rule too, for readers without the model."""
        fields = wire(raw_record(HL7))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**fields, "blob": fields["sha256"]}, schema_of("raw_record.v1.schema.json"))

    @given(payload=st.binary(max_size=2048))
    def test_json_round_trip(self, payload: bytes) -> None:
        """Any payload survives record -> JSON -> record -> bytes."""
        record = raw_record(payload)
        back = RawTopicRecord.model_validate_json(record.model_dump_json())
        assert back == record
        assert back.payload_b64 is not None
        assert base64.b64decode(back.payload_b64) == payload


class TestDeadLetterRecord:
    def test_round_trips_through_json(self) -> None:
        """A dead letter read back from JSON equals the one written."""
        record = dead_letter()
        assert DeadLetterRecord.model_validate_json(record.model_dump_json()) == record

    def test_location_defaults_to_empty(self) -> None:
        """A failure with no known location still makes a valid record."""
        fields = dead_letter_fields()
        del fields["location"]
        assert DeadLetterRecord.model_validate(fields).location == SourceLocation()

    def test_unknown_field_is_rejected(self) -> None:
        """A dead letter with an undeclared field (say, the offending value) is refused."""
        with pytest.raises(ValidationError, match="value"):
            dead_letter(value="张三")

    def test_naive_failed_at_is_rejected(self) -> None:
        """failed_at must carry an offset."""
        with pytest.raises(ValidationError, match="failed_at"):
            dead_letter(failed_at="2024-03-05T10:16:01")

    @pytest.mark.parametrize("exclude_none", [False, True])
    def test_schema_accepts_real_records(self, exclude_none: bool, schema_of: Any) -> None:
        """A dead letter, with null or absent optional fields, validates against the exported schema."""
        record = dead_letter(position="PV1[2]")
        jsonschema.validate(wire(record, exclude_none=exclude_none), schema_of("dead_letter.v1.schema.json"))

    def test_schema_rejects_unknown_location_field(self, schema_of: Any) -> None:
        """The exported schema refuses extra keys inside location, as the model does."""
        fields = wire(dead_letter())
        fields["location"] = {**fields["location"], "value": "张三"}
        with pytest.raises(jsonschema.ValidationError, match="value"):
            jsonschema.validate(fields, schema_of("dead_letter.v1.schema.json"))

    def test_location_column_is_the_title_the_file_uses(self, schema_of: Any) -> None:
        """What the file adapters put in `location.column` (a header title) validates; its number
        goes in `column_index`."""
        fields = wire(dead_letter(location={"file": "a.csv", "line": 3, "column": "原值"}))
        jsonschema.validate(fields, schema_of("dead_letter.v1.schema.json"))
        fields["location"]["column_index"] = "3"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(fields, schema_of("dead_letter.v1.schema.json"))

    def test_numbered_column_of_the_first_schema_is_read_as_index(self) -> None:
        """A record written under the first schema (`column` a number) still reads: as the index."""
        old = dead_letter_fields() | {"location": {"file": "a.csv", "line": 3, "column": 4}}
        assert DeadLetterRecord.model_validate(old).location == SourceLocation(
            file="a.csv", line=3, column_index=4
        )

    def test_location_on_the_wire_has_only_what_is_known(self) -> None:
        """Unknown parts of a location are left out of the JSON rather than sent as nulls."""
        assert wire(dead_letter(location=SourceLocation(segment="MSH")))["location"] == {"segment": "MSH"}

    def test_is_the_wire_form_of_a_failure_without_its_excerpt(self) -> None:
        """A Failure becomes a dead letter with the same position, reason, code and location; the
        excerpt (source values) is not carried."""
        failure = Failure(
            "line:7",
            "原值 is not an amount",
            "invalid_value",
            SourceLocation(file="a.csv", line=7),
            {"原值": "x"},
        )
        record = DeadLetterRecord.of(
            failure,
            dead_letter_id="dl-7",
            raw_ref="hrp:abc",
            system="hrp",
            message_id="a.csv",
            adapter_version="hrp/1",
            mapping_version=None,
            failed_at=RECEIVED,
        )
        assert (record.position, record.reason, record.code, record.location) == (
            failure.position,
            failure.reason,
            failure.code,
            failure.location,
        )
        assert "x" not in record.model_dump_json()
