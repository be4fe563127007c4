"""Reading a FHIR request body: its media type, its size, and its JSON or XML into a `Body`.

A `Body` is one resource not yet validated. JSON is parsed once; XML is kept as its element and
converted per release on demand (which elements repeat depends on the release's models). JSON
is parsed strictly: UTF-8, decimals kept exact, duplicate keys and NaN refused (FHIR JSON forbids
both), nesting bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from adapters.fhir.errors import FhirRejected
from adapters.fhir.issues import Issue
from adapters.fhir.versions import version_from_parameter
from adapters.fhir.xml import parse_xml, resource_to_json, split_tag

if TYPE_CHECKING:
    from collections.abc import Iterator

    # A type only: every parse goes through defusedxml.
    from xml.etree.ElementTree import Element  # nosec B405

    from adapters.fhir.mapping import Limits
    from adapters.fhir.versions import FhirVersion

Format = Literal["json", "xml"]

_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir", "text/json"})
_XML_TYPES = frozenset({"application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml"})
_PARAMETER = re.compile(r"""\s*([A-Za-z][A-Za-z0-9_.-]*)\s*=\s*("[^"]*"|[^;]*)\s*""")
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


@dataclass(frozen=True, slots=True)
class MediaType:
    """What the Content-Type (or, without one, the first byte) says: format and declared release."""

    format: Format
    version: FhirVersion | None = None


class Body(Protocol):
    """One resource as sent, before validation."""

    @property
    def resource_type(self) -> str: ...

    def data(self, version: FhirVersion) -> dict[str, Any]:
        """The resource as FHIR JSON, read with `version`'s models where that matters (XML)."""
        ...


@dataclass(frozen=True, slots=True)
class JsonBody:
    resource_type: str
    value: dict[str, Any]

    def data(self, version: FhirVersion) -> dict[str, Any]:  # noqa: ARG002 - JSON is the same in every release
        return self.value


@dataclass(frozen=True, slots=True)
class XmlBody:
    resource_type: str
    element: Element

    def data(self, version: FhirVersion) -> dict[str, Any]:
        return resource_to_json(self.element, version)


def media_type(content_type: str | None, payload: bytes) -> MediaType:
    """Parse a Content-Type such as `application/fhir+json; fhirVersion=4.3`; sniff when absent."""
    if not content_type or not content_type.strip():
        return MediaType(_sniff(payload))
    essence, _, rest = content_type.partition(";")
    essence = essence.strip().lower()
    if essence in _JSON_TYPES:
        fmt: Format = "json"
    elif essence in _XML_TYPES:
        fmt = "xml"
    else:
        raise FhirRejected(
            "unsupported_format",
            [
                Issue(
                    "not-supported",
                    None,
                    f"Content-Type {essence!r} is not FHIR; send application/fhir+json "
                    "or application/fhir+xml",
                )
            ],
        )
    version: FhirVersion | None = None
    for name, value in _parameters(rest):
        if name == "charset" and value.lower() not in {"utf-8", "utf8"}:
            raise FhirRejected(
                "unsupported_format",
                [Issue("not-supported", None, f"charset {value!r}: FHIR bodies are UTF-8")],
            )
        if name == "fhirversion":
            version = version_from_parameter(value)
            if version is None:
                raise FhirRejected(
                    "unsupported_format",
                    [
                        Issue(
                            "not-supported",
                            None,
                            f"fhirVersion {value!r} is not supported; send R4/R4B "
                            "(fhirVersion=4.0 or 4.3) or R5 (fhirVersion=5.0)",
                        )
                    ],
                )
    return MediaType(fmt, version)


def read_body(payload: bytes, media: MediaType, limits: Limits) -> Body:
    """The body as one resource; FhirRejected when it is too large, unsafe or unreadable."""
    if len(payload) > limits.max_bytes:
        raise FhirRejected(
            "too_large",
            [
                Issue(
                    "too-long", None, f"the body is {len(payload):,} bytes; the limit is {limits.max_bytes:,}"
                )
            ],
        )
    if media.format == "xml":
        root = parse_xml(payload, max_depth=limits.max_depth)
        _, name = split_tag(root.tag)
        return XmlBody(resource_type=name, element=root)
    value = _read_json(payload, limits.max_depth)
    kind = value.get("resourceType")
    if not isinstance(kind, str) or not _RESOURCE_TYPE.match(kind):
        raise FhirRejected(
            "invalid", [Issue("required", "resourceType", "a FHIR resource needs a resourceType")]
        )
    return JsonBody(resource_type=kind, value=value)


def _read_json(payload: bytes, max_depth: int) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid(f"FHIR JSON is UTF-8; byte offset {exc.start} is not") from exc
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=_integer,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise _invalid(f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    except _JsonRefused as exc:
        raise _invalid(str(exc)) from exc
    except RecursionError as exc:
        raise _too_deep(max_depth) from exc
    if not isinstance(value, dict):
        raise _invalid(f"a FHIR resource is a JSON object, not {type(value).__name__}")
    if _json_depth(value) > max_depth:
        raise _too_deep(max_depth)
    return value


class _JsonRefused(ValueError):
    """JSON that parses but is not FHIR JSON (a duplicate key, NaN)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonRefused(f"the JSON object holds the key {key!r} twice; FHIR JSON forbids that")
        out[key] = value
    return out


def _integer(digits: str) -> int:
    try:
        return int(digits)
    except ValueError as exc:  # past sys.get_int_max_str_digits() (4300): a bare ValueError
        raise _JsonRefused(f"an integer of {len(digits):,} digits is beyond every FHIR integer type") from exc


def _refuse_constant(name: str) -> Any:
    raise _JsonRefused(f"{name} is not a JSON number; FHIR JSON forbids it")


def _json_depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return deepest


def _parameters(text: str) -> Iterator[tuple[str, str]]:
    for part in text.split(";"):
        match = _PARAMETER.fullmatch(part)
        if match:
            yield match[1].lower(), match[2].strip().strip('"')


def _sniff(payload: bytes) -> Format:
    start = payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "xml" if start == b"<" else "json"


def _too_deep(max_depth: int) -> FhirRejected:
    return FhirRejected(
        "too_large", [Issue("too-long", None, f"the JSON nests deeper than {max_depth} levels")]
    )


def _invalid(reason: str) -> FhirRejected:
    return FhirRejected("invalid", [Issue("invalid", None, reason)])
