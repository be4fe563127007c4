"""How a FHIR answer goes on the wire: which release (R5 default, R4B on request), JSON or XML.

Negotiation (FHIR R5 http.html#mime-type): `_format` wins over `Accept`. `_format` takes `json`,
`xml` or a media type; a media type may carry `fhirVersion` (`application/fhir+json;
fhirVersion=4.3`): 4.0/4.3 answer R4B, 5.0 R5 (adapters.fhir.versions). An Accept of anything
else (a browser's `text/html`) gets JSON; an unknown `_format` or fhirVersion is 406.

Every resource is validated with fhir.resources in the chosen release before it leaves (a mapping
bug is a 500 in the tests, never invalid FHIR on the wire). Reads carry `ETag: W/"<versionId>"`
(a digest of the content: it changes exactly when the answer does) and `Last-Modified`;
`If-None-Match` with the current tag answers 304.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import Response

from adapters.fhir.versions import FhirVersion, model_class, version_from_parameter

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
_JSON_NAMES = frozenset({"json", "application/json", FHIR_JSON, "application/json+fhir"})
_XML_NAMES = frozenset({"xml", "text/xml", "application/xml", FHIR_XML, "application/xml+fhir"})
FHIR_VERSIONS: dict[FhirVersion, str] = {"R5": "5.0.0", "R4B": "4.3.0"}


class FhirError(HTTPException):
    """An HTTP error a FHIR client gets as an OperationOutcome with `code`, naming `expression`."""

    def __init__(self, status: int, code: str, detail: str, expression: str | None = None) -> None:
        super().__init__(status, detail)
        self.code = code
        self.expression = expression


@dataclass(frozen=True, slots=True)
class Wire:
    """What the client asked for: the release and the format."""

    version: FhirVersion = "R5"
    xml: bool = False

    @property
    def media_type(self) -> str:
        base = FHIR_XML if self.xml else FHIR_JSON
        return f"{base}; fhirVersion={FHIR_VERSIONS[self.version][:3]}"

    def require(self, resource_type: str) -> None:
        """406 for a resource type the release does not have (InventoryItem in R4B)."""
        if model_class(self.version, resource_type) is None:
            raise FhirError(
                406,
                "not-supported",
                f"{resource_type} does not exist in FHIR {self.version}: ask for R5 (fhirVersion=5.0)",
                "fhirVersion",
            )

    def body(self, resource: dict[str, Any]) -> bytes:
        """`resource` validated in this release and serialised (JSON or XML)."""
        cls = model_class(self.version, resource["resourceType"])
        if cls is None:  # a mapping bug: the facade serves only types the release has (require)
            raise FhirError(500, "exception", f"{resource['resourceType']} has no {self.version} model")
        model = cls.model_validate(resource)
        if self.xml:
            return bytes(model.model_dump_xml())
        dumped = model.model_dump(mode="json", exclude_none=True)
        return json.dumps(dumped, ensure_ascii=False, separators=(",", ":")).encode()

    def respond(
        self, resource: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(self.body(resource), status_code=status, media_type=self.media_type, headers=headers)


def _media(text: str) -> tuple[str, FhirVersion | None, bool]:
    """(media type, release asked for, whether the fhirVersion parameter was understood)."""
    media, *params = (part.strip() for part in text.split(";"))
    media = media.replace(" ", "+")  # `_format=application/fhir+json` sent unencoded: + reads as a space
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "fhirversion":
            version = version_from_parameter(value.strip().strip('"'))
            return media.lower(), version, version is not None
    return media.lower(), None, True


def negotiate(request: Request, format_: str | None) -> Wire:
    """The Wire a request asks for (`format_` is its `_format`); FhirError 406 when unsupported."""
    if format_:
        media, version, understood = _media(format_)
        if media not in _JSON_NAMES | _XML_NAMES or not understood:
            raise FhirError(
                406, "not-supported", f"_format={format_!r}: json, xml or a FHIR media type", "_format"
            )
        accept_version = _accept(request.headers.get("accept", ""))[0]
        return Wire(version=version or accept_version or "R5", xml=media in _XML_NAMES)
    version, xml = _accept(request.headers.get("accept", ""))
    return Wire(version=version or "R5", xml=xml)


def _accept(header: str) -> tuple[FhirVersion | None, bool]:
    """The release and format of the first FHIR-capable media range of an Accept header."""
    for part in header.split(","):
        if not part.strip():
            continue
        media, version, understood = _media(part)
        if media in _JSON_NAMES | _XML_NAMES or media in {"*/*", "application/*"}:
            if not understood:
                raise FhirError(
                    406, "not-supported", f"Accept {part.strip()!r}: fhirVersion 4.3 or 5.0", "fhirVersion"
                )
            return version, media in _XML_NAMES
    return None, False


def get_wire(
    request: Request,
    format_: Annotated[
        str | None,
        Query(alias="_format", description="json | xml | a FHIR media type (fhirVersion=4.3: R4B)"),
    ] = None,
) -> Wire:
    return negotiate(request, format_)


WireDep = Annotated[Wire, Depends(get_wire)]


def version_id(resource: dict[str, Any]) -> str:
    """A digest of the resource without its meta: the same content, the same version id."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read(
    request: Request, wire: Wire, resource: dict[str, Any], modified: datetime | None = None
) -> Response:
    """A read's answer: meta.versionId, ETag, Last-Modified; 304 when If-None-Match has the tag.

    `modified` defaults to the resource's meta.lastUpdated.
    """
    if modified is None and resource.get("meta", {}).get("lastUpdated"):
        modified = datetime.fromisoformat(resource["meta"]["lastUpdated"])
    vid = version_id(resource)
    meta = {**resource.get("meta", {}), "versionId": vid}
    resource = {**resource, "meta": meta}
    tag = f'W/"{vid}"'
    headers = {"ETag": tag}
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
    asked = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    if tag in asked or tag.removeprefix("W/") in asked or "*" in asked:
        return Response(status_code=304, headers=headers)
    return wire.respond(resource, headers=headers)
