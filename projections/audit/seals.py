"""Signed checkpoints the ledger keeps itself ("seals"), outside the chained table.

The table is projections.audit.ledger.seals; this module is the pure part: key, MAC, rows.

A seal (topic, partition, kind, count, head_hash, mac) says: folding the first `count` entries of
that chain gives `head_hash`. `mac` = HMAC-SHA256(seal key, the message below); the seal key is
derived from HUB_SECRET_KEY (`seal_key`), which is not in the database. So someone who can
write the database but does not hold the secret can rewrite a chain's tail consistently, every
hash recomputed, or cut it short, but cannot make a seal agree with the result.

Kinds:
- `head`: exactly one per chain, replaced in the same transaction as every append. A deleted
  tail (entries and tracking rows together) leaves the head's count beyond the chain; deleting
  the head seal itself is reported too (a chain with entries and no head).
- `mark`: kept for good every `checkpoint_every` entries and at each `hub audit checkpoint`.
  Between the last mark the chain still passes through and the first it does not lies the first
  changed entry of a rewritten tail (the log comparison, replay.audit.log, then names it).

What seals cannot show: a rollback to an older state whose head seal was copied beforehand.
An exported checkpoint, signed and kept outside the hub (replay.audit.checkpoint), covers that.

    message = b"hub-ledger-seal/1" || 0x00 || kind || 0x00 || topic || 0x00 || partition
              || 0x00 || count || 0x00 || head_hash        (integers in decimal ASCII, hash as hex)
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from datetime import datetime

SealKind = Literal["head", "mark"]
SEAL_FORMAT = b"hub-ledger-seal/1"
_KEY_CONTEXT = b"hub audit ledger seal key v1"


@dataclass(frozen=True, slots=True)
class Seal:
    """One stored seal, and whether its MAC verifies with the key it was checked with."""

    topic: str
    partition: int
    kind: str
    count: int
    head_hash: str
    valid: bool


def seal_key(secret: bytes) -> bytes:
    """The seal key derived from the hub's secret (HUB_SECRET_KEY): a keyed hash, never the secret itself."""
    return hmac.new(secret, _KEY_CONTEXT, hashlib.sha256).digest()


def seal_mac(key: bytes, kind: str, topic: str, partition: int, *, count: int, head_hash: str) -> str:
    """HMAC-SHA256 (hex) of the seal message above."""
    parts = (kind.encode(), topic.encode("utf-8"), b"%d" % partition, b"%d" % count, head_hash.encode())
    message = b"\x00".join((SEAL_FORMAT, *parts))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_row(
    key: bytes,
    kind: SealKind,
    topic: str,
    partition: int,
    *,
    count: int,
    head_hash: str,
    created_at: datetime,
) -> dict[str, Any]:
    """A row of audit_ledger_seals, its MAC computed with `key`."""
    return {
        "topic": topic,
        "partition": partition,
        "kind": kind,
        "count": count,
        "head_hash": head_hash,
        "created_at": created_at,
        "mac": seal_mac(key, kind, topic, partition, count=count, head_hash=head_hash),
    }
