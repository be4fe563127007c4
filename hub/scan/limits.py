"""A sliding-window rate limit per bucket (a reporting key, a client address), in memory.

Scan-to-report is open to anyone holding a label, so each key and each client address may do
only so much per minute; past it the page answers 429 with Retry-After. Per process: behind
several API replicas each enforces its own window (the limit is then per replica), which is
enough to stop a runaway script or a flood from one phone without a shared store.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_BUCKETS = 50_000


class RateLimiter:
    """At most `limit` hits per `window_s` per bucket; `hit` says how long to wait when refused."""

    def __init__(self, limit: int, *, window_s: float = 60.0, now: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self._now = now
        self._hits: dict[str, deque[float]] = {}

    def hit(self, bucket: str) -> int | None:
        """Count one hit; None when allowed, else the seconds until the bucket has room again."""
        now = self._now()
        hits = self._hits.get(bucket)
        if hits is None:
            if len(self._hits) >= MAX_BUCKETS:
                self._prune(now)
            hits = self._hits[bucket] = deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window_s - now))
        hits.append(now)
        return None

    def _prune(self, now: float) -> None:
        for bucket in [b for b, h in self._hits.items() if not h or h[-1] <= now - self.window_s]:
            del self._hits[bucket]
