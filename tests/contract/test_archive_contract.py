"""One contract for hub.ports.RawArchive, run against every archive backend.

A backend is a `Backend`: how to open (and reopen) an archive on the same storage, with or
without an encryption key, and every byte it keeps at rest. To add one, write its opener and add
one line to `BACKENDS`; every case below then runs against it too (SQLite and PostgreSQL today).

Cases: store and read back byte for byte; exact resends recognised (dedup) with the saved answer
returned; the same source key with other bytes stored and flagged as a conflict; status
transitions and the reconciliation they add up to; the retry listing; encryption at rest;
durability across a reopen; the outbox; size limits; concurrent stores, within one archive and
from two archives on the same storage; a store that cannot be written raises and never hangs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from hub.errors import ArchiveError, NotStored
from hub.ingest.archive import SqliteRawArchive
from hub.ingest.crypto import RawCipher
from hub.ingest.pgarchive import PostgresRawArchive
from hub.ports import RAW_STATUSES, InboundMessage, RawArchive, RawQuery, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MiB = 1024 * 1024
LIMIT = 3 * MiB  # the size limit every backend under test is opened with
# Patient data, as an HL7 PID segment carries it: must never be readable at rest with a key set.
PID = "MSH|^~\\&|HIS|H1|HUB|H1|20240601||ADT^A01|M1|P|2.5\rPID|1||MR20240001^^^XX^MR||王小明||19650312|M\r"
SECRET_MARKERS = ("王小明".encode(), b"MR20240001")


@dataclass
class Backend:
    """An archive backend under test. `open` may be called again: it reopens the same storage."""

    name: str
    open_archive: Callable[[RawCipher | None], RawArchive]
    at_rest: Callable[[], bytes]  # every byte the backend keeps, as stored
    opened: list[RawArchive] = field(default_factory=list)

    def open(self, cipher: RawCipher | None = None) -> RawArchive:
        archive = self.open_archive(cipher)
        self.opened.append(archive)
        return archive


def sqlite_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    root = tmp_path / "archive"

    def at_rest() -> bytes:
        return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())

    return Backend(
        "sqlite",
        lambda cipher: SqliteRawArchive(root / "archive.db", cipher=cipher, max_bytes=LIMIT),
        at_rest,
    )


def postgres_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    url = str(request.getfixturevalue("pg_url"))  # a fresh database for this test

    def at_rest() -> bytes:
        # Every value of every row of the archive's tables, as the server hands them back.
        engine = create_engine(url)
        out = bytearray()
        with engine.connect() as conn:
            for table in ("hub_raw_messages", "hub_raw_source_keys"):
                for row in conn.execute(text(f"SELECT * FROM {table}")):  # nosec B608
                    for value in row:
                        out += value if isinstance(value, bytes) else str(value).encode()
        engine.dispose()
        return bytes(out)

    return Backend(
        "postgres", lambda cipher: PostgresRawArchive(url, cipher=cipher, max_bytes=LIMIT), at_rest
    )


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
}


@pytest.fixture(
    params=[
        pytest.param(n, marks=[pytest.mark.postgres] if n == "postgres" else []) for n in sorted(BACKENDS)
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = BACKENDS[request.param](tmp_path, request)
    yield b
    for archive in reversed(b.opened):
        archive.close()


@pytest.fixture
def archive(backend: Backend) -> RawArchive:
    return backend.open()


@pytest.fixture
def cipher() -> RawCipher:
    return RawCipher(os.urandom(32))


def msg(
    payload: bytes | str,
    *,
    system: str = "his",
    message_id: str = "M1",
    transport: str = "mllp",
    metadata: dict[str, str] | None = None,
    received_at: datetime | None = None,
) -> InboundMessage:
    return InboundMessage(
        system=system,
        payload=payload.encode() if isinstance(payload, str) else payload,
        transport=transport,
        message_id=message_id,
        site="main",
        metadata=metadata or {},
        received_at=received_at,
    )


async def _finish(archive: RawArchive, raw_ref: str, status: str, *, error: str | None = None) -> None:
    await archive.set_status(
        raw_ref, status=status, events=2, failures=1, skipped=0, units=3, mapping_version="m1", error=error
    )


# -- store and read back ---------------------------------------------------------------------------


async def test_stored_bytes_come_back_exactly_with_their_provenance(archive: RawArchive) -> None:
    payload = "资产编号,资产名称\r\nZC-1,呼吸机\r\n".encode("gbk")
    at = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    outcome = await archive.store(
        msg(
            payload,
            system="hrp",
            message_id="a.csv",
            transport="file",
            metadata={"filename": "a.csv"},
            received_at=at,
        )
    )
    record = outcome.record
    assert (outcome.duplicate, outcome.conflict_with, outcome.answer) == (False, None, None)
    assert record.sha256 == hashlib.sha256(payload).hexdigest()
    assert (record.system, record.site, record.message_id, record.transport) == (
        "hrp",
        "main",
        "a.csv",
        "file",
    )
    assert (record.size, record.received_at, dict(record.metadata)) == (
        len(payload),
        at,
        {"filename": "a.csv"},
    )
    assert await archive.get(record.raw_ref) == record
    assert await archive.lookup(record.raw_ref) == record
    assert await archive.payload(record.raw_ref) == payload


async def test_an_unknown_reference_is_an_archive_error(archive: RawArchive) -> None:
    assert await archive.lookup("his:nope") is None
    with pytest.raises(ArchiveError, match="his:nope"):
        await archive.get("his:nope")
    with pytest.raises(ArchiveError, match="his:nope"):
        await archive.payload("his:nope")
    assert await archive.status("his:nope") is None


async def test_received_at_defaults_to_now_in_utc(archive: RawArchive) -> None:
    before = datetime.now(UTC)
    record = (await archive.store(msg(PID))).record
    assert record.received_at.tzinfo is not None
    assert before <= record.received_at <= datetime.now(UTC)


# -- resends, answers, conflicts -------------------------------------------------------------------


async def test_an_exact_resend_returns_the_first_record_and_is_counted(archive: RawArchive) -> None:
    first = await archive.store(msg(PID, message_id="M1"))
    again = await archive.store(msg(PID, message_id="renamed", transport="file"))
    assert again.duplicate
    assert again.record == first.record  # the first arrival's record, not the resend's metadata
    assert (await archive.reconciliation())["his"]["received"] == 1
    assert (await archive.reconciliation())["his"]["resends"] == 1


async def test_the_same_bytes_from_another_system_are_another_message(archive: RawArchive) -> None:
    a = await archive.store(msg(PID, system="his"))
    b = await archive.store(msg(PID, system="fhir"))
    assert not b.duplicate
    assert a.record.raw_ref != b.record.raw_ref


async def test_the_answer_stored_with_the_message_is_returned_on_resend(archive: RawArchive) -> None:
    ack = b"MSH|^~\\&|HUB|H1|HIS|H1|20240601||ACK|A1|P|2.5\rMSA|AA|M1\r"
    await archive.store(msg(PID), key="HIS|H1|M1", answer=ack)
    again = await archive.store(msg(PID), key="HIS|H1|M1", answer=b"another answer")
    assert again.duplicate
    assert again.answer == ack  # the first answer is kept: the sender hears the same thing twice


async def test_an_answer_saved_after_storing_is_returned_on_resend(archive: RawArchive) -> None:
    first = await archive.store(msg(PID))
    assert first.answer is None
    await archive.save_answer(first.record.raw_ref, b"MSA|AE|M1")
    assert (await archive.store(msg(PID))).answer == b"MSA|AE|M1"
    await archive.save_answer(first.record.raw_ref, b"MSA|AA|M1")  # a retry that now applies
    assert (await archive.store(msg(PID))).answer == b"MSA|AA|M1"


async def test_saving_an_answer_for_an_unknown_message_is_an_error(archive: RawArchive) -> None:
    """An answer with nothing to attach to means the caller lost track of what it stored."""
    with pytest.raises(ArchiveError, match="his:nope"):
        await archive.save_answer("his:nope", b"MSA|AA|M1")


async def test_the_same_key_with_other_bytes_is_stored_and_flagged(archive: RawArchive) -> None:
    first = await archive.store(msg(PID), key="HIS|H1|M1")
    other = await archive.store(msg(PID + "NTE|1||changed\r"), key="HIS|H1|M1")
    assert not other.duplicate
    assert other.conflict_with == first.record.raw_ref
    assert other.record.metadata["conflict_with"] == first.record.raw_ref  # travels with the record
    assert (await archive.get(other.record.raw_ref)).metadata["conflict_with"] == first.record.raw_ref
    assert await archive.payload(other.record.raw_ref) == (PID + "NTE|1||changed\r").encode()
    # A third version conflicts with the first one archived under the key.
    third = await archive.store(msg(PID + "NTE|1||again\r"), key="HIS|H1|M1")
    assert third.conflict_with == first.record.raw_ref
    # Keys are per system, and a message without a key never conflicts.
    assert (await archive.store(msg(PID + "X", system="fhir"), key="HIS|H1|M1")).conflict_with is None
    assert (await archive.store(msg(PID + "Y"))).conflict_with is None


# -- status, reconciliation, retry listing ---------------------------------------------------------


async def test_status_moves_from_pending_and_adds_up(archive: RawArchive) -> None:
    refs = [(await archive.store(msg(f"{PID}{i}", message_id=f"M{i}"))).record.raw_ref for i in range(4)]
    fhir = (await archive.store(msg(PID, system="fhir"))).record.raw_ref
    status = await archive.status(refs[0])
    assert status is not None
    assert (status.status, status.events, status.failures, status.error) == ("pending", 0, 0, None)

    await _finish(archive, refs[0], "translated")
    await _finish(archive, refs[1], "dead_lettered", error="no MSH segment")
    await _finish(archive, fhir, "dead_lettered", error="bad")
    done = await archive.status(refs[0])
    failed = await archive.status(refs[1])
    assert done is not None
    assert failed is not None
    assert (done.status, done.events, done.failures, done.units) == ("translated", 2, 1, 3)
    assert (failed.status, failed.error) == ("dead_lettered", "no MSH segment")

    recon = (await archive.reconciliation())["his"]
    assert (recon["received"], recon["translated"], recon["dead_lettered"], recon["pending"]) == (4, 1, 1, 2)
    assert recon["received"] == sum(recon[s] for s in RAW_STATUSES)

    # The retry listing: by status, optionally by system, in arrival order.
    assert await archive.refs_with_status("pending") == refs[2:]
    assert await archive.refs_with_status("dead_lettered") == [refs[1], fhir]
    assert await archive.refs_with_status("dead_lettered", "fhir") == [fhir]

    # A retry that now translates: dead_lettered -> translated, the error cleared.
    await _finish(archive, refs[1], "translated")
    retried = await archive.status(refs[1])
    assert retried is not None
    assert (retried.status, retried.error) == ("translated", None)
    assert await archive.refs_with_status("dead_lettered", "his") == []


async def test_field_accounting_is_kept_with_the_status_and_replaced_on_retry(archive: RawArchive) -> None:
    """The accounting (counts only, Chinese column names intact) travels with the status."""
    ref = (await archive.store(msg(PID))).record.raw_ref
    before = await archive.status(ref)
    assert before is not None
    assert before.accounting is None
    tally = {"rows": 3, "cells": 20, "claimed": 15, "ignored": 3, "unclaimed": {"供应商联系人": 2}}
    await archive.set_status(
        ref,
        status="translated",
        events=3,
        failures=0,
        skipped=0,
        units=3,
        mapping_version="m1",
        accounting=tally,
    )
    kept = await archive.status(ref)
    assert kept is not None
    assert kept.accounting == tally
    # A retry under a mapping that claims the column replaces it; one without accounting clears it.
    fixed = {**tally, "claimed": 17, "unclaimed": {}}
    await archive.set_status(
        ref,
        status="translated",
        events=3,
        failures=0,
        skipped=0,
        units=3,
        mapping_version="m2",
        accounting=fixed,
    )
    again = await archive.status(ref)
    assert again is not None
    assert again.accounting == fixed
    await _finish(archive, ref, "translated")
    cleared = await archive.status(ref)
    assert cleared is not None
    assert cleared.accounting is None


async def test_an_unknown_status_is_refused(archive: RawArchive) -> None:
    ref = (await archive.store(msg(PID))).record.raw_ref
    with pytest.raises(ValueError, match="done"):
        await _finish(archive, ref, "done")
    status = await archive.status(ref)
    assert status is not None
    assert status.status == "pending"


async def test_a_status_for_an_unknown_message_creates_nothing(archive: RawArchive) -> None:
    """A translator may work on a raw record another node archived (Kafka): no error, no phantom row."""
    await _finish(archive, "his:nope", "translated")
    assert await archive.status("his:nope") is None
    assert await archive.reconciliation() == {}


# -- encryption at rest ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [len(PID), 2 * MiB], ids=["inline", "large"])
async def test_with_a_key_no_payload_byte_is_readable_at_rest(
    backend: Backend, cipher: RawCipher, size: int
) -> None:
    payload = PID.encode().ljust(size, b"#")
    archive = backend.open(cipher)
    ref = (await archive.store(msg(payload))).record.raw_ref
    assert await archive.payload(ref) == payload
    [(record, stored)] = await archive.unpublished()
    if stored is not None:  # what the relay publishes: ciphertext the worker can open
        assert all(m not in stored for m in SECRET_MARKERS)
        assert archive.reveal(record.raw_ref, stored) == payload
    archive.close()
    kept = backend.at_rest()
    assert kept, "the backend reported nothing at rest"
    for marker in SECRET_MARKERS:
        assert marker not in kept, f"{marker!r} is readable at rest"
    assert (await backend.open(cipher).payload(ref)) == payload  # and it reopens with the key


async def test_without_a_key_encrypted_payloads_are_refused_not_garbled(
    backend: Backend, cipher: RawCipher
) -> None:
    archive = backend.open(cipher)
    ref = (await archive.store(msg(PID))).record.raw_ref
    archive.close()
    with pytest.raises(ArchiveError, match="HUB_RAW_KEY"):
        await backend.open(None).payload(ref)
    with pytest.raises(ArchiveError, match="HUB_RAW_KEY"):
        await backend.open(RawCipher(os.urandom(32))).payload(ref)


async def test_without_a_key_payloads_are_kept_as_sent(backend: Backend) -> None:
    """The control for the test above: with no key the marker is at rest, so that test can fail."""
    archive = backend.open()
    await archive.store(msg(PID))
    archive.close()
    assert SECRET_MARKERS[0] in backend.at_rest()


# -- durability ------------------------------------------------------------------------------------


async def test_everything_survives_closing_and_reopening(backend: Backend) -> None:
    archive = backend.open()
    small = await archive.store(msg(PID), key="HIS|H1|M1", answer=b"ACK-1")
    large = await archive.store(msg(b"L" * (2 * MiB), system="hrp", transport="file"))
    await _finish(archive, small.record.raw_ref, "translated")
    await archive.mark_published([small.record.raw_ref])
    archive.close()

    again = backend.open()
    assert await again.get(small.record.raw_ref) == small.record
    assert await again.payload(small.record.raw_ref) == PID.encode()
    assert await again.payload(large.record.raw_ref) == b"L" * (2 * MiB)
    status = await again.status(small.record.raw_ref)
    assert status is not None
    assert status.status == "translated"
    assert [r.raw_ref for r, _ in await again.unpublished()] == [large.record.raw_ref]
    resend = await again.store(msg(PID), key="HIS|H1|M1")
    assert (resend.duplicate, resend.answer) == (True, b"ACK-1")
    conflict = await again.store(msg(PID + "Z"), key="HIS|H1|M1")
    assert conflict.conflict_with == small.record.raw_ref


async def test_a_closed_archive_refuses_to_store(backend: Backend) -> None:
    archive = backend.open()
    archive.close()
    with pytest.raises(NotStored, match="M1"):
        await asyncio.wait_for(archive.store(msg(PID)), 10)


# -- the outbox ------------------------------------------------------------------------------------


async def test_the_outbox_gives_the_oldest_first_until_published(archive: RawArchive) -> None:
    refs = [(await archive.store(msg(f"{PID}{i}", message_id=f"M{i}"))).record.raw_ref for i in range(5)]
    await archive.store(msg(f"{PID}0", message_id="M0"))  # a resend is not published twice
    assert [r.raw_ref for r, _ in await archive.unpublished(limit=3)] == refs[:3]
    await archive.mark_published(refs[:2])
    pending = await archive.unpublished()
    assert [r.raw_ref for r, _ in pending] == refs[2:]
    for record, stored in pending:
        assert stored is not None
        assert archive.reveal(record.raw_ref, stored) == await archive.payload(record.raw_ref)
    await archive.mark_published(refs)
    assert await archive.unpublished() == []


# -- size limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB, MiB + 1, LIMIT], ids=["empty", "1B", "1MiB", "1MiB+1", "limit"])
async def test_every_size_up_to_the_limit_round_trips(archive: RawArchive, size: int) -> None:
    payload = hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1)
    payload = payload[:size]
    record = (await archive.store(msg(payload, system="hrp", transport="file"))).record
    assert record.size == size
    assert record.sha256 == hashlib.sha256(payload).hexdigest()
    assert await archive.payload(record.raw_ref) == payload


async def test_a_payload_over_the_limit_is_refused_and_nothing_is_kept(archive: RawArchive) -> None:
    with pytest.raises(NotStored, match=r"big\.csv.*3,145,729 bytes.*3,145,728"):
        await archive.store(msg(b"x" * (LIMIT + 1), system="hrp", message_id="big.csv", transport="file"))
    assert await archive.reconciliation() == {}
    assert await archive.unpublished() == []


# -- concurrency -----------------------------------------------------------------------------------


async def test_concurrent_stores_each_land_once(archive: RawArchive) -> None:
    """200 stores at once, 50 of them resends of others in flight: 150 records, each resend flagged."""
    distinct = [f"{PID}{i}" for i in range(150)]
    sends = [*distinct, *distinct[:50]]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(archive.store(msg(p, message_id=f"M{i}")) for i, p in enumerate(sends))), 60
    )
    refs = {o.record.raw_ref for o in outcomes}
    assert len(refs) == 150
    assert sum(o.duplicate for o in outcomes) == 50
    recon = (await archive.reconciliation())["his"]
    assert (recon["received"], recon["resends"]) == (150, 50)
    for o in outcomes[:150:37]:
        assert await archive.payload(o.record.raw_ref) == sends[outcomes.index(o)].encode()


async def test_concurrent_versions_of_one_key_conflict_with_exactly_one(archive: RawArchive) -> None:
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(archive.store(msg(f"{PID}v{i}"), key="HIS|H1|M1") for i in range(10))), 60
    )
    originals = [o for o in outcomes if o.conflict_with is None]
    assert len(originals) == 1
    assert {o.conflict_with for o in outcomes if o is not originals[0]} == {originals[0].record.raw_ref}


async def test_two_archives_on_one_storage_store_concurrently(backend: Backend) -> None:
    """Two processes' archives (two handles here) share the storage: one record per content."""
    a, b = backend.open(), backend.open()
    payloads = [f"{PID}{i}" for i in range(40)]
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(a.store(msg(p)) for p in payloads),
            *(b.store(msg(p)) for p in payloads),
        ),
        60,
    )
    assert len({o.record.raw_ref for o in outcomes}) == 40
    assert sum(o.duplicate for o in outcomes) == 40
    assert (await a.reconciliation())["his"]["received"] == 40


