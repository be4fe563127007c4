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
from hub.api.security import Security
from hub.archive import SqliteRawArchive
from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from hub.ports import InboundMessage, RawRecord
from projections.db import make_engine
from schemas.audit import AccessRecorded
from schemas.envelope import EventBase

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


class Recorder:
    """An access log keeping what it was given (the real one publishes to audit.access.v1)."""

    def __init__(self) -> None:
        self.events: list[AccessRecorded] = []

    async def __call__(self, event: EventBase) -> None:
        assert isinstance(event, AccessRecorded)
        self.events.append(event)


def raw_app(archive: SqliteRawArchive | None, recorder: Recorder | None = None) -> FastAPI:
    app = FastAPI()
    app.state.security = Security.open(access_log=recorder or Recorder())
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
        app = create_app(
            engine=engine, raw_reader=archive_reader(archive), security=Security.open(access_log=Recorder())
        )
        async with client(app) as http:
            response = await http.get(f"/raw/{ref}")
        engine.dispose()
        assert response.content == PAYLOAD

    async def test_without_an_access_log_nothing_is_served(
        self, archive: SqliteRawArchive, tmp_path: Path
    ) -> None:
        """create_app without a way to record reads: 503, and the bytes never leave."""
        ref = await store(archive)
        engine = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        async with client(create_app(engine=engine, raw_reader=archive_reader(archive))) as http:
            response = await http.get(f"/raw/{ref}")
        engine.dispose()
        assert response.status_code == 503
        assert PAYLOAD not in response.content


class SpyReader:
    """A reader that counts payload reads: decryption happens there, so it must not run unless allowed."""

    def __init__(self, archive: SqliteRawArchive) -> None:
        self.archive = archive
        self.payload_reads = 0

    async def record(self, raw_ref: str) -> RawRecord:
        return await archive_reader(self.archive).record(raw_ref)

    async def payload(self, raw_ref: str) -> bytes:
        self.payload_reads += 1
        return await self.archive.payload(raw_ref)


class TestRawRoles:
    """Who may see raw messages: every attempt is on the ledger, bytes only for auditor and admin."""

    @pytest.fixture
    def keyed(self, tmp_path: Path) -> KeyStore:
        return KeyStore(make_engine(f"sqlite:///{tmp_path / 'keys.db'}"))

    def app(self, keys: KeyStore, reader: SpyReader, recorder: Recorder) -> FastAPI:
        app = FastAPI()
        app.state.security = Security(keys=keys, required=True, access_log=recorder)
        app.include_router(build_router(reader))
        return app

    @pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
    async def test_auditor_and_admin_get_the_bytes_and_the_read_is_recorded(
        self, archive: SqliteRawArchive, keyed: KeyStore, role: Role
    ) -> None:
        """200 with the exact bytes; one allowed raw.read event naming the key, its role and the ref."""
        ref = await store(archive)
        info, token = keyed.create(role, label="审计科")
        recorder, reader = Recorder(), SpyReader(archive)
        async with client(self.app(keyed, reader, recorder)) as http:
            response = await http.get(
                f"/raw/{ref}",
                headers={"Authorization": f"Bearer {token}", "X-Hub-Purpose": "DRG%E6%A0%B8%E6%9F%A5"},
            )
        assert response.status_code == 200
        assert response.content == PAYLOAD
        [event] = recorder.events
        assert (event.payload.key_id, event.payload.role, event.payload.action) == (
            info.key_id,
            role.value,
            "raw.read",
        )
        assert (event.payload.resource, event.payload.outcome) == (ref, "allowed")
        assert event.payload.purpose == "DRG核查"
        assert token not in event.model_dump_json()

    async def test_integrator_sees_what_a_message_is_but_not_its_bytes(
        self, archive: SqliteRawArchive, keyed: KeyStore
    ) -> None:
        """HEAD answers the headers; GET is 403; the payload (and its decryption) is never read; both recorded."""
        ref = await store(archive)
        _, token = keyed.create(Role.INTEGRATOR)
        recorder, reader = Recorder(), SpyReader(archive)
        auth = {"Authorization": f"Bearer {token}"}
        async with client(self.app(keyed, reader, recorder)) as http:
            head = await http.head(f"/raw/{ref}", headers=auth)
            get = await http.get(f"/raw/{ref}", headers=auth)
        assert head.status_code == 200
        assert head.headers["x-hub-raw-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
        assert head.headers["x-hub-raw-size"] == str(len(PAYLOAD))
        assert get.status_code == 403
        assert PAYLOAD not in get.content
        assert reader.payload_reads == 0
        assert [(e.payload.action, e.payload.outcome) for e in recorder.events] == [
            ("raw.head", "allowed"),
            ("raw.read", "denied"),
        ]

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.APP])
    async def test_viewers_and_apps_may_not_even_ask(
        self, archive: SqliteRawArchive, keyed: KeyStore, role: Role
    ) -> None:
        """HEAD and GET are 403 and recorded as denied."""
        ref = await store(archive)
        _, token = keyed.create(role)
        recorder, reader = Recorder(), SpyReader(archive)
        async with client(self.app(keyed, reader, recorder)) as http:
            for method in ("HEAD", "GET"):
                response = await http.request(method, f"/raw/{ref}", headers={"X-API-Key": token})
                assert response.status_code == 403
        assert [e.payload.outcome for e in recorder.events] == ["denied", "denied"]
        assert reader.payload_reads == 0

    async def test_no_key_a_wrong_key_and_a_revoked_key_are_401(
        self, archive: SqliteRawArchive, keyed: KeyStore
    ) -> None:
        """Unauthenticated callers learn nothing, and their attempts do not fill the ledger."""
        ref = await store(archive)
        info, token = keyed.create(Role.AUDITOR)
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        recorder, reader = Recorder(), SpyReader(archive)
        async with client(self.app(keyed, reader, recorder)) as http:
            assert (await http.get(f"/raw/{ref}")).status_code == 401
            assert (await http.get(f"/raw/{ref}", headers={"X-API-Key": wrong})).status_code == 401
            assert (await http.get(f"/raw/{ref}", headers={"Authorization": "Basic eDp5"})).status_code == 401
            keyed.revoke(info.key_id)
            revoked = await http.get(f"/raw/{ref}", headers={"X-API-Key": token})
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["detail"]
        assert recorder.events == []

    async def test_a_failing_access_log_serves_nothing(
        self, archive: SqliteRawArchive, keyed: KeyStore
    ) -> None:
        """The ledger cannot record the read: 503, and the bytes are not sent."""
        ref = await store(archive)
        _, token = keyed.create(Role.AUDITOR)

        async def broken(_: EventBase) -> None:
            raise OSError("bus down")

        app = FastAPI()
        app.state.security = Security(keys=keyed, required=True, access_log=broken)
        app.include_router(build_router(SpyReader(archive)))
        async with client(app) as http:
            response = await http.get(f"/raw/{ref}", headers={"X-API-Key": token})
        assert response.status_code == 503
        assert PAYLOAD not in response.content
