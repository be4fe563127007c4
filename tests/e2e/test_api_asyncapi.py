"""`GET /asyncapi.json`: the AsyncAPI document of this deployment, open like /openapi.json."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hub.schema_export import SSE_CHANNEL, asyncapi_document
from tests.e2e.conftest import wired_hub

if TYPE_CHECKING:
    from pathlib import Path

PREFIX = "h07."


async def test_served_without_a_key_with_the_deployments_prefix_and_an_etag(tmp_path: Path) -> None:
    """No key needed; the document is the bundled one with this hub's topic prefix; a client
    holding the ETag gets 304; the OpenAPI document does not list it (it is not an API operation)."""
    async with wired_hub(tmp_path / "hub", settings={"topic_prefix": PREFIX}) as w:
        response = await w.http.get("/asyncapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        document = response.json()
        assert document == json.loads(json.dumps(asyncapi_document(PREFIX, bundled=True)))
        assert document["channels"]["canonical.asset.v1"]["address"] == f"{PREFIX}canonical.asset.v1"
        assert document["channels"][SSE_CHANNEL]["address"] == "/events/stream"

        etag = response.headers["etag"]
        again = await w.http.get("/asyncapi.json", headers={"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        stale = await w.http.get("/asyncapi.json", headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200

        assert "/asyncapi.json" not in (await w.http.get("/openapi.json")).json()["paths"]
