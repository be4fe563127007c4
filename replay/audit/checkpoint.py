"""Exported ledger checkpoints: what the chains looked like at a moment, optionally signed (Ed25519).

File format (JSON, UTF-8):

    {"checkpoint": {"format": "hub-audit-checkpoint/1", "site": ..., "created_at": ...,
                    "chain": "<how entry hashes are computed>",
                    "partitions": [{"topic", "partition", "count", "head_hash",
                                    "marks": [{"count", "head_hash"}, ...]}, ...]},
     "signature": {"algorithm": "ed25519", "public_key": "<hex>", "value": "<hex>"} | null}

`marks` are the ledger's earlier checkpoints of that chain: with them a later verify can say
between which counts a rewritten chain first differs. The signed bytes are the canonical JSON
encoding of the "checkpoint" object: keys sorted, no whitespace (separators "," and ":"),
non-ASCII kept as UTF-8. The signing key lives in a file outside the database (0600); the
public key travels to whoever checks, separately from the checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from projections.audit.ledger import checkpoints, take_checkpoint
from projections.runtime.db import write_transaction
from replay.audit.errors import CheckpointInvalid, KeyFileError

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

CHAIN_RULE = (
    "entry_hash = SHA-256(prev_hash || SHA-256(entry_bytes) || record_hash), record_hash omitted when "
    "absent; first prev_hash = 32 zero bytes"
)
_UNSAFE_MODE_BITS = 0o077


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Mark(_Frozen):
    """The chain folded over its first `count` entries gives `head_hash`."""

    count: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class PartitionCheckpoint(_Frozen):
    topic: str
    partition: int = Field(ge=0)
    count: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    marks: tuple[Mark, ...] = ()

    def all_marks(self) -> tuple[Mark, ...]:
        """Earlier marks and the head, by count."""
        return (*sorted(self.marks, key=lambda m: m.count), Mark(count=self.count, head_hash=self.head_hash))


class Checkpoint(_Frozen):
    """The body of a checkpoint file: the part that is signed."""

    format: Literal["hub-audit-checkpoint/1"] = "hub-audit-checkpoint/1"
    site: str
    created_at: AwareDatetime
    chain: str = CHAIN_RULE
    partitions: tuple[PartitionCheckpoint, ...]

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


@dataclass(frozen=True, slots=True)
class LoadedCheckpoint:
    """A checkpoint read from a file, and what its signature check established."""

    checkpoint: Checkpoint
    signature: Literal["verified", "self-consistent", "unsigned"]
    signer: str | None  # hex public key of the signer, when signed

    def describe(self) -> str:
        if self.signature == "verified":
            return f"signature verified with the given public key {self.signer}"
        if self.signature == "self-consistent":
            return (
                f"signature matches the key embedded in the file ({self.signer}); "
                "pass --public-key to check who signed it"
            )
        return "unsigned checkpoint (anyone could have written it)"


def canonical_json(value: Any) -> bytes:
    """The one byte encoding that is signed and checked."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def export_checkpoint(
    engine: Engine,
    out: Path,
    *,
    signing_key: Path | None = None,
    site: str = "main",
    now: datetime | None = None,
    seal_key: bytes | None = None,
) -> Path:
    """Record a checkpoint of every chain in the ledger and write it to `out`, signed if a key is given.

    With `seal_key` the ledger also keeps the checkpoint itself, as signed mark seals."""
    created = now or datetime.now(UTC)
    key = load_private_key(signing_key) if signing_key is not None else None
    with write_transaction(engine) as conn:
        heads = take_checkpoint(conn, now=created, seal_key=seal_key)
        c = checkpoints.c
        stored = conn.execute(
            select(c.topic, c.partition, c.count, c.head_hash).order_by(c.topic, c.partition, c.count)
        ).all()  # rows as tuples: Row.count is the tuple method
    marks: dict[tuple[str, int], list[Mark]] = {}
    for topic, partition, count, head_hash in stored:
        marks.setdefault((topic, partition), []).append(Mark(count=count, head_hash=head_hash))
    body = Checkpoint(
        site=site,
        created_at=created,
        partitions=tuple(
            PartitionCheckpoint(
                topic=topic,
                partition=partition,
                count=head.count,
                head_hash=head.head_hash,
                marks=tuple(m for m in marks.get((topic, partition), []) if m.count < head.count),
            )
            for (topic, partition), head in heads.items()
        ),
    )
    doc: dict[str, Any] = {"checkpoint": body.model_dump(mode="json"), "signature": None}
    if key is not None:
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        doc["signature"] = {
            "algorithm": "ed25519",
            "public_key": public.hex(),
            "value": key.sign(canonical_json(doc["checkpoint"])).hex(),
        }
    _write_atomically(out, json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    return out


def load_checkpoint(path: Path, *, public_key: Path | None = None) -> LoadedCheckpoint:
    """Read a checkpoint file, checking its signature first. CheckpointInvalid if it cannot be trusted."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CheckpointInvalid(f"{path}: not a readable JSON checkpoint ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("checkpoint"), dict):
        raise CheckpointInvalid(f"{path}: no 'checkpoint' object")
    signed = canonical_json(doc["checkpoint"])
    signature = doc.get("signature")
    pinned = load_public_key(public_key) if public_key is not None else None
    status: Literal["verified", "self-consistent", "unsigned"] = "unsigned"
    signer: str | None = None
    if signature is None:
        if pinned is not None:
            raise CheckpointInvalid(f"{path}: not signed, but a public key was given to check it with")
    else:
        signer, key = _embedded_key(path, signature)
        check_with = pinned or key
        try:
            check_with.verify(bytes.fromhex(str(signature.get("value", ""))), signed)
        except (InvalidSignature, ValueError) as exc:
            whose = "the given public key" if pinned is not None else "the key it names"
            raise CheckpointInvalid(f"{path}: signature does not verify with {whose}") from exc
        status = "verified" if pinned is not None else "self-consistent"
        if pinned is not None:
            signer = _raw(pinned).hex()
    try:
        checkpoint = Checkpoint.model_validate(doc["checkpoint"])
    except ValidationError as exc:
        raise CheckpointInvalid(f"{path}: malformed checkpoint: {exc.error_count()} error(s)") from exc
    return LoadedCheckpoint(checkpoint, status, signer)


def keygen(out: Path) -> str:
    """Write a new Ed25519 key to `out` (PEM, mode 0600) and `out`.pub; return the public key PEM."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{out} exists: refusing to overwrite a key") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    out.with_name(out.name + ".pub").write_bytes(public)
    return public.decode("ascii")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 signing key in `path`; refused when other users can read the file."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc.strerror}") from exc
    if mode & _UNSAFE_MODE_BITS:
        raise KeyFileError(
            f"signing key {path} is readable by other users (mode {mode & 0o777:o}); chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in `path` (PEM, as `keygen` writes it)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key")
    return key


def _embedded_key(path: Path, signature: Any) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(signature, dict) or signature.get("algorithm") != "ed25519":
        raise CheckpointInvalid(f"{path}: signature is not an ed25519 signature object")
    try:
        raw = bytes.fromhex(str(signature.get("public_key", "")))
        return raw.hex(), Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CheckpointInvalid(f"{path}: signature names no valid public key") from exc


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_atomically(out: Path, data: bytes) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
