"""GET /raw/{ref}: the archived bytes exactly, described by X-Hub-Raw-* headers; 404, 500 and 503 when it cannot.

Through the real wiring (build_hub + build_api, keys required); the access log is kept here, and
the raw reader is replaced by a spy (FastAPI dependency override) where payload reads are counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from hub.api.deps import get_raw_reader
from hub.api.routes.raw import archive_reader
from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from hub.ingest.archive import SqliteRawArchive
from hub.ports import InboundMessage, RawRecord
from schemas.audit import AccessRecorded
from schemas.envelope import EventBase
from tests.e2e.conftest import Wired, wired_hub

PAYLOAD = "资产编号,资产名称\r\nZC-1,呼吸机\r\n".encode("gbk")  # GBK, as an HRP export often is


class Recorder:
    """An access log keeping what it was given (the real one publishes to audit.access.v1)."""

    def __init__(self) -> None:
        self.events: list[AccessRecorded] = []

    async def __call__(self, event: EventBase) -> None:
        assert isinstance(event, AccessRecorded)
        self.events.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def wired(tmp_path: Path, recorder: Recorder) -> AsyncIterator[Wired]:
    async with wired_hub(tmp_path / "hub", access_log=recorder) as w:
        yield w


@pytest.fixture
def archive(wired: Wired) -> SqliteRawArchive:
    return wired.hub.archive


@pytest.fixture
def keyed(wired: Wired) -> KeyStore:
    return wired.hub.keys


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


class TestRawRoute:
    async def test_returns_the_exact_bytes_with_their_provenance(
        self, wired: Wired, archive: SqliteRawArchive
    ) -> None:
        """The body is the archived payload byte for byte; headers give system, message id, sha256, receive time."""
        ref = await store(archive)
        record = await archive.get(ref)
        response = await wired.http.get(f"/raw/{ref}", headers=wired.auth(Role.ADMIN))
        assert response.status_code == 200
        assert response.content == PAYLOAD
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["x-hub-raw-system"] == "hrp"
        assert unquote(response.headers["x-hub-raw-message-id"]) == "固定资产台账_2024.csv"
        assert response.headers["x-hub-raw-sha256"] == hashlib.sha256(response.content).hexdigest()
        assert response.headers["x-hub-raw-received-at"] == record.received_at.isoformat()
        assert response.headers["cache-control"] == "no-store"

    async def test_an_unknown_reference_is_404(self, wired: Wired) -> None:
        """A reference the archive does not hold answers 404."""
        response = await wired.http.get("/raw/hrp:0000000000000000", headers=wired.auth(Role.ADMIN))
        assert response.status_code == 404

    async def test_bytes_that_fail_their_sha256_are_not_served(
        self, wired: Wired, archive: SqliteRawArchive
    ) -> None:
        """Payload altered in the archive after storing: 500, and the altered bytes are not sent."""
        ref = await store(archive)
        archive._conn.execute("UPDATE raw_messages SET payload = ? WHERE raw_ref = ?", (b"forged", ref))
        response = await wired.http.get(f"/raw/{ref}", headers=wired.auth(Role.ADMIN))
        assert response.status_code == 500
        assert b"forged" not in response.content


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


@pytest.fixture
def spy(wired: Wired, archive: SqliteRawArchive) -> SpyReader:
    reader = SpyReader(archive)
    wired.app.dependency_overrides[get_raw_reader] = lambda: reader
    return reader


class TestRawRoles:
    """Who may see raw messages: every attempt is on the ledger, bytes only for auditor and admin."""

    @pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
    async def test_auditor_and_admin_get_the_bytes_and_the_read_is_recorded(
        self, wired: Wired, keyed: KeyStore, spy: SpyReader, recorder: Recorder, role: Role
    ) -> None:
        """200 with the exact bytes; one allowed raw.read event naming the key, its role and the ref."""
        ref = await store(spy.archive)
        info, token = keyed.create(role, label="审计科")
        response = await wired.http.get(
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
        self, wired: Wired, keyed: KeyStore, spy: SpyReader, recorder: Recorder
    ) -> None:
        """HEAD answers the headers; GET is 403; the payload (and its decryption) is never read; both recorded."""
        ref = await store(spy.archive)
        _, token = keyed.create(Role.INTEGRATOR)
        auth = {"Authorization": f"Bearer {token}"}
        head = await wired.http.head(f"/raw/{ref}", headers=auth)
        get = await wired.http.get(f"/raw/{ref}", headers=auth)
        assert head.status_code == 200
        assert head.headers["x-hub-raw-sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
        assert head.headers["x-hub-raw-size"] == str(len(PAYLOAD))
        assert get.status_code == 403
        assert PAYLOAD not in get.content
        assert spy.payload_reads == 0
        assert [(e.payload.action, e.payload.outcome) for e in recorder.events] == [
            ("raw.head", "allowed"),
            ("raw.read", "denied"),
        ]

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.APP])
    async def test_viewers_and_apps_may_not_even_ask(
        self, wired: Wired, keyed: KeyStore, spy: SpyReader, recorder: Recorder, role: Role
    ) -> None:
        """HEAD and GET are 403 and recorded as denied."""
        ref = await store(spy.archive)
        _, token = keyed.create(role)
        for method in ("HEAD", "GET"):
            response = await wired.http.request(method, f"/raw/{ref}", headers={"X-API-Key": token})
            assert response.status_code == 403
        assert [e.payload.outcome for e in recorder.events] == ["denied", "denied"]
        assert spy.payload_reads == 0

    async def test_a_scoped_key_gets_404_for_a_message_it_cannot_be_given(
        self, wired: Wired, keyed: KeyStore, spy: SpyReader, recorder: Recorder
    ) -> None:
        """No event names a department for this message: a scoped auditor gets the 404 of an unknown
        ref, the payload is never read, and the attempt is recorded as denied."""
        ref = await store(spy.archive)
        _, token = keyed.create(Role.AUDITOR, department="重症医学科")
        response = await wired.http.get(f"/raw/{ref}", headers={"X-API-Key": token})
        unknown = await wired.http.get("/raw/hrp:0000000000000000", headers={"X-API-Key": token})
        assert (response.status_code, unknown.status_code) == (404, 404)
        assert spy.payload_reads == 0
        assert [(e.payload.resource, e.payload.outcome) for e in recorder.events] == [(ref, "denied")]

    async def test_no_key_a_wrong_key_and_a_revoked_key_are_401(
        self, wired: Wired, keyed: KeyStore, spy: SpyReader, recorder: Recorder
    ) -> None:
        """Unauthenticated callers learn nothing, and their attempts do not fill the ledger."""
        ref = await store(spy.archive)
        info, token = keyed.create(Role.AUDITOR)
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        http = wired.http
        assert (await http.get(f"/raw/{ref}")).status_code == 401
        assert (await http.get(f"/raw/{ref}", headers={"X-API-Key": wrong})).status_code == 401
        assert (await http.get(f"/raw/{ref}", headers={"Authorization": "Basic eDp5"})).status_code == 401
        keyed.revoke(info.key_id)
        revoked = await http.get(f"/raw/{ref}", headers={"X-API-Key": token})
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["detail"]
        assert recorder.events == []


async def test_a_failing_access_log_serves_nothing(tmp_path: Path) -> None:
    """The ledger cannot record the read: 503, and the bytes are not sent."""

    async def broken(_: EventBase) -> None:
        raise OSError("bus down")

    async with wired_hub(tmp_path / "hub", access_log=broken) as w:
        ref = await store(w.hub.archive)
        response = await w.http.get(f"/raw/{ref}", headers=w.auth(Role.AUDITOR))
    assert response.status_code == 503
    assert PAYLOAD not in response.content


async def test_head_shows_the_field_accounting_once_translated(
    wired: Wired, archive: SqliteRawArchive
) -> None:
    """A vendor column no field claims shows on HEAD (name percent-encoded, cell count), with the totals."""
    ledger = (
        "资产编号,资产名称,使用科室,资产状态,序号,供应商联系人\r\n"
        "ZC-1,呼吸机,ICU,在用,1,张三\r\n"
        "ZC-2,监护仪,ICU,在用,2,\r\n"
    ).encode()
    ref = await store(archive, ledger)
    auth = wired.auth(Role.INTEGRATOR)
    before = await wired.http.head(f"/raw/{ref}", headers=auth)
    assert "x-hub-raw-unclaimed-columns" not in before.headers  # not translated yet
    outcome = await wired.hub.workers["hrp"].process(await archive.get(ref))
    assert outcome.status == "translated"
    head = await wired.http.head(f"/raw/{ref}", headers=auth)
    assert head.status_code == 200
    assert head.headers["x-hub-raw-fields"] == "rows=2; cells=11; claimed=8; ignored=2; unclaimed=1"
    name, count = head.headers["x-hub-raw-unclaimed-columns"].split("=")
    assert (unquote(name), count) == ("供应商联系人", "1")
    status = await archive.status(ref)
    assert status is not None
    assert status.accounting == {
        "rows": 2, "cells": 11, "claimed": 8, "ignored": 2, "unclaimed": {"供应商联系人": 1}
    }  # fmt: skip


async def test_head_shows_the_field_accounting_of_an_hl7_message(
    wired: Wired, archive: SqliteRawArchive
) -> None:
    """HIS too: a vendor's Z-segment nothing reads shows on HEAD (and GET /messages/{ref}), field by field."""
    segments = [
        "MSH|^~\\&|HIS|XXRMYY|HUB|XXRMYY|20240616100000||DFT^P03|ACC-1|P|2.5",
        "PV1|1|I|ICU^01^01",
        "FT1|1|CHG-1||20240616093000||CG|HC0301^冠脉球囊扩张导管^LOCAL|||1|2680.00|2680.00|0101^重症医学科",
        "ZVD|供应商A|合同HT-2024-017",
    ]
    message = "".join(f"{s}\r" for s in segments).encode()
    stored = await archive.store(
        InboundMessage(system="his", payload=message, transport="mllp", message_id="ACC-1", site="main")
    )
    ref = stored.record.raw_ref
    outcome = await wired.hub.workers["his"].process(await archive.get(ref))
    assert outcome.status == "translated"
    head = await wired.http.head(f"/raw/{ref}", headers=wired.auth(Role.INTEGRATOR))
    assert head.headers["x-hub-raw-fields"].startswith("rows=1; ")
    assert head.headers["x-hub-raw-fields"].endswith("; unclaimed=2")
    assert head.headers["x-hub-raw-unclaimed-columns"] == "ZVD-1=1, ZVD-2=1"
    detail = await wired.http.get(f"/messages/{ref}", headers=wired.auth(Role.INTEGRATOR))
    assert detail.status_code == 200
    assert detail.json()["accounting"]["unclaimed"] == {"ZVD-1": 1, "ZVD-2": 1}
