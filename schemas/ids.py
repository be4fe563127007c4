"""Deterministic identifiers: the same input always yields the same id, so replay reproduces it."""

from __future__ import annotations

from hashlib import sha1
from typing import TYPE_CHECKING
from uuid import UUID, uuid5

if TYPE_CHECKING:
    from schemas._base import Identifier

# Fixed namespaces: changing one re-keys every event ever emitted, so never edit them.
EVENT_NAMESPACE = UUID("6f1c3b4e-2a77-5c1d-9e0b-7d4f1a2c8b90")
SUBJECT_NAMESPACE = UUID("0b8e5a5c-93d1-5f6e-8a2b-4c7d9e1f2a35")


def event_id_for(system: str, message_id: str, position: str | int) -> UUID:
    """Event id = uuid5 over (source system, source message id, position within that message)."""
    return uuid5(EVENT_NAMESPACE, f"{system}\x1f{message_id}\x1f{position}")


def asset_id_for(identifier: Identifier) -> str:
    """Hub asset id first minted from a source identifier (e.g. the HRP card number).

    The registry links further identifiers to it; an id minted from an identifier that is
    later linked elsewhere is a provisional record to be merged.
    """
    return asset_id_from(identifier.scheme, identifier.value)


def asset_id_from(scheme: str, value: str) -> str:
    """`asset_id_for` of the identifier (scheme, value), for callers holding the two strings."""
    return "AST-" + _uuid5_hex20(f"asset\x1f{scheme}\x1f{value}")


_SUBJECT_NS_BYTES = SUBJECT_NAMESPACE.bytes


def _uuid5_hex20(name: str) -> str:
    """`uuid5(SUBJECT_NAMESPACE, name).hex[:20]` without building a UUID: the registry mints one
    per identifier it meets (a rebuild: millions). Same bits: SHA-1 of namespace + name, with
    the version (5) and RFC 4122 variant set as uuid5 sets them."""
    digest = bytearray(sha1(_SUBJECT_NS_BYTES + name.encode(), usedforsecurity=False).digest()[:10])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


def item_id_for(system: str, item_code: str) -> str:
    """Hub item id for a consumable as the source coded it."""
    return "ITM-" + _uuid5_hex20(f"item\x1f{system}\x1f{item_code}")  # one per charge line: no UUID built


def workorder_id_for(system: str, source_no: str) -> str:
    """Hub work-order id for a source system's own work-order number."""
    return "WO-" + _uuid5_hex20(f"workorder\x1f{system}\x1f{source_no}")
