"""`GET /alerts`: operational alerts the hub raised about itself (hub.delivery.alerts).

    GET /alerts?state=open|all&limit=&offset=   newest first; `open` (default): not yet cleared

Hospital-wide (a department-scoped key gets 403): a silent interface or a full disk is not one
department's. Every role may read it. The events themselves (`ops.alert_raised`,
`ops.alert_cleared` on `derived.ops.v1`) go out by SSE and webhooks like any other.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.deps import EngineDep  # noqa: TC001  (read at runtime)
from hub.api.params import Offset  # noqa: TC001
from hub.api.scope import whole_hospital
from hub.delivery.alerts import Alert, AlertBook

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[whole_hospital("operational alerts")])


class AlertOut(BaseModel):
    id: str
    alert_id: str
    rule: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["open", "cleared"]
    title: str
    text: str
    target: str | None
    value: float | None
    threshold: float | None
    raised_at: datetime
    cleared_at: datetime | None
    cleared_text: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    limit: int
    offset: int


def _out(a: Alert) -> AlertOut:
    return AlertOut(
        id=a.id,
        alert_id=a.alert_id,
        rule=a.rule,
        kind=a.kind,
        severity=a.severity,
        state="open" if a.open else "cleared",
        title=a.title,
        text=a.text,
        target=a.target,
        value=a.value,
        threshold=a.threshold,
        raised_at=a.raised_at,
        cleared_at=a.cleared_at,
        cleared_text=a.cleared_text,
    )


@router.get("", summary="Operational alerts, newest first (open ones, or all)")
async def list_alerts(
    engine: EngineDep,
    state: Annotated[Literal["open", "all"], Query(description="open: not yet cleared")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> AlertPage:
    alerts, total = await asyncio.to_thread(
        AlertBook(engine).list, open_only=state == "open", limit=limit, offset=offset
    )
    return AlertPage(items=[_out(a) for a in alerts], total=total, limit=limit, offset=offset)
