"""The record format of `raw.<system>.v1`: archive metadata, with the bytes inline when small.

Keeping small payloads inline lets a translator on another machine work from the log alone;
larger ones are fetched from the archive's blob store by sha256.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from hub.ports import OutRecord, RawRecord

INLINE_TOPIC_LIMIT = 256 * 1024


def encode_raw(record: RawRecord, payload: bytes | None) -> OutRecord:
    body: dict[str, Any] = {
        "raw_ref": record.raw_ref,
        "system": record.system,
        "site": record.site,
        "message_id": record.message_id,
        "sha256": record.sha256,
        "size": record.size,
        "transport": record.transport,
        "received_at": record.received_at.isoformat(),
        "metadata": dict(record.metadata),
    }
    if payload is not None and len(payload) <= INLINE_TOPIC_LIMIT:
        body["payload_b64"] = base64.b64encode(payload).decode()
    else:
        body["blob"] = record.sha256
    return OutRecord(
        key=record.message_id,
        value=json.dumps(body, ensure_ascii=False).encode(),
        headers=(("raw_ref", record.raw_ref.encode()), ("system", record.system.encode())),
        timestamp_ms=int(record.received_at.timestamp() * 1000),
    )


def decode_raw(value: bytes) -> tuple[RawRecord, bytes | None]:
    body = json.loads(value)
    record = RawRecord(
        raw_ref=body["raw_ref"],
        system=body["system"],
        site=body["site"],
        message_id=body["message_id"],
        sha256=body["sha256"],
        size=body["size"],
        transport=body["transport"],
        received_at=datetime.fromisoformat(body["received_at"]),
        metadata=body.get("metadata", {}),
    )
    inline = body.get("payload_b64")
    return record, base64.b64decode(inline) if inline is not None else None
