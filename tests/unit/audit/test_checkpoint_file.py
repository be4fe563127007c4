"""Exported checkpoints: JSON, Ed25519 signatures checked before anything is trusted, keys outside the database."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from projections.audit.ledger import chain_heads, checkpoints
from replay.audit.checkpoint import (
    canonical_json,
    export_checkpoint,
    keygen,
    load_checkpoint,
    load_private_key,
)
from replay.audit.errors import CheckpointInvalid, KeyFileError
from tests.unit.audit.ledger_helpers import fill, place, stream

NOW = datetime(2024, 7, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def ledger(sqlite_engine: Engine) -> Engine:
    fill(sqlite_engine, place(stream(40)))
    return sqlite_engine


@pytest.fixture
def key(tmp_path: Path) -> Path:
    out = tmp_path / "keys" / "audit.key"
    out.parent.mkdir()
    keygen(out)
    return out


class TestExport:
    def test_checkpoint_lists_every_chain_head(self, ledger: Engine, tmp_path: Path) -> None:
        """The file names each chain's count and head hash, the site and the time, and the ledger records it."""
        path = export_checkpoint(ledger, tmp_path / "cp.json", site="east-campus", now=NOW)
        loaded = load_checkpoint(path)
        with ledger.connect() as conn:
            heads = chain_heads(conn)
            recorded = (
                conn.execute(select(checkpoints.c.count).where(checkpoints.c.created_at == NOW))
                .scalars()
                .all()
            )
        body = loaded.checkpoint
        assert (body.site, body.created_at) == ("east-campus", NOW)
        assert {(p.topic, p.partition): (p.count, p.head_hash) for p in body.partitions} == {
            tp: (h.count, h.head_hash) for tp, h in heads.items()
        }
        assert sorted(recorded) == sorted(h.count for h in heads.values())
        assert loaded.signature == "unsigned"

    def test_canonical_bytes_are_sorted_compact_utf8(self) -> None:
        """The signed encoding sorts keys, has no whitespace and keeps non-ASCII as UTF-8."""
        assert canonical_json({"b": 1, "a": "科室"}) == '{"a":"科室","b":1}'.encode()


class TestSignature:
    def test_signed_checkpoint_verifies_with_the_public_key(
        self, ledger: Engine, tmp_path: Path, key: Path
    ) -> None:
        """A checkpoint signed with the private key verifies against the matching public key."""
        path = export_checkpoint(ledger, tmp_path / "cp.json", signing_key=key)
        loaded = load_checkpoint(path, public_key=key.with_name("audit.key.pub"))
        assert loaded.signature == "verified"
        assert "verified" in loaded.describe()

    def test_signed_checkpoint_without_a_pinned_key_is_only_self_consistent(
        self, ledger: Engine, tmp_path: Path, key: Path
    ) -> None:
        """Without --public-key the signature is checked against the key in the file, and said to be so."""
        loaded = load_checkpoint(export_checkpoint(ledger, tmp_path / "cp.json", signing_key=key))
        assert loaded.signature == "self-consistent"
        assert "--public-key" in loaded.describe()

    def test_modified_checkpoint_fails(self, ledger: Engine, tmp_path: Path, key: Path) -> None:
        """Changing one head hash in a signed file makes its signature fail."""
        path = export_checkpoint(ledger, tmp_path / "cp.json", signing_key=key)
        doc = json.loads(path.read_text())
        head = doc["checkpoint"]["partitions"][0]["head_hash"]
        doc["checkpoint"]["partitions"][0]["head_hash"] = ("0" if head[0] != "0" else "1") + head[1:]
        path.write_text(json.dumps(doc))
        with pytest.raises(CheckpointInvalid, match="signature does not verify"):
            load_checkpoint(path, public_key=key.with_name("audit.key.pub"))
        with pytest.raises(CheckpointInvalid, match="signature does not verify"):
            load_checkpoint(path)

    def test_wrong_key_fails(self, ledger: Engine, tmp_path: Path, key: Path) -> None:
        """A checkpoint signed by another key does not verify with ours."""
        other = tmp_path / "other.key"
        keygen(other)
        path = export_checkpoint(ledger, tmp_path / "cp.json", signing_key=other)
        with pytest.raises(CheckpointInvalid, match="given public key"):
            load_checkpoint(path, public_key=key.with_name("audit.key.pub"))

    def test_unsigned_checkpoint_is_refused_when_a_key_is_given(
        self, ledger: Engine, tmp_path: Path, key: Path
    ) -> None:
        """Asking for a signature check on an unsigned file is a failure, not a pass."""
        path = export_checkpoint(ledger, tmp_path / "cp.json")
        with pytest.raises(CheckpointInvalid, match="not signed"):
            load_checkpoint(path, public_key=key.with_name("audit.key.pub"))

    def test_malformed_checkpoint_is_refused(self, tmp_path: Path) -> None:
        """A file that is not a checkpoint is refused with the reason."""
        path = tmp_path / "cp.json"
        path.write_text('{"checkpoint": {"site": "x"}, "signature": null}')
        with pytest.raises(CheckpointInvalid, match="malformed"):
            load_checkpoint(path)
        path.write_text("not json")
        with pytest.raises(CheckpointInvalid, match="not a readable JSON"):
            load_checkpoint(path)


class TestKeys:
    def test_keygen_writes_a_private_key_only_its_owner_can_read(self, key: Path) -> None:
        """The private key file is mode 0600 and the public key is written next to it."""
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.with_name("audit.key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
        load_private_key(key)

    def test_keygen_refuses_to_overwrite(self, key: Path) -> None:
        """An existing key file is never replaced."""
        before = key.read_bytes()
        with pytest.raises(KeyFileError, match="exists"):
            keygen(key)
        assert key.read_bytes() == before

    def test_key_readable_by_others_is_refused(self, key: Path) -> None:
        """A signing key that other users can read is not used."""
        key.chmod(0o644)
        with pytest.raises(KeyFileError, match="readable by other users"):
            load_private_key(key)

    def test_public_key_is_not_a_signing_key(self, key: Path) -> None:
        """Passing the public key where the private one is expected is refused clearly."""
        pub = key.with_name("audit.key.pub")
        pub.chmod(0o600)
        with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
            load_private_key(pub)
