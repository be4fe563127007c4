"""`/raw/{raw_ref}`: the exact bytes a vendor system sent, as the raw archive holds them.

The end of an auditor's trail: a figure in a read model -> its event (`hub replay history`, its
`source.raw_ref`) -> these bytes. Raw messages can hold patient data, so:

- `GET` needs the raw_payload permission (auditor, admin). Only then is the payload read and,
  when the archive is encrypted (HUB_RAW_KEY), decrypted; the body is the archived payload
  byte for byte (`application/octet-stream`, never re-encoded).
- `HEAD` needs raw_meta (integrator too): the headers below, never the bytes.
- Every attempt, served or refused, is recorded on the audit ledger (`audit.access_recorded`)
  before the answer goes out; when that cannot be recorded the route answers 503.

Headers:
- `X-Hub-Raw-System`: the source system (hrp, spd, oa, his, fhir);
- `X-Hub-Raw-Message-Id`: the source's own message id (MSH-10, file name, FHIR id),
  percent-encoded UTF-8 (file names are often Chinese; HTTP headers are Latin-1);
- `X-Hub-Raw-Sha256`: the sha256 recorded when the bytes arrived; GET checks the body against
  it and answers 500 rather than serve bytes that do not match;
- `X-Hub-Raw-Size`, `X-Hub-Raw-Received-At` (ISO 8601, UTC).
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Path, Response
from fastapi import status as http

from hub.api.security import AuditDep  # noqa: TC001  (FastAPI reads the annotation at runtime)
from hub.auth.roles import Permission
from hub.errors import ArchiveError

if TYPE_CHECKING:
    from hub.ports import RawArchive, RawRecord

logger = structlog.get_logger()

MAX_REF_CHARS = 200


class RawReader(Protocol):
    """What /raw reads: a record's metadata, and (separately, only when allowed) its bytes."""

    async def record(self, raw_ref: str) -> RawRecord:
        """The archived record; raises LookupError for an unknown reference."""
        ...

    async def payload(self, raw_ref: str) -> bytes:
        """The plaintext payload (decrypted if stored encrypted)."""
        ...


class ArchiveRawReader:
    """A RawReader over a RawArchive: an unknown reference raises LookupError (answered 404)."""

    def __init__(self, archive: RawArchive) -> None:
        self._archive = archive

    async def record(self, raw_ref: str) -> RawRecord:
        try:
            return await self._archive.get(raw_ref)
        except ArchiveError as exc:  # the archive's "no such raw message"
            raise LookupError(raw_ref) from exc

    async def payload(self, raw_ref: str) -> bytes:
        return await self._archive.payload(raw_ref)


def archive_reader(archive: RawArchive) -> RawReader:
    return ArchiveRawReader(archive)


def raw_headers(record: RawRecord) -> dict[str, str]:
    """The X-Hub-Raw-* headers (and a download name) describing an archived message."""
    headers = {
        "X-Hub-Raw-System": record.system,
        "X-Hub-Raw-Message-Id": quote(record.message_id, safe=""),
        "X-Hub-Raw-Sha256": record.sha256,
        "X-Hub-Raw-Size": str(record.size),
        "X-Hub-Raw-Received-At": record.received_at.astimezone(UTC).isoformat(),
        "Cache-Control": "no-store",  # may hold patient data: no proxy or browser keeps a copy
    }
    filename = record.metadata.get("filename")
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return headers


RefPath = Annotated[str, Path(max_length=MAX_REF_CHARS, description="e.g. hrp:3f1c...")]


def build_router(reader: RawReader | None) -> APIRouter:
    """The /raw routes over `reader`; without one (no archive in this process) they answer 503."""
    router = APIRouter(tags=["audit"])

    async def gate(audit: AuditDep, raw_ref: str, action: str, permission: Permission) -> RawRecord:
        if reader is None:
            raise HTTPException(http.HTTP_503_SERVICE_UNAVAILABLE, "no raw archive in this API process")
        role = audit.principal.role.value
        if not audit.principal.can(permission):
            raise await audit.deny(action, raw_ref, f"role {role!r} may not read raw messages")
        try:
            record = await reader.record(raw_ref)
        except LookupError:
            raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}") from None
        await audit.record(action, raw_ref)
        return record

    common: dict[int | str, dict[str, Any]] = {
        http.HTTP_401_UNAUTHORIZED: {"description": "No valid API key"},
        http.HTTP_403_FORBIDDEN: {"description": "The key's role may not (recorded on the ledger)"},
        http.HTTP_404_NOT_FOUND: {"description": "No raw message with this reference"},
        http.HTTP_503_SERVICE_UNAVAILABLE: {"description": "No raw archive, or the read cannot be audited"},
    }

    @router.head(
        "/raw/{raw_ref}",
        response_class=Response,
        summary="What a raw message is, without its bytes",
        responses=common,
    )
    async def head_raw(raw_ref: RefPath, audit: AuditDep) -> Response:
        """The X-Hub-Raw-* headers of `raw_ref` (role integrator, auditor or admin)."""
        record = await gate(audit, raw_ref, "raw.head", Permission.RAW_META)
        return Response(media_type="application/octet-stream", headers=raw_headers(record))

    @router.get(
        "/raw/{raw_ref}",
        response_class=Response,
        summary="The raw message exactly as the source system sent it",
        responses={
            http.HTTP_200_OK: {
                "content": {"application/octet-stream": {}},
                "description": "The archived bytes; X-Hub-Raw-* headers describe them",
            },
            http.HTTP_500_INTERNAL_SERVER_ERROR: {"description": "The archived bytes fail their sha256"},
            **common,
        },
    )
    async def read_raw(raw_ref: RefPath, audit: AuditDep) -> Response:
        """The archived payload of `raw_ref`, byte for byte (role auditor or admin; recorded)."""
        record = await gate(audit, raw_ref, "raw.read", Permission.RAW_PAYLOAD)
        assert reader is not None  # noqa: S101  # nosec B101: gate() answered 503 otherwise
        try:
            payload = await reader.payload(raw_ref)
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
