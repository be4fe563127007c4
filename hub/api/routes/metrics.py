"""GET /metrics: Prometheus text exposition (hub.metrics says what comes from where, and why).

Three parts, one text: the API's own gauges (assets, read-model database, projection lag), this
process's histograms (archive commits, translation) and gauges (SSE clients), and the durable
counts read from the raw archive and the read-model database at scrape time (per channel, dead
letters, consumer lag, ledger head, archive size, webhooks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.metrics import DurableCollector
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
    """Per-channel counts, latencies, lags and backlogs in Prometheus conventions, read on each scrape."""
    gauges = services.metrics
    total = await run_in_threadpool(_assets_total, services.engine)
    gauges.database_up.set(0 if total is None else 1)
    if total is not None:
        gauges.assets_total.set(total)
    for projection, lag in (await services.runners_lag()).items():
        gauges.projection_lag.labels(projection=projection).set(lag)
    body = generate_latest(gauges.registry)
    if services.process_metrics is not None:
        body += generate_latest(services.process_metrics.registry)
    if services.ops is not None:
        durable = DurableCollector()
        durable.snapshot = await services.ops()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(durable)
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
