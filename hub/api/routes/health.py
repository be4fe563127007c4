"""GET /health: the API answers, the read-model database answers, and how far projections lag."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.models import HealthOut

router = APIRouter(tags=["operations"])


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
