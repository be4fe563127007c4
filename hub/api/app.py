"""The HTTP API application: `create_app(engine=...)` builds one, with nothing global.

Routes live in hub.api.routes (one module per concern); dependencies in hub.api.deps. No
settings are read here: the composition root (hub.bootstrap / hub.cli) passes the engine and,
when projections run in the same process, a coroutine giving their lag.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from hub.api.csv_export import CsvExportMiddleware
from hub.api.routes import assets, console, health, metrics
from hub.api.routes import availability as availability_routes
from hub.api.routes import compliance as compliance_routes
from hub.api.routes import dlq as dlq_routes
from hub.api.routes import events as event_routes
from hub.api.routes import history as history_routes
from hub.api.routes import ingest as ingest_routes
from hub.api.routes import inventory as inventory_routes
from hub.api.routes import kpis as kpi_routes
from hub.api.routes import raw as raw_routes
from hub.api.routes import subscriptions as subscription_routes
from hub.api.routes import workorders as workorder_routes
from hub.api.security import Security, require
from hub.api.state import ApiState, LagSource
from hub.auth.roles import Permission
from hub.bootstrap import make_projections
from projections.tracking import ensure_tables

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from sqlalchemy import Engine

    from hub.ingest import Ingestor
    from hub.ports import EventBus
    from hub.webhooks import SubscriptionStore
    from projections.base import Projection

logger = structlog.get_logger()

API_VERSION = "1"


def create_app(
    *,
    engine: Engine,
    runners_lag: LagSource | None = None,
    title: str = "Hospital integration hub",
    ingest: Ingestor | None = None,
    publish: assets.Publisher | None = None,
    raw_reader: raw_routes.RawReader | None = None,
    as_of_reader: assets.AsOfReader | None = None,
    site: str = "main",
    zone: tzinfo = UTC,
    projections: Sequence[Projection] | None = None,
    history_reader: history_routes.HistoryReader | None = None,
    security: Security | None = None,
    dead_letters: dlq_routes.DeadLetterAccess | None = None,
    bus: EventBus | None = None,
    topic_prefix: str = "",
    subscriptions: SubscriptionStore | None = None,
) -> FastAPI:
    """A FastAPI app serving the read models in `engine`; `runners_lag` feeds /health and /metrics.

    `security` is the access policy (hub.api.security); without one, every caller is the
    anonymous admin and sensitive reads answer 503, since there is nowhere to record them.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The projection runner owns and creates its tables; creating them here too lets the API
        # answer "no assets" on a fresh database instead of failing before the first event.
        try:
            for projection in projections if projections is not None else make_projections():
                await asyncio.to_thread(ensure_tables, engine, projection)
        except DBAPIError as exc:
            # Start anyway: /health reports the database as unreachable (503) until it answers.
            logger.warning("read_model_tables_not_ensured", error=type(exc.orig).__name__)
        yield

    app = FastAPI(title=title, version=API_VERSION, lifespan=lifespan)
    app.state.hub = ApiState(engine=engine, runners_lag=runners_lag)
    app.state.ingest = ingest  # None: a read-only API process; ingest routes answer 503
    app.state.publish = publish  # None: POST /assets/{id}/identifiers answers 503
    app.state.as_of_reader = as_of_reader  # None: GET /assets/{id}?as_of=... answers 503
    app.state.site = site
    app.state.history_reader = history_reader  # None: GET /history/... answers 503
    app.state.dead_letters = dead_letters  # None: /dlq answers 503
    app.state.bus = bus  # None: /events/stream answers 503
    app.state.topic_prefix = topic_prefix
    app.state.subscriptions = subscriptions  # None: /subscriptions answers 503
    app.state.zone = zone  # naive times in queries are read in the site's zone
    app.state.security = security if security is not None else Security.open(site=site)
    app.add_middleware(CsvExportMiddleware)
    # /health and /metrics stay open (load balancers, Prometheus); they carry no patient data,
    # nor does the console page: its data calls go through the checks below.
    for module in (health, metrics, console):
        app.include_router(module.router)
    app.include_router(ingest_routes.router, dependencies=[require(Permission.INGEST)])
    app.include_router(history_routes.router, dependencies=[require(Permission.HISTORY)])
    app.include_router(dlq_routes.router, dependencies=[require(Permission.DLQ)])
    app.include_router(subscription_routes.router, dependencies=[require(Permission.SUBSCRIBE)])
    # Role checks for /raw are inside: HEAD needs raw_meta, GET raw_payload, both audited.
    app.include_router(raw_routes.build_router(raw_reader))  # 503 without a reader
    read_models = (
        assets,
        availability_routes,
        inventory_routes,
        workorder_routes,
        compliance_routes,
        kpi_routes,
        event_routes,
    )
    for routes in read_models:
        app.include_router(routes.router, dependencies=[require(Permission.READ)])
    return app