async def test_one_bad_message_fails_alone_and_never_hangs(archive: RawArchive) -> None:
    """A message the backend cannot write fails with NotStored; the others stored with it are kept."""
    bad = msg(PID + "bad", metadata={"filename": b"not text"})  # type: ignore[dict-item]
    results = await asyncio.wait_for(
        asyncio.gather(
            *(archive.store(msg(f"{PID}{i}", message_id=f"M{i}")) for i in range(5)),
            archive.store(bad),
            *(archive.store(msg(f"{PID}{i}", message_id=f"M{i}")) for i in range(5, 10)),
            return_exceptions=True,
        ),
        30,
    )
    assert isinstance(results[5], NotStored)
    good = [r for i, r in enumerate(results) if i != 5]
    assert all(not isinstance(r, BaseException) for r in good), good
    assert (await archive.reconciliation())["his"]["received"] == 10
    assert (await archive.store(msg(PID))).record.sha256  # and the archive still works


# -- the message browser (GET /messages) and the readiness probe ---------------------------------


async def _browse_fixture(archive: RawArchive) -> list[str]:
    """Five messages: three HL7 over MLLP (two types), two files; stored oldest first."""
    day = datetime(2024, 6, 1, tzinfo=UTC)
    specs = [
        ("his", "MSG-1", "mllp", {"message_type": "DFT^P03"}, 8),
        ("his", "MSG-2", "mllp", {"message_type": "ADT^A01"}, 9),
        ("hrp", "台账_2024.csv", "file", {"filename": "台账_2024.csv"}, 10),
        ("his", "MSG-3", "mllp", {"message_type": "DFT^P03"}, 11),
        ("spd", "50%_off.csv", "file", {"filename": "50%_off.csv"}, 12),
    ]
    refs = []
    for system, mid, transport, meta, hour in specs:
        out = await archive.store(
            msg(
                f"payload {mid}",
                system=system,
                message_id=mid,
                transport=transport,
                metadata=meta,
                received_at=day.replace(hour=hour),
            )
        )
        refs.append(out.record.raw_ref)
    return refs


