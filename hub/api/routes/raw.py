"""`/raw/{raw_ref}`: the exact bytes a vendor system sent, as the raw archive holds them.

The end of an auditor's trail: a figure in a read model -> its event (`hub replay history`, its
`source.raw_ref`) -> these bytes. Raw messages can hold patient data, so:

- `GET` needs the raw_payload permission (auditor, admin). Only then is the payload read and,
  when the archive is encrypted (HUB_RAW_KEY), decrypted; the body is the archived payload
  byte for byte (`application/octet-stream`, never re-encoded).
- `HEAD` needs raw_meta (integrator too): the headers below, never the bytes.
- Every attempt, served or refused, is recorded on the audit ledger (`audit.access_recorded`)
  before the answer goes out; when that cannot be recorded the route answers 503.
- A department-scoped key sees a raw message only when it is its department's alone (every
  department its events name is the key's; hub.api.scope): anything else, a multi-department
  export or a message the hub cannot place, answers the 404 of an unknown reference (the
  attempt is recorded as denied).

Headers:
- `X-Hub-Raw-System`: the source system (hrp, spd, oa, his, fhir);
- `X-Hub-Raw-Message-Id`: the source's own message id (MSH-10, file name, FHIR id),
  percent-encoded UTF-8 (file names are often Chinese; HTTP headers are Latin-1);
- `X-Hub-Raw-Sha256`: the sha256 recorded when the bytes arrived; GET checks the body against
  it and answers 500 rather than serve bytes that do not match;
- `X-Hub-Raw-Size`, `X-Hub-Raw-Received-At` (ISO 8601, UTC).
- HEAD only, once a file export is translated: `X-Hub-Raw-Fields` (`rows=…; cells=…; claimed=…;
  ignored=…; unclaimed=…`: where the non-empty source cells went) and `X-Hub-Raw-Unclaimed-Columns`
  (`<percent-encoded column>=<cells>, …`, empty when every cell was claimed or ignored).
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Path, Response
from fastapi import status as http

from hub.api.deps import RawReaderDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import ScopeDep  # noqa: TC001
from hub.api.security import AuditDep  # noqa: TC001
from hub.api.services import ArchiveRawReader, RawReader
from hub.auth.roles import Permission
from hub.errors import ArchiveError

if TYPE_CHECKING:
    from hub.ports import MessageStatus, RawArchive, RawRecord

logger = structlog.get_logger()

MAX_REF_CHARS = 200


def archive_reader(archive: RawArchive) -> RawReader:
    return ArchiveRawReader(archive)


def accounting_headers(status: MessageStatus | None) -> dict[str, str]:
    """`X-Hub-Raw-Fields` (claimed/ignored/unclaimed of all non-empty cells) and
    `X-Hub-Raw-Unclaimed-Columns` (each column no field claimed, percent-encoded, `=cells`)."""
    tally = None if status is None else status.accounting
    if not tally:
        return {}
    unclaimed = {str(k): int(v) for k, v in dict(tally.get("unclaimed") or {}).items()}
    return {
        "X-Hub-Raw-Fields": (
            f"rows={tally.get('rows', 0)}; cells={tally.get('cells', 0)}; claimed={tally.get('claimed', 0)};"
            f" ignored={tally.get('ignored', 0)}; unclaimed={sum(unclaimed.values())}"
        ),
        "X-Hub-Raw-Unclaimed-Columns": ", ".join(f"{quote(k, safe='')}={v}" for k, v in unclaimed.items()),
    }


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


__all__ = ["ArchiveRawReader", "RawReader", "archive_reader", "gate_raw", "raw_headers", "router"]

router = APIRouter(tags=["audit"])


async def _gate(
    reader: RawReader, scope: ScopeDep, audit: AuditDep, raw_ref: str, *, action: str, permission: Permission
) -> RawRecord:
    """The record, once the role, the scope and the audit ledger allow it (else 403 / 404 / 503)."""
    role = audit.principal.role.value
    if not audit.principal.can(permission):
        raise await audit.deny(action, raw_ref, f"role {role!r} may not read raw messages")
    not_found = HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}")
    try:
        record = await reader.record(raw_ref)
    except LookupError:
        raise not_found from None
    if not await scope.sees_raw(raw_ref):
        await audit.record(action, raw_ref, "denied")
        raise not_found  # the same answer as an unknown reference: nothing to probe
    await audit.record(action, raw_ref)
    return record


gate_raw = _gate  # the message browser's text view reads raw bytes under the same gate


_COMMON: dict[int | str, dict[str, Any]] = {
    http.HTTP_401_UNAUTHORIZED: {"description": "No valid API key"},
    http.HTTP_403_FORBIDDEN: {"description": "The key's role may not (recorded on the ledger)"},
    http.HTTP_404_NOT_FOUND: {"description": "No raw message with this reference (in the key's scope)"},
    http.HTTP_503_SERVICE_UNAVAILABLE: {"description": "The read cannot be recorded on the audit ledger"},
}


@router.head(
    "/raw/{raw_ref}",
    response_class=Response,
    summary="What a raw message is, without its bytes",
    responses=_COMMON,
)
async def head_raw(raw_ref: RefPath, reader: RawReaderDep, scope: ScopeDep, audit: AuditDep) -> Response:
    """The X-Hub-Raw-* headers of `raw_ref` (role integrator, auditor or admin)."""
    record = await _gate(reader, scope, audit, raw_ref, action="raw.head", permission=Permission.RAW_META)
    headers = raw_headers(record)
    status_of = getattr(reader, "status", None)  # readers over an archive know the status too
    if status_of is not None:
        headers.update(accounting_headers(await status_of(raw_ref)))
    return Response(media_type="application/octet-stream", headers=headers)


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
        **_COMMON,
    },
)
async def read_raw(raw_ref: RefPath, reader: RawReaderDep, scope: ScopeDep, audit: AuditDep) -> Response:
    """The archived payload of `raw_ref`, byte for byte (role auditor or admin; recorded)."""
    record = await _gate(reader, scope, audit, raw_ref, action="raw.read", permission=Permission.RAW_PAYLOAD)
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
