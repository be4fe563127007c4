"""The API's metrics registry and projection-lag source (held by hub.api.services.ApiServices).

One registry per app, never prometheus_client's global one, so two apps (tests, several sites)
never share gauges.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Gauge

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
