"""Webhook pure parts: the delivery signature, the retry backoff and the event-type filter."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from collections.abc import Iterable


logger = structlog.get_logger()


def signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: `sha256=` + hex HMAC-SHA256 of the exact body, keyed by the secret's UTF-8."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], body: bytes) -> str:
    """The header value for every secret that signs now: one `sha256=<hex>` each, comma-separated.

    Outside a rotation's overlap there is one secret and the header is exactly `signature(...)`.
    During an overlap the new secret's signature comes first, then the old one's (as Stripe's
    `v1=` pairs and Svix's space-separated list): a receiver accepts the delivery when any
    listed value matches the secret it holds.
    """
    return ", ".join(signature(s, body) for s in secrets)


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute, and compare in constant time with each listed signature."""
    expected = signature(secret, body)
    found = False
    for value in header.split(","):
        found |= hmac.compare_digest(expected, value.strip())  # no early exit: constant time per value
    return found


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: `initial_s` doubling per consecutive failure up to `cap_s`, then jittered."""

    initial_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, failures: int, jitter: float) -> float:
        """Seconds to wait after `failures` consecutive failures; `jitter` in [0, 1].

        "Equal jitter": a uniform draw in the upper half of the exponential step, so nodes retrying
        one receiver spread out, yet a delay never drops below half its step nor exceeds the cap.
        """
        if failures < 1:
            return 0.0
        step = min(self.cap_s, self.initial_s * 2.0 ** min(failures - 1, 60))
        return step * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """Event types to deliver: exact names and `asset.*`-style prefixes; empty = everything."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, types: Iterable[str]) -> TypeFilter:
        wanted = list(types)
        return cls(
            frozenset(t for t in wanted if not t.endswith("*")),
            tuple(t[:-1] for t in wanted if t.endswith("*")),
        )

    def __call__(self, event_type: str) -> bool:
        if not self.exact and not self.prefixes:
            return True
        return event_type in self.exact or event_type.startswith(self.prefixes)
