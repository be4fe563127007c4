"""What one app instance holds: its engine, its projection-lag source and its metrics registry.

Kept on `app.state.hub`, never in module globals, so two apps (tests, several sites) never share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

if TYPE_CHECKING:
    from sqlalchemy import Engine

LagSource = Callable[[], Awaitable[dict[str, int]]]


class ApiMetrics:
    """Gauges refreshed on each scrape, in a registry of this app's own (not prometheus_client's global)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.assets_total = Gauge(
            "hub_assets_total", "Assets in the registry read model", registry=self.registry
        )
        self.projection_lag = Gauge(
            "hub_projection_lag",
            "Records not yet applied by a projection",
            ["projection"],
            registry=self.registry,
        )
        self.database_up = Gauge(
            "hub_read_model_database_up",
            "1 when the read-model database answered the scrape",
            registry=self.registry,
        )


@dataclass(frozen=True)
class ApiState:
    """Everything the routes need, built once by `create_app`."""

    engine: Engine
    runners_lag: LagSource | None
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
