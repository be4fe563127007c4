"""Which reader an OA payload needs, and the size limit checked before any of them runs.

The first significant byte decides between XML (`<`) and JSON (`{`, `[`): it cannot be wrong, unlike
a file name or a webhook's Content-Type. Those only tell JSON Lines from JSON, or name the format
of a payload too broken to sniff, so that the reader's own error message describes it.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING

from adapters.errors import MalformedMessage
from adapters.oa.json_reader import read_json
from adapters.oa.xml_reader import read_xml

if TYPE_CHECKING:
    from adapters.oa.mapping import OaMapping
    from adapters.oa.records import Format, RecordSet

_LEADING = b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n"  # BOM bytes, UTF-16's zero bytes, white space
_JSON_LINES_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)
_SUFFIXES: dict[str, Format] = {".xml": "xml", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_export(payload: bytes, *, filename: str, content_type: str | None, mapping: OaMapping) -> RecordSet:
    """Read an OA export or webhook body into records; MalformedMessage if it cannot be read."""
    limit = mapping.limits.max_bytes
    if len(payload) > limit:
        raise MalformedMessage(
            f"{filename}: {len(payload):,} bytes is over the OA limit of {limit:,} bytes (limits.max_bytes)"
        )
    fmt = detect_format(payload, filename=filename, content_type=content_type)
    if fmt == "xml":
        return read_xml(payload, filename=filename, mapping=mapping)
    return read_json(payload, filename=filename, mapping=mapping, lines=fmt == "jsonl")


def detect_format(payload: bytes, *, filename: str, content_type: str | None) -> Format:
    declared = _declared(filename, content_type)
    head = payload.lstrip(_LEADING)[:1]
    if head == b"<":
        return "xml"
    if head in (b"{", b"["):
        return "jsonl" if declared == "jsonl" else "json"
    if not head:
        raise MalformedMessage(f"{filename}: empty OA export")
    if declared is not None:
        return declared
    raise MalformedMessage(
        f"{filename}: neither JSON nor XML (starts with {payload.lstrip(_LEADING)[:8]!r}); "
        "OA exports are JSON, JSON Lines or XML"
    )


def _declared(filename: str, content_type: str | None) -> Format | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSON_LINES_TYPES:
        return "jsonl"
    if media.endswith(("/xml", "+xml")):
        return "xml"
    if media.endswith(("/json", "+json")):
        return "json"
    return _SUFFIXES.get(PurePath(filename).suffix.lower())
