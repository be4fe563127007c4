"""The records that travel beside the canonical events: raw messages and dead letters.

One model per record type, used by the producers (the relay publishing `raw.<system>.v1`, the
translation worker publishing `dlq.<system>.v1`) and by `hub schemas export`, so what the hub
publishes and what it promises are the same thing.

`Failure` is the one type for "a unit (row, segment, entry, message) could not be translated":
adapters return it inside a Translation, and a `DeadLetterRecord` is its wire form (plus where the
unit came from, and without the excerpt, which may quote patient data).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime  # noqa: TC003  (pydantic resolves the annotations at runtime)
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)
from pydantic.dataclasses import dataclass

from schemas._base import HubModel, SourceSystem

# Raw payloads up to this size ride inline (base64) on raw.* topics; larger ones are referenced by
# their blob hash, so one bulky export file never exceeds the broker's message size limit.
INLINE_PAYLOAD_LIMIT = 256 * 1024

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Identifiers and texts exactly as produced: a record read back must equal the one written, so
# nothing is stripped (a file named " a.csv" keeps its space).
Text = Annotated[str, StringConstraints(min_length=1)]

_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, config=_STRICT)
class SourceLocation:
    """Where in the source a unit or value sits: enough for a person to open the file and find it.

    Never holds the offending value (it may be patient data). `column` is the column as the file
    names it (a CSV/XLSX header title, a JSON key); `column_index` its 1-based position when known.
    """

    file: str | None = None
    line: int | None = Field(default=None, ge=1)
    column: str | None = Field(default=None, description="Column title (or key) as the file writes it.")
    column_index: int | None = Field(default=None, ge=1, description="1-based column number.")
    field: str | None = Field(default=None, description="Canonical field, HL7 field (PV1-3) or FHIR path.")
    segment: str | None = Field(default=None, description="HL7 segment id, e.g. PV1.")

    @model_validator(mode="before")
    @classmethod
    def _numbered_column(cls, data: Any) -> Any:
        # The first published schema declared `column` an integer: read such a record's number
        # as the column index, so every record ever written stays readable.
        if isinstance(data, dict) and isinstance(data.get("column"), int) and "column_index" not in data:
            return {**data, "column": None, "column_index": data["column"]}
        return data

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Only what is known: a location is read by people, and unset parts are noise.
        return {k: v for k, v in handler(self).items() if v is not None}

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.segment:
            parts.append(f"segment {self.segment}")
        if self.column:
            parts.append(f"column {self.column}")
        elif self.column_index is not None:
            parts.append(f"column {self.column_index}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts) or "(whole message)"

    def as_dict(self) -> dict[str, Any]:
        """The known parts only, as JSON-ready values."""
        return {
            k: v
            for k, v in {
                "file": self.file,
                "line": self.line,
                "column": self.column,
                "column_index": self.column_index,
                "field": self.field,
                "segment": self.segment,
            }.items()
            if v is not None
        }


@dataclass(frozen=True, slots=True, config=_STRICT)
class Failure:
    """One unit (row, segment, entry, or the whole `message`) that could not be translated, and why.

    `position` is stable within the message (e.g. `line:12`) so a retry can tell which unit it is.
    `reason` is for people, `code` for machines. `excerpt` holds the source values of the unit for
    people fixing a mapping; adapters that can carry patient data leave it empty, and it never
    leaves the hub's own store (the dead-letter record has no excerpt).
    """

    position: str
    reason: str
    code: str
    location: SourceLocation
    excerpt: dict[str, str] | None = None


class RawTopicRecord(HubModel):
    """One archived inbound message as announced on `raw.<system>.v1` (JSON, key = message_id).

    Exactly one of `payload_b64` (the bytes, when at most 256 KiB) or `blob` (the sha256 of the
    bytes in the content-addressed blob store, when larger) is set. `sha256` and `size` describe the
    bytes as received; where the hub encrypts its archive (HUB_RAW_KEY), `payload_b64` carries the
    encrypted form, readable by the hub only. Payloads can hold patient data: readers of raw topics
    need the same clearance as readers of the archive.
    """

    raw_ref: Text
    system: SourceSystem
    site: Text
    message_id: Text
    sha256: Sha256Hex
    size: int = Field(ge=0)
    transport: Text = Field(description="How the bytes arrived: file, http, mllp, cli.")
    received_at: AwareDatetime
    metadata: dict[str, str] = Field(default_factory=dict)
    payload_b64: str | None = Field(default=None, description="Base64 of the archived bytes, when inline.")
    blob: Sha256Hex | None = Field(default=None, description="sha256 of the blob, when not inline.")

    # Merged with HubModel's config (frozen, extra=forbid). The oneOf states the inline-xor-blob
    # rule for readers that only have the JSON Schema.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["payload_b64"], "properties": {"payload_b64": {"type": "string"}}},
                {"required": ["blob"], "properties": {"blob": {"type": "string"}}},
            ]
        }
    )

    @model_validator(mode="after")
    def _inline_xor_blob(self) -> Self:
        if (self.payload_b64 is None) == (self.blob is None):
            raise ValueError("exactly one of payload_b64 and blob must be set")
        if self.payload_b64 is not None and self.size > INLINE_PAYLOAD_LIMIT:
            raise ValueError(f"payloads over {INLINE_PAYLOAD_LIMIT} bytes go to the blob store")
        return self

    @classmethod
    def for_payload(
        cls,
        payload: bytes,
        *,
        raw_ref: str,
        system: SourceSystem | str,
        site: str,
        message_id: str,
        transport: str,
        received_at: datetime,
        metadata: dict[str, str] | None = None,
    ) -> RawTopicRecord:
        """Build the record for `payload` (stored as received): inline when small, else its blob."""
        digest = hashlib.sha256(payload).hexdigest()
        return cls.announce(
            payload if len(payload) <= INLINE_PAYLOAD_LIMIT else None,
            raw_ref=raw_ref,
            system=system,
            site=site,
            message_id=message_id,
            sha256=digest,
            size=len(payload),
            transport=transport,
            received_at=received_at,
            metadata=metadata,
        )

    @classmethod
    def announce(
        cls,
        stored: bytes | None,
        *,
        raw_ref: str,
        system: SourceSystem | str,
        site: str,
        message_id: str,
        sha256: str,
        size: int,
        transport: str,
        received_at: datetime,
        metadata: dict[str, str] | None = None,
    ) -> RawTopicRecord:
        """The record for an archived message: `stored` (the archived, maybe encrypted, bytes) rides
        inline when given and small enough, else readers fetch the blob by `sha256`."""
        inline = stored is not None and len(stored) <= INLINE_PAYLOAD_LIMIT and size <= INLINE_PAYLOAD_LIMIT
        return cls(
            raw_ref=raw_ref,
            system=SourceSystem(system),
            site=site,
            message_id=message_id,
            sha256=sha256,
            size=size,
            transport=transport,
            received_at=received_at,
            metadata=metadata or {},
            payload_b64=base64.b64encode(stored).decode("ascii") if inline and stored is not None else None,
            blob=None if inline else sha256,
        )

    def stored_bytes(self) -> bytes | None:
        """The inline payload as bytes (as archived), or None when it lives in the blob store."""
        return base64.b64decode(self.payload_b64) if self.payload_b64 is not None else None


class DeadLetterRecord(HubModel):
    """A unit that could not be translated, on `dlq.<system>.v1` (key = message_id): a `Failure`
    with the message it belongs to.

    `reason` is for people and `code` for machines; neither may quote patient data. The raw bytes
    stay in the archive under `raw_ref`, so a fixed mapping can re-run the failure. The id is
    deterministic (raw ref + position): translating the message again updates the same letter.
    """

    dead_letter_id: Text
    raw_ref: Text
    system: SourceSystem
    message_id: Text
    position: Text = Field(
        description="The unit within the message: `line:12`, `entry:3`, `PV1[2]`, or `message`."
    )
    reason: Text
    code: Text
    location: SourceLocation = Field(default_factory=SourceLocation)
    adapter_version: Text
    mapping_version: str | None = None
    failed_at: AwareDatetime
    kind: Literal["failure", "note"] = Field(
        "failure",
        description=(
            "`failure`: the unit was not applied. `note`: the unit was applied with a field left "
            "unknown (e.g. a department code the mapping does not know); a retry after the mapping "
            "is fixed publishes its correction"
        ),
    )

    @classmethod
    def of(
        cls,
        failure: Failure,
        *,
        dead_letter_id: str,
        raw_ref: str,
        system: SourceSystem | str,
        message_id: str,
        adapter_version: str,
        mapping_version: str | None,
        failed_at: datetime,
        kind: Literal["failure", "note"] = "failure",
    ) -> Self:
        """The dead letter of `failure` (its excerpt stays behind)."""
        return cls(
            dead_letter_id=dead_letter_id,
            raw_ref=raw_ref,
            system=SourceSystem(system),
            message_id=message_id,
            position=failure.position,
            reason=failure.reason,
            code=failure.code,
            location=failure.location,
            adapter_version=adapter_version,
            mapping_version=mapping_version,
            failed_at=failed_at,
            kind=kind,
        )