async def _ids(archive: RawArchive, **filters: object) -> tuple[list[str], int]:
    found, total = await archive.browse(RawQuery(**filters))  # type: ignore[arg-type]
    return [s.record.message_id for s in found], total


async def test_browse_lists_newest_first_with_a_total_over_all_pages(archive: RawArchive) -> None:
    await _browse_fixture(archive)
    assert await _ids(archive) == (["50%_off.csv", "MSG-3", "台账_2024.csv", "MSG-2", "MSG-1"], 5)
    assert await _ids(archive, limit=2, offset=2) == (["台账_2024.csv", "MSG-2"], 5)
    assert await _ids(archive, limit=2, offset=10) == ([], 5)


async def test_browse_filters_hold_together(archive: RawArchive) -> None:
    refs = await _browse_fixture(archive)
    await _finish(archive, refs[1], "dead_lettered", error="bad PV1")
    assert await _ids(archive, system="his") == (["MSG-3", "MSG-2", "MSG-1"], 3)
    assert await _ids(archive, message_type="DFT^P03") == (["MSG-3", "MSG-1"], 2)
    assert await _ids(archive, status="dead_lettered") == (["MSG-2"], 1)
    assert await _ids(archive, status="pending", system="his") == (["MSG-3", "MSG-1"], 2)
    assert await _ids(archive, control_id="MSG-2") == (["MSG-2"], 1)
    window = {
        "received_from": datetime(2024, 6, 1, 9, tzinfo=UTC),
        "received_to": datetime(2024, 6, 1, 11, tzinfo=UTC),
    }
    assert await _ids(archive, **window) == (["台账_2024.csv", "MSG-2"], 2)
    # The same instant written in another zone is the same window.
    assert await _ids(archive, received_from=datetime.fromisoformat("2024-06-01T19:00:00+08:00")) == (
        ["50%_off.csv", "MSG-3"],
        2,
    )
    assert await _ids(archive, text="MSG-") == (["MSG-3", "MSG-2", "MSG-1"], 3)
    # LIKE's wildcards in the text are literal: "50%" finds the file named so, not every "50".
    assert await _ids(archive, text="50%_") == (["50%_off.csv"], 1)
    assert await _ids(archive, text="nothing like it") == ([], 0)
    (dead,) = (await archive.browse(RawQuery(status="dead_lettered")))[0]
    assert (dead.status, dead.events, dead.failures, dead.error) == ("dead_lettered", 2, 1, "bad PV1")


