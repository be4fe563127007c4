"""GET /health and GET /metrics through create_app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from hub.api.app import create_app
from projections.asset_registry import AssetRegistry
from projections.db import make_engine
from projections.tracking import apply_batch, ensure_tables
from tests.unit.projections.factories import records, registered

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine
from structlog.testing import capture_logs


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A read-model database holding two assets."""
    eng = make_engine(db_url)
    ensure_tables(eng, AssetRegistry())
    apply_batch(eng, AssetRegistry(), records([registered("r1", "A1"), registered("r2", "A2")]))
    yield eng
    eng.dispose()


async def _lag() -> dict[str, int]:
    return {"asset_registry": 7}


async def _client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(create_app(engine=engine, runners_lag=_lag)):
        yield c


@pytest.fixture
def dead_engine(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine whose database cannot be reached (same backend as db_url)."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'readmodels.db'}"
    else:
        url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    eng = make_engine(url)
    yield eng
    eng.dispose()


class TestHealth:
    async def test_ok_with_database_and_projection_lag(self, client: httpx.AsyncClient) -> None:
        """A reachable database gives 200, status ok, and the lag the runners report."""
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok", "projection_lag": {"asset_registry": 7}}

    async def test_without_runners_lag_is_null(self, engine: Engine) -> None:
        """An API running without projections reports no lag rather than inventing one."""
        async for c in _client(create_app(engine=engine)):
            assert (await c.get("/health")).json()["projection_lag"] is None

    async def test_unreachable_database_is_503(self, dead_engine: Engine) -> None:
        """When the read-model database does not answer, /health says so with a 503."""
        async for c in _client(create_app(engine=dead_engine)):
            response = await c.get("/health")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
        assert response.json()["status"] == "unavailable"


class TestMetrics:
    async def test_exposes_asset_count_and_projection_lag(self, client: httpx.AsyncClient) -> None:
        """Prometheus text with hub_assets_total and a lag gauge per projection."""
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        lines = response.text.splitlines()
        assert "hub_assets_total 2.0" in lines
        assert 'hub_projection_lag{projection="asset_registry"} 7.0' in lines
        assert "hub_read_model_database_up 1.0" in lines

    async def test_two_apps_do_not_share_a_registry(self, engine: Engine, tmp_path: Path) -> None:
        """Each app has its own metrics registry: a second app over an empty database counts zero."""
        other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
        ensure_tables(other, AssetRegistry())
        async for c in _client(create_app(engine=engine)):
            first = (await c.get("/metrics")).text.splitlines()
        async for c in _client(create_app(engine=other)):
            second = (await c.get("/metrics")).text.splitlines()
        other.dispose()
        assert ("hub_assets_total 2.0" in first, "hub_assets_total 0.0" in second) == (True, True)

    async def test_unreachable_database_is_reported_not_raised(self, dead_engine: Engine) -> None:
        """A scrape while the database is down still answers, with hub_read_model_database_up 0."""
        async for c in _client(create_app(engine=dead_engine, runners_lag=_lag)):
            response = await c.get("/metrics")
        assert response.status_code == 200
        assert "hub_read_model_database_up 0.0" in response.text.splitlines()


class TestLifespan:
    async def test_a_fresh_database_answers_with_no_assets(self, db_url: str) -> None:
        """On start the app creates the registry tables: an empty database lists nothing, not a 500."""
        eng = make_engine(db_url)
        app = create_app(engine=eng)
        async with app.router.lifespan_context(app):
            async for c in _client(app):
                body = (await c.get("/assets")).json()
        eng.dispose()
        assert (body["items"], body["total"]) == ([], 0)

    async def test_starts_while_the_database_is_down(self, dead_engine: Engine) -> None:
        """An unreachable database does not stop the API from starting; /health reports it."""
        app = create_app(engine=dead_engine)
        with capture_logs() as logs:
            async with app.router.lifespan_context(app):
                async for c in _client(app):
                    assert (await c.get("/health")).status_code == 503
        assert [e["event"] for e in logs] == ["read_model_tables_not_ensured"]
