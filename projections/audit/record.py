"""The hash of a bus record exactly as stored: what binds a ledger entry to its log record.

The ledger hashes the *event* (canonical JSON, projections.audit.ledger); a log record holds
more than that, and a reader (history, as-of, rebuild) trusts all of it. So each entry also
keeps `record_hash`, the SHA-256 of this encoding of the record it was applied from (`||` is
byte concatenation, integers big-endian):

    b"hub-record/1" || u64(offset) || i64(timestamp_ms)
      || field(key as UTF-8, or absent) || field(value)
      || u32(number of headers) || for each header, in stored order: field(name as UTF-8) || field(value)

    field(b) = u32(len(b)) || b;   an absent key = u32(0xFFFFFFFF) and no bytes

Why this way: lengths make the encoding unambiguous (no two records share an encoding), the
value and header bytes are hashed exactly as the bus returns them (no JSON re-encoding: a
whitespace or key-order change is a change), and the offset ties the record to its place in the
partition (a record moved or renumbered no longer matches). The topic and partition are not in
it: they name the chain the entry is in. The record timestamp is in it because as-of and history
seek by it.

"As stored" means as the bus hands the record back (hub.ports.BusRecord): the value and header
bytes untouched; the key as text, which on Kafka is the stored bytes decoded as UTF-8 (a key that
is not UTF-8, never written by the hub, is decoded with replacement characters, so two such keys
differing only in their invalid bytes would hash alike).
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.ports import BusRecord

RECORD_FORMAT = b"hub-record/1"
_ABSENT = 0xFFFFFFFF
_U32 = struct.Struct(">I")
_POSITION = struct.Struct(">Qq")


def _field(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def record_digest(record: BusRecord) -> bytes:
    """SHA-256 (32 bytes) of `record` in the encoding above."""
    h = hashlib.sha256(RECORD_FORMAT)
    h.update(_POSITION.pack(record.offset, record.timestamp_ms))
    h.update(_U32.pack(_ABSENT) if record.key is None else _field(record.key.encode("utf-8")))
    h.update(_field(bytes(record.value)))
    h.update(_U32.pack(len(record.headers)))
    for name, value in record.headers:
        h.update(_field(name.encode("utf-8")))
        h.update(_field(bytes(value)))
    return h.digest()
