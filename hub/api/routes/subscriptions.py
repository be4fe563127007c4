"""`/subscriptions`: webhook subscriptions for downstream applications (hub.delivery.webhooks delivers them).

    POST   /subscriptions        {url, topics?, types?, description?} -> 201, with the signing secret (once)
    GET    /subscriptions        the caller's subscriptions (admin: all), with their delivery state
    GET    /subscriptions/{id}   one, with its delivery state
    PATCH  /subscriptions/{id}   {status: paused | active} and/or {description}
    DELETE /subscriptions/{id}   stop delivering for good (204); the secret is forgotten

A subscription starts at the end of the log when it is created (its start offsets are stored
with it): it receives what is published from then on, never the past. `topics` are catalogue
names (canonical and derived, as /events/stream); without them, every topic that carries one
of the `types` (exact, or `asset.*` prefixes), or every topic when no types are given either.

Needs the subscribe permission (app, integrator, admin) and the whole hospital: department-scoped
keys get 403 (hub.api.scope.whole_hospital), as for /events/stream. A key sees and manages the
subscriptions it created; admin sees all (others answer 404). Creating one is recorded on the
audit ledger, like opening a stream.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.api.deps import BusDep, ServicesDep, SubscriptionsDep  # noqa: TC001  (read at runtime)
from hub.api.scope import ScopeDep, whole_hospital
from hub.api.security import AuditDep  # noqa: TC001
from hub.auth.roles import Principal, Role
from hub.delivery.webhooks import Subscription, TypeFilter, new_subscription_id
from topics.catalogue import CANONICAL_TOPICS, DERIVED_TOPICS

if TYPE_CHECKING:
    from hub.ports import EventBus
    from topics.catalogue import TopicSpec

router = APIRouter(
    prefix="/subscriptions", tags=["webhooks"], dependencies=[whole_hospital("webhook subscriptions")]
)

SUBSCRIBABLE: dict[str, TopicSpec] = {spec.name: spec for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS)}
MAX_URL = 2000
MAX_FILTERS = 100
UNPROCESSABLE = 422  # starlette renamed its constant; the number is the contract
SubscriptionId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


TopicName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=249)]
TypeFilterText = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]*\*?$", max_length=100)]


class SubscriptionIn(BaseModel):
    """A new subscription. Events are POSTed to `url` as their canonical JSON, signed."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=MAX_URL,
        pattern=r"^\s*https?://[^\s/?#@]+",
        description="http:// or https:// URL that receives the POSTs",
    )
    topics: list[TopicName] | None = Field(
        default=None, max_length=MAX_FILTERS, description="Catalogue topics"
    )
    types: list[TypeFilterText] | None = Field(
        default=None, max_length=MAX_FILTERS, description="Event types, or prefixes such as asset.*"
    )
    description: str = Field(default="", max_length=500)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused"] | None = None
    description: str | None = Field(default=None, max_length=500)


class DeliveryOut(BaseModel):
    """Where delivery stands: a growing `consecutive_failures` means the receiver keeps failing."""

    last_event_id: str | None
    last_delivered_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_attempt_at: datetime | None


class SubscriptionOut(BaseModel):
    id: str
    url: str
    topics: list[str]
    types: list[str]
    description: str
    status: Literal["active", "paused", "deleted"]
    created_by: str
    created_at: datetime
    status_changed_at: datetime
    delivery: DeliveryOut


class CreatedSubscriptionOut(SubscriptionOut):
    secret: str = Field(
        description="Signing secret, shown only now. "
        "X-Hub-Signature-256 is sha256=<hex HMAC-SHA256(secret, body)>"
    )


