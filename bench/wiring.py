"""The API as `hub serve` builds it (build_hub + build_api) over a bench's read-model database."""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from hub.api.app import build_api
from hub.bootstrap import Hub, build_hub
from hub.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@asynccontextmanager
async def api_client(
    db_url: str,
    *,
    auth: str = "off",
    base_url: str = "http://hub",
    http_timeout_s: float = 60,
    **overrides: Any,
) -> AsyncIterator[tuple[Hub, httpx.AsyncClient]]:
    """The hub (its bus and archive in a temporary data dir) and an in-process client of its API."""
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), db_url=db_url, auth=auth)  # type: ignore[arg-type]
        async with build_hub(settings, **overrides) as hub:
            app = build_api(hub)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=http_timeout_s
                ) as client,
            ):
                yield hub, client
