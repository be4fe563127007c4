"""One access-log line per request: key id, role, route template, status, latency; no query values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from structlog.testing import capture_logs

from hub.auth.roles import Role
from tests.e2e.conftest import wired_hub

if TYPE_CHECKING:
    from pathlib import Path

ICU, ER = "重症医学科", "急诊科"


async def test_each_request_is_one_line_without_what_it_asked_for(tmp_path: Path) -> None:
    """Routes by template, the caller by key id and role; department names and codes never logged."""
    async with wired_hub(tmp_path / "hub") as w:
        headers = w.auth(Role.VIEWER, ICU)
        key_id = w.token(Role.VIEWER, ICU).split("_")[1]
        with capture_logs() as logs:
            ok = await w.http.get("/assets", params={"department": ER, "limit": 5}, headers=headers)
            missing = await w.http.get("/assets/AST-0123456789abcdef0123", headers=headers)
            refused = await w.http.get("/assets")
    assert (ok.status_code, missing.status_code, refused.status_code) == (200, 404, 401)
    lines = [e for e in logs if e["event"] == "http_request"]
    assert [(e["method"], e["route"], e["status"]) for e in lines] == [
        ("GET", "/assets", 200),
        ("GET", "/assets/{asset_id}", 404),
        ("GET", "/assets", 401),
    ]
    assert [e["key_id"] for e in lines] == [key_id, key_id, None]
    assert [e["role"] for e in lines][:2] == ["viewer", "viewer"]
    assert all(isinstance(e["duration_ms"], float) for e in lines)
    logged = repr(lines)
    assert [e["key_department"] for e in lines][:2] == [ICU, ICU]  # the key's scope, not the query
    assert ER not in logged  # the query value
    assert "AST-0123456789abcdef0123" not in logged  # the path value
