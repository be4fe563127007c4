"""One log line per HTTP request: who (key id, role), which route, the answer and how long it took.

The route is logged as its template (`/assets/{asset_id}`, `/inventory/trace/{code}`), never the
path or the query string as sent: those carry UDIs, serials and department names a patient can be
found by, and the log is not the audit ledger (sensitive reads are recorded there). Uvicorn's own
access log, which prints the raw path and query, is off (hub.cli.operate).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger("hub.access")


class AccessLogMiddleware:
    """Pure ASGI (no buffering): streams (SSE) pass through; their line comes when they end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            principal: Any = scope.get("state", {}).get("principal")
            route = scope.get("route")
            logger.info(
                "http_request",
                method=scope["method"],
                route=getattr(route, "path_format", None) or getattr(route, "path", None) or "(no route)",
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                key_id=getattr(principal, "key_id", None),
                role=getattr(getattr(principal, "role", None), "value", None),
                key_department=getattr(principal, "department", None),  # the key's scope, not the query
            )