async def test_browse_keeps_only_the_given_refs(archive: RawArchive) -> None:
    """A department-scoped caller's refs: only those, paged and counted; none given, nothing."""
    refs = await _browse_fixture(archive)
    assert await _ids(archive, refs=[refs[0], refs[3], "his:unknown"]) == (["MSG-3", "MSG-1"], 2)
    assert await _ids(archive, refs=[refs[0], refs[3]], limit=1, offset=1) == (["MSG-1"], 2)
    assert await _ids(archive, refs=[]) == ([], 0)


async def test_the_answer_kept_for_a_message_is_read_back(archive: RawArchive) -> None:
    out = await archive.store(msg(PID), answer=b"MSH|...\rMSA|AA|M1\r")
    other = await archive.store(msg("no answer", message_id="M2"))
    assert await archive.answer(out.record.raw_ref) == b"MSH|...\rMSA|AA|M1\r"
    assert await archive.answer(other.record.raw_ref) is None
    assert await archive.answer("his:unknown") is None


async def test_an_open_archive_is_writable_and_a_closed_one_is_not(backend: Backend) -> None:
    archive = backend.open()
    await archive.writable()
    archive.close()
    with pytest.raises(Exception):  # noqa: B017 - any error: readiness reports it as the reason
        await archive.writable()


