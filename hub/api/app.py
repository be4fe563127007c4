"""The HTTP API application: `build_api(hub)` builds one from the hub's services, with nothing global.

Routes live in hub.api.routes (one module per concern); the services they use come from the
composition root (hub.bootstrap.build_hub) through the dependencies of hub.api.deps; role and
department checks through hub.api.scope. No settings are read here.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from hub.api import contract
from hub.api.access_log import AccessLogMiddleware
from hub.api.contract import depends_on
from hub.api.csv_export import CsvExportMiddleware
from hub.api.deps import HubApi
from hub.api.routes import alerts as alert_routes
from hub.api.routes import (
    assets,
    console,
    fhir_audit,
    fhir_places,
    fhir_read,
    fhir_stock,
    fhir_tasks,
    health,
    metrics,
    subscription_ops,
)
from hub.api.routes import audit as audit_routes
from hub.api.routes import availability as availability_routes
from hub.api.routes import channels as channel_routes
from hub.api.routes import compliance as compliance_routes
from hub.api.routes import device_health as device_health_routes
from hub.api.routes import dlq as dlq_routes
from hub.api.routes import energy as energy_routes
from hub.api.routes import events as event_routes
from hub.api.routes import history as history_routes
from hub.api.routes import ingest as ingest_routes
from hub.api.routes import inventory as inventory_routes
from hub.api.routes import kpis as kpi_routes
from hub.api.routes import messages as message_routes
from hub.api.routes import notifications as notification_routes
from hub.api.routes import raw as raw_routes
from hub.api.routes import scan as scan_routes
from hub.api.routes import subscriptions as subscription_routes
from hub.api.routes import workorders as workorder_routes
from hub.api.scope import get_scope, require
from hub.auth.roles import Permission
from projections.runtime.tracking import ensure_tables

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import APIRouter, FastAPI

    from hub.api.services import ApiServices
    from hub.bootstrap import Hub

logger = structlog.get_logger()

API_VERSION = "1"
OPEN_MODULES = (health, metrics, console)
"""/health and /metrics (load balancers, Prometheus) and the console page carry no patient data:
no key needed. The console's data calls go through the same checks as any other caller."""


def build_api(hub: Hub) -> HubApi:
    """The API of `hub` (hub.bootstrap.build_hub built its services)."""
    return create_app(hub.api)


def create_app(services: ApiServices, *, title: str = "Hospital integration hub") -> HubApi:
    """A FastAPI app over `services`; every data route goes through the department scope."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The projection runner owns and creates its tables; creating them here too lets the API
        # answer "no assets" on a fresh database instead of failing before the first event.
        try:
            for projection in services.projections:
                await asyncio.to_thread(ensure_tables, services.engine, projection)
            await asyncio.to_thread(services.security.keys.ensure_tables)
            await asyncio.to_thread(services.subscriptions.ensure_tables)
            if services.scan is not None:
                await asyncio.to_thread(services.scan.keys.ensure_tables)
            if services.ack_links is not None:
                await asyncio.to_thread(services.ack_links.ensure_tables)
        except DBAPIError as exc:
            # Start anyway: /health reports the database as unreachable (503) until it answers.
            logger.warning("read_model_tables_not_ensured", error=type(exc.orig).__name__)
        yield

    app = HubApi(services, title=title, version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    # Scan-to-report needs no API key (the label's key is checked inside): declared as open.
    contract.install(app, [*(module.router for module in OPEN_MODULES), scan_routes.router])
    app.add_middleware(CsvExportMiddleware)
    app.add_middleware(AccessLogMiddleware)  # outermost: it sees the status the client gets
    for module in OPEN_MODULES:
        app.include_router(module.router)
    _include(app, ingest_routes.router, require(Permission.INGEST))
    _include(app, history_routes.router, require(Permission.HISTORY))
    _include(app, audit_routes.router, require(Permission.HISTORY))
    _include(app, dlq_routes.router, require(Permission.DLQ))
    # The message browser reads what HEAD /raw shows (raw_meta); reprocessing is a dlq action.
    _include(app, message_routes.reprocess_router, require(Permission.DLQ))
    _include(app, message_routes.router, require(Permission.RAW_META))
    _include(app, channel_routes.router, require(Permission.RAW_META))
    _include(app, subscription_routes.router, require(Permission.SUBSCRIBE))
    _include(app, subscription_ops.router, require(Permission.SUBSCRIBE))
    _include(app, alert_routes.router, require(Permission.READ))
    _include(app, event_routes.router)  # its own: the stream permission, whole hospital
    # Role checks for /raw are inside: HEAD needs raw_meta, GET raw_payload, both audited.
    _include(app, raw_routes.router)
    # Scan-to-report authenticates the label's reporting key itself (no API key, no login) and
    # checks the device through the same department scope (hub.api.scope.Scope) inside.
    app.include_router(scan_routes.router)
    # POST /notifications/{id}/ack takes the caller's key, or a one-time link's token (checked
    # inside); a key's acknowledgement goes through hub.api.scope.Scope like every read.
    app.include_router(notification_routes.link_router)
    read_models = (
        assets,
        availability_routes,
        inventory_routes,
        workorder_routes,
        compliance_routes,
        kpi_routes,
        fhir_read,
        fhir_places,
        fhir_stock,
        fhir_tasks,
        notification_routes,
        energy_routes,
        device_health_routes,
    )
    for routes in read_models:
        _include(app, routes.router, require(Permission.READ))
    _include(app, fhir_audit.router, require(Permission.AUDIT))
    return app


def _include(app: FastAPI, router: APIRouter, *dependencies: Any) -> None:
    """Include a data router, refusing one with a route that bypasses the department scope."""
    outer = [*dependencies, *router.dependencies]
    for route in router.routes:
        if isinstance(route, APIRoute) and not (
            depends_on(route.dependant, get_scope)
            or any(depends_on(get_dependant(path="", call=d.dependency), get_scope) for d in outer)
        ):
            raise RuntimeError(f"route {route.path} does not go through hub.api.scope.get_scope")
    app.include_router(router, dependencies=list(dependencies))
