"""Authentication, role checks, department scope and audited reads, as FastAPI dependencies.

`create_app(security=...)` decides the policy:
- keys required (HUB_AUTH=keys, the default in production): a request without a valid
  `Authorization: Bearer hub_...` (or `X-API-Key: hub_...`) gets 401;
- keys optional (HUB_AUTH=off, demo mode on loopback): a request without a key runs as
  ANONYMOUS (admin); a key that is presented is still checked, so the demo can show roles.

Routers declare what they need with `dependencies=[require(Permission.READ)]`; routes that
serve sensitive data (raw messages, history, traces) take `AuditDep` and record the read, or
the refusal, on the audit ledger before answering. No audit log, no sensitive read: such routes
answer 503 rather than serve what nobody would know was read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import unquote

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi import status as http

from hub.auth.keys import InvalidKeyError, KeyStore
from hub.auth.roles import ANONYMOUS, Permission, Principal
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

    keys: KeyStore | None = None
    required: bool = False
    access_log: AccessLog | None = None
    site: str = "main"

    @classmethod
    def open(cls, access_log: AccessLog | None = None, site: str = "main") -> Security:
        """No keys: everyone is ANONYMOUS. For tests and loopback demos."""
        return cls(keys=None, required=False, access_log=access_log, site=site)


def bus_access_log(bus: EventBus, prefix: str = "") -> AccessLog:
    """Access events go to audit.access.v1; `publish` returns once the bus holds them durably."""
    topic = topic_for_event_type(AccessRecorded.model_fields["type"].default).full_name(prefix)

    async def record(event: EventBase) -> None:
        await bus.publish(topic, [event_out_record(event)])

    return record


def get_security(request: Request) -> Security:
    return cast("Security", request.app.state.security)


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


def get_principal(request: Request) -> Principal:
    """Who is calling (sync: the key lookup runs in FastAPI's threadpool)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    security = get_security(request)
    token = _presented_token(request)
    if token is None:
        if security.required:
            raise _unauthorized("authentication required: send Authorization: Bearer hub_<key id>_<secret>")
        principal = ANONYMOUS
    else:
        if security.keys is None:
            raise _unauthorized("this API process has no key store; API keys cannot be checked")
        try:
            principal = security.keys.authenticate(token)
        except InvalidKeyError as exc:
            logger.warning("api_key_refused", key_id=exc.key_id, reason=exc.reason, path=request.url.path)
            raise _unauthorized(exc.reason) from None
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Any:
    """A router/route dependency: 403 unless the caller's role grants `permission`."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            raise HTTPException(
                http.HTTP_403_FORBIDDEN,
                f"role {principal.role.value!r} may not {permission.value.replace('_', ' ')}",
            )
        return principal

    return Depends(check)


def scoped_department(principal: Principal, requested: str | None) -> tuple[str | None, bool]:
    """The department filter a list query should use, and whether it can match anything.

    An unscoped caller filters as asked. A scoped caller always filters by their department;
    asking for another one matches nothing (an empty page, not a 403: scope is not a secret
    to probe).
    """
    if principal.department is None:
        return requested, True
    if requested is not None and requested != principal.department:
        return principal.department, False
    return principal.department, True


class Audit:
    """Records sensitive reads of one request on the audit ledger."""

    def __init__(self, request: Request, principal: Principal, security: Security) -> None:
        self._request = request
        self._principal = principal
        self._security = security

    async def record(self, action: str, resource: str, outcome: AccessOutcome = "allowed") -> None:
        """Publish the access event; raises HTTP 503 when it cannot be recorded (nothing is served)."""
        log = self._security.access_log
        if log is None:
            raise HTTPException(
                http.HTTP_503_SERVICE_UNAVAILABLE,
                "this API process cannot record reads on the audit ledger, so it serves no sensitive data",
            )
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


def get_audit(request: Request, principal: PrincipalDep) -> Audit:
    return Audit(request, principal, get_security(request))


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
            resource=resource,
            outcome=outcome,
            method=request.method,
            path=request.url.path,
            client=request.client.host if request.client else None,
            purpose=purpose,
        ),
    )