async def test_the_total_is_counted_up_to_the_count_limit(archive: RawArchive) -> None:
    """Past count_limit the total says "at least": counting millions would cost more than the page."""
    await _browse_fixture(archive)
    assert await _ids(archive, limit=1, count_limit=3) == (["50%_off.csv"], 3)
    assert await _ids(archive, system="his", limit=1, count_limit=10) == (["MSG-3"], 3)


# -- per-channel counts (hub.ingest.channel_counts) ----------------------------------------------


class TestChannelCounts:
    async def test_counts_follow_stores_answers_and_status_moves_and_survive_a_reopen(
        self, backend: Backend
    ) -> None:
        """Received, bytes, ACK codes and each message's status move exactly, and read the same after a reopen."""
        archive = backend.open()
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        ok = await archive.store(msg("MSH|a", message_id="A", received_at=at), answer=b"MSH|x\rMSA|AA|A\r")
        bad = await archive.store(msg("MSH|b", message_id="B", received_at=at))
        archive.note_answer(bad.record.raw_ref, b"MSH|x\rMSA|AE|B\r")
        await archive.store(msg("MSH|a", message_id="A", received_at=at))  # an exact resend
        export = await archive.store(msg("a,b\n1,2\n", system="hrp", transport="file", message_id="f.csv"))
        await _finish(archive, bad.record.raw_ref, "dead_lettered", error="EQU-3 unknown")
        await _finish(archive, export.record.raw_ref, "dead_lettered")
        await _finish(archive, export.record.raw_ref, "translated")  # retried after a mapping fix
        counts = {(c.system, c.transport): c for c in await archive.channel_counts()}
        his = counts["his", "mllp"]
        assert (his.received, his.bytes, his.resends) == (2, 10, 1)
        assert (his.ack_aa, his.ack_ae, his.ack_ar) == (1, 1, 0)
        assert (his.pending, his.translated, his.dead_lettered) == (1, 0, 1)
        assert his.last_error == "EQU-3 unknown"
        assert his.last_received_at == at
        hrp = counts["hrp", "file"]
        assert (hrp.received, hrp.dead_lettered, hrp.translated) == (1, 0, 1)
        assert (hrp.ever_dead_lettered, hrp.ever_translated) == (1, 1)
        minutes = [m for m in await archive.channel_minutes(at.replace(second=0)) if m.system == "his"]
        # Received in the minute of receipt; dead-lettered in the minute it was processed (now).
        assert [(m.minute, m.received) for m in minutes if m.received] == [(at.replace(second=0), 2)]
        assert sum(m.dead_lettered for m in minutes) == 1
        assert ok.record.raw_ref != bad.record.raw_ref
        archive.close()
        reopened = backend.open()
        again = {(c.system, c.transport): c for c in await reopened.channel_counts()}
        assert again == counts

    async def test_listener_reports_are_kept_per_process(self, archive: RawArchive) -> None:
        """A process's report replaces its previous one; two processes keep one row each."""
        from hub.ingest.channel_counts import ListenerReport

        now = datetime.now(UTC)
        await archive.report_listeners([ListenerReport("his", "mllp", "a:1", "listening", None, now)])
        await archive.report_listeners([ListenerReport("his", "mllp", "a:1", "stopped", None, now)])
        await archive.report_listeners([ListenerReport("his", "mllp", "b:2", "listening", None, now)])
        found = sorted((r.node, r.state) for r in await archive.channel_listeners())
        assert found == [("a:1", "stopped"), ("b:2", "listening")]

    async def test_two_writers_on_one_archive_count_every_message_once(self, backend: Backend) -> None:
        """Two archives on one store (two processes, or two nodes on PostgreSQL) storing at once: exact counts."""
        first, second = backend.open(), backend.open()

        async def send(archive: RawArchive, name: str) -> None:
            for i in range(20):
                stored = await archive.store(msg(f"MSH|{name}-{i}", message_id=f"{name}-{i}"))
                await _finish(archive, stored.record.raw_ref, "translated" if i % 4 else "dead_lettered")

        await asyncio.gather(send(first, "a"), send(second, "b"), send(first, "c"), send(second, "d"))
        for archive in (first, second):
            (his,) = [c for c in await archive.channel_counts() if c.system == "his"]
            assert (his.received, his.translated, his.dead_lettered, his.pending) == (80, 60, 20, 0)
            assert his.bytes == sum(len(f"MSH|{n}-{i}") for n in "abcd" for i in range(20))


