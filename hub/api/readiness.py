"""What /health/ready checks: every part a node needs to do its work, each with a reason when not.

A check never raises and never waits longer than `HealthLimits.timeout_s`: a probe that hangs on a
dead broker would make the load balancer's own check time out instead of reading "degraded".
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from projections.runtime.derived import projection_outbox

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

    from hub.bootstrap import Hub

CheckState = Literal["ok", "degraded", "skipped"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    state: CheckState
    reason: str | None = None
    value: int | None = None


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """Thresholds (HUB_HEALTH_*): lag in records, free disk in MB, seconds one check may take."""

    max_lag: int = 10_000
    min_free_mb: int = 1_024
    timeout_s: float = 3.0


ReadinessSource = Callable[[], Awaitable[dict[str, CheckResult]]]
Listeners = dict[str, Callable[[], bool]]
"""Listeners a `hub serve` node opened (name -> is it serving), registered as they start."""


def _ok(value: int | None = None) -> CheckResult:
    return CheckResult("ok", value=value)


def _down(reason: str, value: int | None = None) -> CheckResult:
    return CheckResult("degraded", reason=reason, value=value)


def database_check(engine: Engine) -> CheckResult:
    """The read-model database runs a trivial query (blocking: call from a thread)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, PoolTimeoutError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return _down(f"read-model database unreachable: {type(cause).__name__}")
    return _ok()


def outbox_backlog(engine: Engine) -> int:
    """Derived events staged by projections and not yet on the bus (blocking)."""
    t = projection_outbox.c
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.published.is_(False))).scalar_one())


def disk_check(path: Path, min_free_mb: int) -> CheckResult:
    try:
        free_mb = shutil.disk_usage(path).free // (1024 * 1024)
    except OSError as exc:
        return _down(f"data dir unreadable: {exc.strerror}")
    if free_mb < min_free_mb:
        return _down(
            f"{free_mb} MB free in the data dir, under {min_free_mb} MB (HUB_HEALTH_MIN_FREE_MB)", free_mb
        )
    return _ok(free_mb)


async def _timed(name: str, check: Awaitable[CheckResult], timeout_s: float) -> CheckResult:
    try:
        return await asyncio.wait_for(check, timeout_s)
    except TimeoutError:
        return _down(f"{name} did not answer within {timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - a failing probe is the answer, never a 500
        return _down(f"{name}: {type(exc).__name__}: {exc}"[:300])


async def lag_check(hub: Hub, db: CheckResult, max_lag: int) -> CheckResult:
    """Records the projections are behind, counting the derived events their outbox holds."""
    if db.state != "ok":
        return CheckResult("skipped", reason="read-model database unreachable")
    total = 0
    for runner in hub.runners:
        total += await runner.lag()
    # Derived events wait in the projections' outbox until the runner publishes them: lag too.
    total += await asyncio.to_thread(outbox_backlog, hub.engine)
    if total > max_lag:
        return _down(f"{total} records behind, over {max_lag} (HUB_HEALTH_MAX_LAG)", total)
    return _ok(total)


_PROJECTOR_DOWN = "process not serving (starting, or restarted after it stopped)"


def readiness_source(
    hub: Hub, limits: HealthLimits, listeners: Mapping[str, Callable[[], bool]]
) -> ReadinessSource:
    """The checks of /health/ready for `hub` (archive, bus, database, listeners, lag, disk)."""

    async def archive() -> CheckResult:
        await hub.archive.writable()
        return _ok()

    async def bus() -> CheckResult:
        await hub.bus.list_topics()
        return _ok()

    async def database() -> CheckResult:
        return await asyncio.to_thread(database_check, hub.engine)

    async def lag(db: CheckResult) -> CheckResult:
        return await lag_check(hub, db, limits.max_lag)

    async def disk() -> CheckResult:
        return await asyncio.to_thread(disk_check, hub.settings.data_dir, limits.min_free_mb)

    async def ready() -> dict[str, CheckResult]:
        t = limits.timeout_s
        names = ("archive", "bus", "database", "disk")
        results = await asyncio.gather(
            _timed("archive", archive(), t),
            _timed("bus", bus(), t),
            _timed("database", database(), t),
            _timed("disk", disk(), t),
        )
        out = dict(zip(names, results, strict=True))
        out["projection_lag"] = await _timed("projection lag", lag(out["database"]), t)
        for name, serving in listeners.items():
            what = (
                "process not serving (starting, or restarted after it stopped)"
                if name == "projector"
                else "listener not serving"
            )
            out[name] = _ok() if serving() else _down(f"{name} {what}")
        return out

    return ready
