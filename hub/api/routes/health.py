"""GET /health, /health/live and /health/ready: for load balancers, orchestrators and the on-call.

/health (kept as it was): the read-model database answers, and how far each projection lags.
/health/live: the process answers (restart it when not). /health/ready: every part this node
needs answers (archive writable, bus, database, listeners, lag, disk), else 503 "degraded" with
the reason of each failing check (stop routing to it; it comes back by itself).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.models import HealthOut
from hub.api.readiness import CheckResult, database_check

router = APIRouter(tags=["operations"])


class LiveOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: Literal["ok"]


class CheckOut(BaseModel):
    """One readiness check: `value` is the lag in records, or the free disk in MB."""

    model_config = ConfigDict(frozen=True)
    state: Literal["ok", "degraded", "skipped"]
    reason: str | None = None
    value: int | None = None


class ReadyOut(BaseModel):
    """Readiness of this node: `degraded` names every failing check's reason."""

    model_config = ConfigDict(frozen=True)
    status: Literal["ok", "degraded"]
    reasons: list[str] = Field(description="Why not ready, one line per failing check (empty when ok)")
    checks: dict[str, CheckOut] = Field(
        description="archive, bus, database, disk, projection_lag, and each listener this node opened (mllp)"
    )


def database_reachable(engine: Engine) -> bool:
    """True when the read-model database runs a trivial query (blocking: call from a thread)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, PoolTimeoutError):
        return False
    return True


@router.get(
    "/health",
    response_model=HealthOut,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthOut, "description": "Database unreachable"}
    },
)
async def health(services: ServicesDep, response: Response) -> HealthOut:
    """200 with `status: ok` when the read-model database answers; 503 when it does not."""
    reachable = await run_in_threadpool(database_reachable, services.engine)
    lag = await services.runners_lag()
    if not reachable:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(
        status="ok" if reachable else "unavailable",
        database="ok" if reachable else "unreachable",
        projection_lag=lag,
    )


@router.get("/health/live", response_model=LiveOut)
async def live() -> LiveOut:
    """200 while the process serves requests: what a liveness probe restarts on."""
    return LiveOut(status="ok")


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ReadyOut, "description": "Degraded, with reasons"}
    },
)
async def ready(services: ServicesDep, response: Response) -> ReadyOut:
    """200 `ok` when every check passes; 503 `degraded` with the reasons otherwise."""
    if services.readiness is not None:
        checks = await services.readiness()
    else:
        checks = {"database": await run_in_threadpool(database_check, services.engine)}
    failing = {name: c for name, c in checks.items() if c.state == "degraded"}
    if failing:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadyOut(
        status="degraded" if failing else "ok",
        reasons=[f"{name}: {c.reason}" for name, c in failing.items()],
        checks={name: _out(c) for name, c in checks.items()},
    )


def _out(check: CheckResult) -> CheckOut:
    return CheckOut(state=check.state, reason=check.reason, value=check.value)