async def test_a_batch_of_statuses_is_kept_per_message(archive: RawArchive) -> None:
    """The translation worker's batch: each message gets its own outcome, a reference the archive
    does not hold is passed over (another node's record), and counts add up per status."""
    refs = [(await archive.store(msg(PID.replace("M1", f"M{i}")))).record.raw_ref for i in range(3)]
    await archive.set_statuses(
        [
            StatusUpdate(refs[0], "translated", 2, 0, 0, 2, "m1", accounting={"rows": 2}),
            StatusUpdate("his:" + "0" * 32, "translated", 1, 0, 0, 1, "m1"),
            StatusUpdate(refs[1], "dead_lettered", 0, 1, 0, 1, "m1", error="unreadable"),
        ]
    )
    first, second, third = [await archive.status(ref) for ref in refs]
    assert first is not None
    assert (first.status, first.events, first.accounting) == ("translated", 2, {"rows": 2})
    assert second is not None
    assert (second.status, second.failures, second.error) == ("dead_lettered", 1, "unreadable")
    assert third is not None
    assert third.status == "pending"
    counts = (await archive.reconciliation())["his"]
    assert (counts["translated"], counts["dead_lettered"], counts["pending"]) == (1, 1, 1)
    with pytest.raises(ValueError, match="unknown status"):
        await archive.set_statuses([StatusUpdate(refs[2], "done", 0, 0, 0, 0, None)])
