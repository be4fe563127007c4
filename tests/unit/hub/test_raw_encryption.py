"""Raw payloads encrypted at rest with HUB_RAW_KEY: nothing readable on disk or on the raw topic."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from hub.errors import ArchiveError, ConfigError
from hub.ingest import archive as archive_mod
from hub.ingest.archive import SqliteRawArchive
from hub.ingest.crypto import RawCipher, is_encrypted, parse_key
from hub.ingest.rawtopic import decode_raw, encode_raw
from hub.ports import InboundMessage

PID = "PID|1||MR20240001^^^XXRMYY^MR||王小明||19650312|M".encode()


def message(payload: bytes) -> InboundMessage:
    return InboundMessage(system="his", payload=payload, transport="mllp", message_id="M1", site="main")


@pytest.fixture
def cipher() -> RawCipher:
    return RawCipher(os.urandom(32))


class TestEncryptedArchive:
    async def test_disk_holds_ciphertext_and_reads_give_plaintext(
        self, tmp_path: Path, cipher: RawCipher
    ) -> None:
        """The patient's name is nowhere in the database file; payload() returns the original bytes."""
        archive = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        outcome = await archive.store(message(PID))
        assert await archive.payload(outcome.record.raw_ref) == PID
        archive.close()
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert "王小明".encode() not in raw
        assert b"MR20240001" not in raw

    async def test_blobs_are_encrypted_too(
        self, tmp_path: Path, cipher: RawCipher, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A payload large enough for the blob store is ciphertext there, and still verified by sha256."""
        monkeypatch.setattr(archive_mod, "INLINE_LIMIT", 10)
        archive = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        outcome = await archive.store(message(PID))
        blob = tmp_path / "blobs" / outcome.record.sha256[:2] / outcome.record.sha256
        assert is_encrypted(blob.read_bytes())
        assert await archive.payload(outcome.record.raw_ref) == PID
        archive.close()

    async def test_raw_topic_carries_ciphertext_that_the_worker_can_open(
        self, tmp_path: Path, cipher: RawCipher
    ) -> None:
        """What the relay publishes is encrypted; the archive reveals it for the translator."""
        archive = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        await archive.store(message(PID))
        [(record, stored)] = await archive.unpublished()
        assert stored is not None
        assert b"MR20240001" not in encode_raw(record, stored).value
        _, from_topic = decode_raw(encode_raw(record, stored).value)
        assert from_topic is not None
        assert archive.reveal(record.raw_ref, from_topic) == PID
        archive.close()

    async def test_without_the_key_nothing_is_revealed(self, tmp_path: Path, cipher: RawCipher) -> None:
        """An archive opened without HUB_RAW_KEY refuses to hand out encrypted payloads."""
        first = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        ref = (await first.store(message(PID))).record.raw_ref
        first.close()
        keyless = SqliteRawArchive(tmp_path / "archive.db")
        with pytest.raises(ArchiveError, match="HUB_RAW_KEY"):
            await keyless.payload(ref)
        keyless.close()
        wrong = SqliteRawArchive(tmp_path / "archive.db", cipher=RawCipher(os.urandom(32)))
        with pytest.raises(ArchiveError, match="does not decrypt"):
            await wrong.payload(ref)
        wrong.close()

    async def test_ciphertext_is_bound_to_its_record(self, tmp_path: Path, cipher: RawCipher) -> None:
        """Copying one record's ciphertext into another record is detected, not silently decrypted."""
        archive = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        a = (await archive.store(message(PID))).record.raw_ref
        b = (await archive.store(message(PID + b"2"))).record.raw_ref
        archive.close()
        db = sqlite3.connect(tmp_path / "archive.db")
        db.execute(
            "UPDATE raw_messages SET payload = (SELECT payload FROM raw_messages WHERE raw_ref = ?) "
            "WHERE raw_ref = ?",
            (a, b),
        )
        db.commit()
        db.close()
        again = SqliteRawArchive(tmp_path / "archive.db", cipher=cipher)
        with pytest.raises(ArchiveError):
            await again.payload(b)
        again.close()


class TestKeys:
    def test_hex_and_base64_keys_are_accepted(self) -> None:
        """A 32-byte key is read from hex or base64; anything else is refused naming the setting."""
        import base64

        key = os.urandom(32)
        assert parse_key(key.hex()) == key
        assert parse_key(base64.b64encode(key).decode()) == key
        with pytest.raises(ConfigError, match="HUB_RAW_KEY"):
            parse_key("too-short")
