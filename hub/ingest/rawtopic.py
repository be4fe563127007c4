"""The record format of `raw.<system>.v1`: archive metadata, with the bytes inline when small.

Keeping small payloads inline lets a translator on another machine work from the log alone;
larger ones are fetched from the archive's blob store by sha256. The record is
`schemas.records.RawTopicRecord`, the model `hub schemas export` publishes.
"""

from __future__ import annotations

from hub.ports import OutRecord, RawRecord
from schemas.records import INLINE_PAYLOAD_LIMIT, RawTopicRecord

INLINE_TOPIC_LIMIT = INLINE_PAYLOAD_LIMIT  # the name this module used before the shared model


def encode_raw(record: RawRecord, payload: bytes | None) -> OutRecord:
    """The raw-topic record of an archived message; `payload` is the archived (maybe encrypted) bytes."""
    body = RawTopicRecord.announce(
        payload,
        raw_ref=record.raw_ref,
        system=record.system,
        site=record.site,
        message_id=record.message_id,
        sha256=record.sha256,
        size=record.size,
        transport=record.transport,
        received_at=record.received_at,
        metadata=dict(record.metadata),
    )
    return OutRecord(
        key=record.message_id,
        value=body.model_dump_json(exclude_none=True).encode(),
        headers=(("raw_ref", record.raw_ref.encode()), ("system", record.system.encode())),
        timestamp_ms=int(record.received_at.timestamp() * 1000),
    )


def decode_raw(value: bytes) -> tuple[RawRecord, bytes | None]:
    """A raw-topic record back as the archive's record and its inline bytes (None: fetch the blob)."""
    body = RawTopicRecord.model_validate_json(value)
    record = RawRecord(
        raw_ref=body.raw_ref,
        system=body.system.value,
        site=body.site,
        message_id=body.message_id,
        sha256=body.sha256,
        size=body.size,
        transport=body.transport,
        received_at=body.received_at,
        metadata=body.metadata,
    )
    return record, body.stored_bytes()
