"""GET /health/live and /health/ready through the real wiring: degraded with reasons, and back.

The database goes away behind a TCP proxy the test cuts (the read models and the raw archive in
PostgreSQL, as a two-node site runs them); the embedded bus goes away by being closed, and comes
back when started again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from projections.runtime.derived import projection_outbox
from tests.e2e.conftest import Served, wired_hub
from tests.fixtures.kafka import start_broker, stop_broker
from tests.reliability.proxy import Proxy

if TYPE_CHECKING:
    from pathlib import Path


# The test machine's free disk is not this test's business: checked separately below.
EASY = {"health_min_free_mb": 0, "health_timeout_s": 10.0}


async def ready(http: httpx.AsyncClient) -> tuple[int, Any]:
    response = await http.get("/health/ready")
    return response.status_code, response.json()


async def test_live_needs_no_key_and_answers_ok(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings=EASY) as w:
        response = await w.http.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_reports_every_check_and_the_old_health_is_unchanged(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings=EASY) as w:
        code, body = await ready(w.http)
        old = await w.http.get("/health")
    assert (code, body["status"], body["reasons"]) == (200, "ok", [])
    checks = body["checks"]
    assert {name: c["state"] for name, c in checks.items()} == {
        "archive": "ok",
        "bus": "ok",
        "database": "ok",
        "disk": "ok",
        "projection_lag": "ok",
    }
    assert checks["projection_lag"]["value"] == 0
    assert (old.status_code, old.json()["status"], old.json()["database"]) == (200, "ok", "ok")


async def test_the_embedded_bus_closed_is_degraded(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings=EASY) as w:
        await w.hub.bus.close()
        code, body = await ready(w.http)
    assert (code, body["status"]) == (503, "degraded")
    assert [r for r in body["reasons"] if r.startswith("bus: ")], body["reasons"]
    assert body["checks"]["bus"]["state"] == "degraded"


@pytest.mark.kafka
async def test_the_broker_stopped_is_degraded_and_restarted_is_ready(tmp_path: Path) -> None:
    """A broker of this test's own (the session's is shared): killed, then started on its port."""
    proc, bootstrap = start_broker()
    port = int(bootstrap.rsplit(":", 1)[1])
    try:
        settings = {**EASY, "bus": "kafka", "kafka_bootstrap": bootstrap, "health_timeout_s": 3.0}
        async with wired_hub(tmp_path / "hub", settings=settings) as w:
            up = await ready(w.http)
            stop_broker(proc)
            down = await ready(w.http)
            proc, _ = start_broker(port)
            back = await ready(w.http)
            for _ in range(5):  # the client reconnects on its own schedule: ask again, never sleep
                if back[0] == 200:
                    break
                back = await ready(w.http)
    finally:
        stop_broker(proc)
    assert up[0] == 200, up[1]
    assert (down[0], down[1]["checks"]["bus"]["state"]) == (503, "degraded")
    assert [r for r in down[1]["reasons"] if r.startswith("bus: ")]
    assert back[0] == 200, back[1]


async def test_derived_events_waiting_in_the_outbox_count_as_lag(tmp_path: Path) -> None:
    """The projections' outbox holds derived events not yet on the bus: over the threshold, degraded."""
    async with wired_hub(tmp_path / "hub", settings={**EASY, "health_max_lag": 2}) as w:
        rows = [
            {
                "projection": "compliance",
                "event_id": f"00000000-0000-0000-0000-00000000000{i}",
                "topic": "derived.compliance.v1",
                "event_type": "compliance.overdue",
                "key": f"A{i}",
                "value": b"{}",
                "created_at": datetime.now(UTC),
                "published": False,
            }
            for i in range(3)
        ]
        with w.hub.engine.begin() as conn:
            conn.execute(insert(projection_outbox), rows)
        code, body = await ready(w.http)
    lag = body["checks"]["projection_lag"]
    assert (code, lag["state"], lag["value"]) == (503, "degraded", 3)
    assert "HUB_HEALTH_MAX_LAG" in lag["reason"]


async def test_too_little_free_disk_is_degraded(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings={"health_min_free_mb": 10**12}) as w:
        code, body = await ready(w.http)
    assert (code, body["checks"]["disk"]["state"]) == (503, "degraded")
    assert "HUB_HEALTH_MIN_FREE_MB" in body["checks"]["disk"]["reason"]


async def test_a_listener_that_stopped_serving_is_degraded(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings=EASY) as w:
        serving = [True]
        w.hub.api.listeners["mllp"] = lambda: serving[0]
        up = await ready(w.http)
        serving[0] = False
        down = await ready(w.http)
    assert (up[0], up[1]["checks"]["mllp"]["state"]) == (200, "ok")
    assert (down[0], down[1]["reasons"]) == (503, ["mllp: mllp listener not serving"])


@pytest.mark.postgres
async def test_the_database_stopped_is_degraded_and_back_is_ready(tmp_path: Path, pg_url: str) -> None:
    """Read models and raw archive in PostgreSQL behind a proxy: cut, both checks fail with a
    reason (and /health says 503 as before); restored, ready again without a restart."""
    url = make_url(pg_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    via = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        settings = {
            **EASY,
            "db_url": via.replace("postgresql://", "postgresql+psycopg://"),
            "archive_url": via,
        }
        async with wired_hub(tmp_path / "hub", settings=settings) as w:
            assert (await ready(w.http))[0] == 200
            proxy.cut()
            code, body = await ready(w.http)
            old = await w.http.get("/health")
            proxy.restore()
            back = await ready(w.http)
            if back[0] != 200:  # a pooled connection cut with the proxy fails once, then is replaced
                back = await ready(w.http)
    finally:
        proxy.close()
    assert (code, body["status"], old.status_code) == (503, "degraded", 503)
    states = {n: c["state"] for n, c in body["checks"].items()}
    assert (states["database"], states["archive"], states["projection_lag"]) == (
        "degraded",
        "degraded",
        "skipped",
    )
    assert any(r.startswith("database: read-model database unreachable") for r in body["reasons"])
    assert back[0] == 200, back[1]


def test_hub_serve_reports_its_mllp_listener(served: Served) -> None:
    """`hub serve` registers the listener it opened: ready names it (a node without the ingest
    role has no MLLP check at all)."""
    served.start()
    response = httpx.get(f"{served.url}/health/ready", timeout=30)
    assert response.json()["checks"]["mllp"] == {"state": "ok", "reason": None, "value": None}
    assert response.status_code == 200, response.text