def _out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        url=sub.url,
        topics=list(sub.topics),
        types=list(sub.types),
        description=sub.description,
        status=sub.status,
        created_by=sub.created_by,
        created_at=sub.created_at,
        status_changed_at=sub.status_changed_at,
        delivery=DeliveryOut(
            last_event_id=sub.last_event_id,
            last_delivered_at=sub.last_delivered_at,
            consecutive_failures=sub.consecutive_failures,
            last_error=sub.last_error,
            last_attempt_at=sub.last_attempt_at,
        ),
    )


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(UNPROCESSABLE, detail)


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (validates the port: a URL the client could not call is refused here)
    except ValueError as exc:
        raise _unprocessable(f"url: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _unprocessable("url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        # It would be stored and listed in clear; receivers authenticate the hub by the signature.
        raise _unprocessable("url must not carry credentials; verify X-Hub-Signature-256 instead")
    return url.strip()


def _choose_topics(topics: list[str] | None, types: list[str]) -> list[str]:
    """The topics to read: as asked (known ones only), or every topic carrying a wanted type."""
    for t in types:
        if not t or t.count("*") > (1 if t.endswith("*") else 0):
            raise _unprocessable(f"type {t!r}: an event type, or a prefix ending in * (asset.*)")
    wanted = TypeFilter.of(types)
    if topics:
        unknown = [t for t in topics if t not in SUBSCRIBABLE]
        if unknown:
            raise _unprocessable(f"not a subscribable topic: {', '.join(unknown)}; see `hub topics list`")
        chosen = list(dict.fromkeys(topics))
    else:
        chosen = [name for name, spec in SUBSCRIBABLE.items() if any(wanted(t) for t in spec.event_types)]
    carried = set().union(*(SUBSCRIBABLE[name].event_types for name in chosen))
    for t in types:
        if not any(TypeFilter.of([t])(c) for c in carried):
            raise _unprocessable(f"type {t!r} matches no event of topics {', '.join(chosen)}")
    return chosen


async def _end_offsets(bus: EventBus, topics: list[str], prefix: str) -> dict[str, dict[str, int]]:
    ends = await asyncio.gather(*(bus.end_offsets(f"{prefix}{t}") for t in topics))
    return {t: {str(p): o for p, o in end.items()} for t, end in zip(topics, ends, strict=True)}


def _visible(principal: Principal, sub: Subscription | None) -> Subscription:
    if sub is None or sub.status == "deleted":
        raise HTTPException(http.HTTP_404_NOT_FOUND, "no such subscription")
    if principal.role is not Role.ADMIN and sub.created_by != principal.key_id:
        raise HTTPException(http.HTTP_404_NOT_FOUND, "no such subscription")  # not a secret to probe
    return sub


@router.post(
    "",
    status_code=http.HTTP_201_CREATED,
    summary="Subscribe a URL to events from now on; the signing secret is in this answer only",
)
async def create_subscription(
    *,
    body: SubscriptionIn,
    response: Response,
    store: SubscriptionsDep,
    bus: BusDep,
    services: ServicesDep,
    audit: AuditDep,
) -> CreatedSubscriptionOut:
    url = _check_url(body.url)
    refused = await services.webhook_targets.refusal(url)
    if refused is not None:
        raise _unprocessable(f"url: {refused}")
    types = list(dict.fromkeys(t.strip() for t in body.types or []))
    topics = _choose_topics(body.topics, types)
    starts = await _end_offsets(bus, topics, services.topic_prefix)
    # Recorded before the subscription exists: nothing may flow out that the ledger does not show.
    sub_id = new_subscription_id()
    await audit.record("subscriptions.create", f"{sub_id}:{','.join(topics)}")
    sub, secret = await asyncio.to_thread(
        store.create,
        url=url,
        topics=topics,
        types=types,
        description=body.description,
        created_by=audit.principal.key_id,
        start_offsets=starts,
        sub_id=sub_id,
    )
    response.headers["Location"] = f"/subscriptions/{sub.id}"
    return CreatedSubscriptionOut(**_out(sub).model_dump(), secret=secret)


@router.get("", summary="Webhook subscriptions with their delivery state (no secrets)")
async def list_subscriptions(store: SubscriptionsDep, scope: ScopeDep) -> dict[str, list[SubscriptionOut]]:
    principal = scope.principal
    owner = None if principal.role is Role.ADMIN else principal.key_id
    subs = await asyncio.to_thread(store.list, created_by=owner)
    return {"items": [_out(s) for s in subs]}


@router.get("/{subscription_id}", summary="One subscription with its delivery state")
async def get_subscription(
    subscription_id: SubscriptionId, store: SubscriptionsDep, scope: ScopeDep
) -> SubscriptionOut:
    return _out(_visible(scope.principal, await asyncio.to_thread(store.get, subscription_id)))


@router.patch("/{subscription_id}", summary="Pause or resume delivery (a paused one keeps its place)")
async def patch_subscription(
    subscription_id: SubscriptionId, body: SubscriptionPatch, store: SubscriptionsDep, scope: ScopeDep
) -> SubscriptionOut:
    principal = scope.principal
    sub = _visible(principal, await asyncio.to_thread(store.get, subscription_id))
    if body.description is not None:
        await asyncio.to_thread(store.set_description, sub.id, body.description)
    if body.status is not None:
        await asyncio.to_thread(store.set_status, sub.id, body.status)
    return _out(_visible(principal, await asyncio.to_thread(store.get, sub.id)))


@router.delete("/{subscription_id}", status_code=http.HTTP_204_NO_CONTENT, summary="Stop delivering for good")
async def delete_subscription(
    subscription_id: SubscriptionId, store: SubscriptionsDep, scope: ScopeDep
) -> Response:
    sub = _visible(scope.principal, await asyncio.to_thread(store.get, subscription_id))
    await asyncio.to_thread(store.set_status, sub.id, "deleted")
    return Response(status_code=http.HTTP_204_NO_CONTENT)
