"""GET /health and GET /metrics through the real wiring (build_hub + build_api)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from projections.assets.registry import AssetRegistry
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from tests.e2e.conftest import open_api
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


@pytest.fixture
async def client(engine: Engine, db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(db_url, tmp_path / "hub") as w:
        yield w.http


@pytest.fixture
def dead_url(db_url: str, tmp_path: Path) -> str:
    """A database URL that cannot be reached (same backend as db_url)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'missing-dir' / 'readmodels.db'}"
    return "postgresql+psycopg://postgres@127.0.0.1:1/none"


LAG = {
    "asset_registry": 0,
    "inventory": 0,
    "work_orders": 0,
    "compliance": 0,
    "audit_ledger": 0,
    "raw_scope": 0,
    "energy": 0,
    "device_health": 0,
    "notifications": 0,
}


class TestHealth:
    async def test_ok_with_database_and_projection_lag(self, client: httpx.AsyncClient) -> None:
        """A reachable database gives 200, status ok, and the lag each runner reports (nothing on
        the log yet: the read models were written directly)."""
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok", "projection_lag": LAG}

    async def test_unreachable_database_is_503(self, dead_url: str, tmp_path: Path) -> None:
        """When the read-model database does not answer, /health says so with a 503, and no
        projection lag it cannot know."""
        async with open_api(dead_url, tmp_path / "hub") as w:
            response = await w.http.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "database": "unreachable", "projection_lag": {}}


class TestMetrics:
    async def test_exposes_asset_count_and_projection_lag(self, client: httpx.AsyncClient) -> None:
        """Prometheus text with hub_assets_total and a lag gauge per projection."""
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        lines = response.text.splitlines()
        assert "hub_assets_total 2.0" in lines
        assert 'hub_projection_lag{projection="asset_registry"} 0.0' in lines
        assert "hub_read_model_database_up 1.0" in lines

    async def test_two_apps_do_not_share_a_registry(
        self, engine: Engine, db_url: str, tmp_path: Path
    ) -> None:
        """Each hub's API has its own metrics registry: a second over an empty database counts zero."""
        async with open_api(db_url, tmp_path / "one") as w:
            first = (await w.http.get("/metrics")).text.splitlines()
        async with open_api(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "two") as w:
            second = (await w.http.get("/metrics")).text.splitlines()
        assert ("hub_assets_total 2.0" in first, "hub_assets_total 0.0" in second) == (True, True)

    async def test_unreachable_database_is_reported_not_raised(self, dead_url: str, tmp_path: Path) -> None:
        """A scrape while the database is down still answers, with hub_read_model_database_up 0."""
        async with open_api(dead_url, tmp_path / "hub") as w:
            response = await w.http.get("/metrics")
        assert response.status_code == 200
        assert "hub_read_model_database_up 0.0" in response.text.splitlines()


class TestLifespan:
    async def test_a_fresh_database_answers_with_no_assets(self, db_url: str, tmp_path: Path) -> None:
        """On start the app creates the registry tables: an empty database lists nothing, not a 500."""
        async with open_api(db_url, tmp_path / "hub") as w:
            body = (await w.http.get("/assets")).json()
        assert (body["items"], body["total"]) == ([], 0)

    async def test_starts_while_the_database_is_down(self, dead_url: str, tmp_path: Path) -> None:
        """An unreachable database does not stop the API from starting; /health reports it."""
        with capture_logs() as logs:
            async with open_api(dead_url, tmp_path / "hub") as w:
                assert (await w.http.get("/health")).status_code == 503
        warned = [e["event"] for e in logs if e["log_level"] == "warning"]
        assert warned == ["read_model_tables_not_ensured"]
