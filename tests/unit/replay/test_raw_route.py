"""GET /raw/{ref}: the archived bytes exactly, described by X-Hub-Raw-* headers; 404, 500 and 503 when it cannot."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI

from hub.api.app import create_app
from hub.api.routes.raw import archive_reader, build_router
from hub.archive import SqliteRawArchive
from hub.ports import InboundMessage
from projections.db import make_engine

PAYLOAD = "资产编号,资产名称\r\nZC-1,呼吸机\r\n".encode("gbk")  # GBK, as an HRP export often is


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[SqliteRawArchive]:
    a = SqliteRawArchive(tmp_path / "archive.db")
    yield a
    a.close()


async def store(archive: SqliteRawArchive, payload: bytes = PAYLOAD) -> str:
    outcome = await archive.store(
        InboundMessage(
            system="hrp",
            payload=payload,
            transport="file",
            message_id="固定资产台账_2024.csv",
            site="main",
            metadata={"filename": "固定资产台账_2024.csv"},
        )
    )
    return outcome.record.raw_ref


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


def raw_app(archive: SqliteRawArchive | None) -> FastAPI:
    app = FastAPI()
    app.include_router(build_router(None if archive is None else archive_reader(archive)))
    return app


class TestRawRoute:
    async def test_returns_the_exact_bytes_with_their_provenance(self, archive: SqliteRawArchive) -> None:
        """The body is the archived payload byte for byte; headers give system, message id, sha256, receive time."""
        ref = await store(archive)
        record = await archive.get(ref)
        async with client(raw_app(archive)) as http:
            response = await http.get(f"/raw/{ref}")
        assert response.status_code == 200
        assert response.content == PAYLOAD
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["x-hub-raw-system"] == "hrp"
        assert unquote(response.headers["x-hub-raw-message-id"]) == "固定资产台账_2024.csv"
        assert response.headers["x-hub-raw-sha256"] == hashlib.sha256(response.content).hexdigest()
        assert response.headers["x-hub-raw-received-at"] == record.received_at.isoformat()
        assert response.headers["cache-control"] == "no-store"

    async def test_an_unknown_reference_is_404(self, archive: SqliteRawArchive) -> None:
        """A reference the archive does not hold answers 404."""
        async with client(raw_app(archive)) as http:
            response = await http.get("/raw/hrp:0000000000000000")
        assert response.status_code == 404

    async def test_bytes_that_fail_their_sha256_are_not_served(self, archive: SqliteRawArchive) -> None:
        """Payload altered in the archive after storing: 500, and the altered bytes are not sent."""
        ref = await store(archive)
        archive._conn.execute("UPDATE raw_messages SET payload = ? WHERE raw_ref = ?", (b"forged", ref))
        async with client(raw_app(archive)) as http:
            response = await http.get(f"/raw/{ref}")
        assert response.status_code == 500
        assert b"forged" not in response.content

    async def test_without_an_archive_the_route_says_so(self) -> None:
        """An API process given no raw reader answers 503, not 404."""
        async with client(raw_app(None)) as http:
            response = await http.get("/raw/hrp:abc")
        assert response.status_code == 503

    async def test_create_app_wires_the_raw_reader(self, archive: SqliteRawArchive, tmp_path: Path) -> None:
        """create_app(raw_reader=...) serves /raw/{ref} from that reader."""
        ref = await store(archive)
        engine = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        async with client(create_app(engine=engine, raw_reader=archive_reader(archive))) as http:
            response = await http.get(f"/raw/{ref}")
        engine.dispose()
        assert response.content == PAYLOAD
