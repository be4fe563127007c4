"""Authentication, role checks, department scope and audited reads, as FastAPI dependencies.

The hub's `Security` (built by hub.bootstrap from settings) decides the policy:
- keys required (HUB_AUTH=keys, the default in production): a request without a valid
  `Authorization: Bearer hub_...` (or `X-API-Key: hub_...`) gets 401;
- keys optional (HUB_AUTH=off, demo mode on loopback): a request without a key runs as
  ANONYMOUS (admin); a key that is presented is still checked, so the demo can show roles.

Routers declare what they need with `dependencies=[require(Permission.READ)]` (hub.api.scope,
next to the department scope every data route goes through); routes that serve sensitive data
(raw messages, history, traces) take `AuditDep` and record the read, or the refusal, on the
audit ledger before answering. When the ledger cannot take the record, nothing is served (503).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi import status as http

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI reads the annotation at runtime)
from hub.auth.keys import InvalidKeyError, KeyStore
from hub.auth.roles import ANONYMOUS, Principal
from hub.ports import event_out_record
from schemas.audit import AccessOutcome, AccessPayload, AccessRecorded
from schemas.envelope import Source
from topics.catalogue import topic_for_event_type

if TYPE_CHECKING:
    from hub.ports import EventBus
    from schemas.envelope import EventBase

logger = structlog.get_logger()

AccessLog = Callable[["EventBase"], Awaitable[None]]
"""Durably records one access event (publishes it to audit.access.v1); raises when it cannot."""

ADAPTER_VERSION = "hub-api-1"
MAX_PURPOSE = 500


@dataclass(frozen=True)
class Security:
    """The app's policy: where keys are, whether one is required, where reads are recorded."""

    keys: KeyStore
    access_log: AccessLog
    required: bool = False
    site: str = "main"


def bus_access_log(bus: EventBus, prefix: str = "") -> AccessLog:
    """Access events go to audit.access.v1; `publish` returns once the bus holds them durably."""
    topic = topic_for_event_type(AccessRecorded.model_fields["type"].default).full_name(prefix)

    async def record(event: EventBase) -> None:
        await bus.publish(topic, [event_out_record(event)])

    return record


def get_security(services: ServicesDep) -> Security:
    return services.security


SecurityDep = Annotated[Security, Depends(get_security)]


def _presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization must be 'Bearer hub_<key id>_<secret>'")
        return token.strip()
    return request.headers.get("x-api-key") or None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(http.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def get_principal(request: Request, security: SecurityDep) -> Principal:
    """Who is calling (sync: the key lookup runs in FastAPI's threadpool; once per request)."""
    token = _presented_token(request)
    if token is None:
        if security.required:
            raise _unauthorized("authentication required: send Authorization: Bearer hub_<key id>_<secret>")
        principal = ANONYMOUS
    else:
        try:
            principal = security.keys.authenticate(token)
        except InvalidKeyError as exc:
            logger.warning("api_key_refused", key_id=exc.key_id, reason=exc.reason, path=request.url.path)
            raise _unauthorized(exc.reason) from None
    request.state.principal = principal  # for the access log line (hub.api.access_log)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Audit:
    """Records sensitive reads of one request on the audit ledger."""

    def __init__(self, request: Request, principal: Principal, security: Security) -> None:
        self._request = request
        self._principal = principal
        self._security = security

    async def record(self, action: str, resource: str, outcome: AccessOutcome = "allowed") -> None:
        """Publish the access event; raises HTTP 503 when it cannot be recorded (nothing is served)."""
        log = self._security.access_log
        event = access_event(
            self._request,
            self._principal,
            site=self._security.site,
            action=action,
            resource=resource,
            outcome=outcome,
        )
        try:
            await log(event)
        except Exception as exc:
            logger.exception("access_not_recorded", action=action, key_id=self._principal.key_id)
            raise HTTPException(
                http.HTTP_503_SERVICE_UNAVAILABLE, "the audit ledger is unavailable; nothing was served"
            ) from exc

    async def deny(self, action: str, resource: str, detail: str) -> HTTPException:
        """Record a refused read and return the 403 to raise."""
        await self.record(action, resource, "denied")
        return HTTPException(http.HTTP_403_FORBIDDEN, detail)

    @property
    def principal(self) -> Principal:
        return self._principal


def get_audit(request: Request, principal: PrincipalDep, security: SecurityDep) -> Audit:
    return Audit(request, principal, security)


AuditDep = Annotated[Audit, Depends(get_audit)]


def access_event(
    request: Request, principal: Principal, *, site: str, action: str, resource: str, outcome: AccessOutcome
) -> AccessRecorded:
    """The audit.access_recorded event for one read (or refusal) by `principal`."""
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    # Percent-encoded UTF-8 allowed: purposes are often Chinese and headers are Latin-1.
    purpose = unquote(request.headers.get("x-hub-purpose") or "").strip()[:MAX_PURPOSE] or None
    return AccessRecorded(
        event_id=uuid.uuid4(),
        occurred_at=now,
        recorded_at=now,
        source=Source(system="hub", site=site, message_id=request_id, adapter_version=ADAPTER_VERSION),
        subject=principal.key_id,
        correlation_id=request.headers.get("x-request-id"),
        payload=AccessPayload(
            key_id=principal.key_id,
            role=principal.role.value,
            department=principal.department,
            action=action,
            # A blank or control-character-only resource (/inventory/trace/%0B) is still recorded,
            # escaped: the ledger's resource field may not be empty.
            resource=resource if resource.strip() else repr(resource),
            outcome=outcome,
            method=request.method,
            path=request.url.path,
            client=request.client.host if request.client else None,
            purpose=purpose,
        ),
    )
