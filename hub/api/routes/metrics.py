"""GET /metrics: Prometheus text exposition from this app's own registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from projections.assets.registry import count_assets

if TYPE_CHECKING:
    from sqlalchemy import Engine

router = APIRouter(tags=["operations"])


def _assets_total(engine: Engine) -> int | None:
    try:
        with engine.connect() as conn:
            return count_assets(conn)
    except (DBAPIError, PoolTimeoutError):
        return None  # reported as hub_read_model_database_up 0


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Asset count, read-model database reachability and projection lag, refreshed on each scrape."""
    gauges = services.metrics
    total = await run_in_threadpool(_assets_total, services.engine)
    gauges.database_up.set(0 if total is None else 1)
    if total is not None:
        gauges.assets_total.set(total)
    for projection, lag in (await services.runners_lag()).items():
        gauges.projection_lag.labels(projection=projection).set(lag)
    return Response(generate_latest(gauges.registry), media_type=CONTENT_TYPE_LATEST)
