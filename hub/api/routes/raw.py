"""GET /raw/{raw_ref}: the exact bytes a vendor system sent, as the raw archive holds them.

The end of an auditor's trail: a figure in a read model -> its event (`hub replay history`, its
`source.raw_ref`) -> these bytes. The body is the archived payload byte for byte
(`application/octet-stream`, never re-encoded); headers say what it is:

- `X-Hub-Raw-System`: the source system (hrp, spd, oa, his, fhir);
- `X-Hub-Raw-Message-Id`: the source's own message id (MSH-10, file name, FHIR id),
  percent-encoded UTF-8 (file names are often Chinese; HTTP headers are Latin-1);
- `X-Hub-Raw-Sha256`: the sha256 recorded when the bytes arrived; the route checks the body
  against it and answers 500 rather than serve bytes that do not match;
- `X-Hub-Raw-Received-At`: when the hub received them (ISO 8601, UTC).

NOT ROLE-CHECKED YET. The hub has no authentication or roles today (the security work is a
separate issue). Raw payloads can hold patient data, so once roles exist this route must be
limited to the roles allowed to see raw messages (auditor, integrator), every read must be
written to the audit ledger, and decryption (HUB_RAW_KEY) must happen only for those roles.
Until then, keep the API on loopback (the default bind) or behind an authenticating proxy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Path, Response
from fastapi import status as http

from hub.errors import ArchiveError
from hub.ports import RawRecord

if TYPE_CHECKING:
    from hub.ports import RawArchive

logger = structlog.get_logger()

RawReader = Callable[[str], Awaitable[tuple[RawRecord, bytes]]]
"""Given a raw reference: its archived record and payload; raises LookupError when unknown."""

MAX_REF_CHARS = 200


def archive_reader(archive: RawArchive) -> RawReader:
    """A RawReader over a RawArchive: an unknown reference raises LookupError (answered 404)."""

    async def read(raw_ref: str) -> tuple[RawRecord, bytes]:
        try:
            record = await archive.get(raw_ref)
        except ArchiveError as exc:  # the archive's "no such raw message"
            raise LookupError(raw_ref) from exc
        return record, await archive.payload(raw_ref)

    return read


def raw_headers(record: RawRecord) -> dict[str, str]:
    """The X-Hub-Raw-* headers (and a download name) describing an archived message."""
    headers = {
        "X-Hub-Raw-System": record.system,
        "X-Hub-Raw-Message-Id": quote(record.message_id, safe=""),
        "X-Hub-Raw-Sha256": record.sha256,
        "X-Hub-Raw-Received-At": record.received_at.astimezone(UTC).isoformat(),
        "Cache-Control": "no-store",  # may hold patient data: no proxy or browser keeps a copy
    }
    filename = record.metadata.get("filename")
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return headers


def build_router(reader: RawReader | None) -> APIRouter:
    """The /raw route over `reader`; without one (no archive in this process) it answers 503."""
    router = APIRouter(tags=["audit"])

    @router.get(
        "/raw/{raw_ref}",
        response_class=Response,
        summary="The raw message exactly as the source system sent it",
        responses={
            http.HTTP_200_OK: {
                "content": {"application/octet-stream": {}},
                "description": "The archived bytes; X-Hub-Raw-* headers describe them",
            },
            http.HTTP_404_NOT_FOUND: {"description": "No raw message with this reference"},
            http.HTTP_500_INTERNAL_SERVER_ERROR: {"description": "The archived bytes fail their sha256"},
            http.HTTP_503_SERVICE_UNAVAILABLE: {"description": "No raw archive in this API process"},
        },
    )
    async def read_raw(
        raw_ref: Annotated[str, Path(max_length=MAX_REF_CHARS, description="e.g. hrp:3f1c...")],
    ) -> Response:
        """The archived payload of `raw_ref`, byte for byte. Not role-checked yet (module docstring)."""
        if reader is None:
            raise HTTPException(http.HTTP_503_SERVICE_UNAVAILABLE, "no raw archive in this API process")
        try:
            record, payload = await reader(raw_ref)
        except LookupError:
            raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}") from None
        except ArchiveError as exc:
            logger.exception("raw_read_failed", raw_ref=raw_ref)
            raise HTTPException(http.HTTP_500_INTERNAL_SERVER_ERROR, "the raw archive failed") from exc
        if hashlib.sha256(payload).hexdigest() != record.sha256:
            logger.error("raw_sha256_mismatch", raw_ref=raw_ref)
            raise HTTPException(
                http.HTTP_500_INTERNAL_SERVER_ERROR, "archived bytes do not match their recorded sha256"
            )
        logger.info("raw_served", raw_ref=raw_ref, system=record.system, size=len(payload))
        return Response(content=payload, media_type="application/octet-stream", headers=raw_headers(record))

    return router
