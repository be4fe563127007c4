"""Named fault points: where the fault suite makes the hub fail on purpose. Free when not armed.

`HUB_FAULT_POINTS` arms points for one process, read once at import:

    HUB_FAULT_POINTS="ingest.after_store:kill:3,translator.translate:raise"

Each entry is `name[:action[:nth]]`: `action` is `raise` (default: FaultInjected, once, at the
nth hit) or `kill` (SIGKILL this process at the nth hit: no cleanup, no flush, as a power cut);
`nth` counts from 1 (default 1). Unset, `fault_point` tests an empty dict and returns: no
environment lookup per call.

The points (grep `fault_point(` for where each sits):
- `ingest.after_store`: the raw bytes are committed, no answer (ACK, 2xx, file move) yet;
- `translation.before_commit`: a batch's events are published, its raw offsets not committed;
- `translation.between_chunks`: a file's first chunk(s) published and their snapshot state committed,
  the rest not translated, the status not written;
- `translator.translate`: inside a translator (a translator bug);
- `projection.before_commit`: read-model rows written, the transaction not committed;
- `projection.derived_published`: derived events published, not yet marked published.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import structlog

ENV = "HUB_FAULT_POINTS"
ACTIONS = ("raise", "kill")
POINTS = (
    "ingest.after_store",
    "translation.before_commit",
    "translation.between_chunks",
    "translator.translate",
    "projection.before_commit",
    "projection.derived_published",
)

logger = structlog.get_logger()


class FaultInjected(RuntimeError):
    """Raised by an armed `raise` fault point: an unexpected failure, on purpose."""


@dataclass(slots=True)
class _Armed:
    action: str
    nth: int
    hits: int = 0


_armed: dict[str, _Armed] = {}
_lock = threading.Lock()  # points are hit from worker threads too (asyncio.to_thread)


def parse(spec: str) -> dict[str, tuple[str, int]]:
    """`name[:action[:nth]],...` -> {name: (action, nth)}; a clear error for anything else."""
    out: dict[str, tuple[str, int]] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        parts = entry.split(":")
        name, action, nth = parts[0], (parts[1:2] or ["raise"])[0], (parts[2:3] or ["1"])[0]
        if len(parts) > 3 or name not in POINTS or action not in ACTIONS or not nth.isdigit() or nth == "0":
            raise ValueError(
                f"{ENV}: {entry!r} is not name[:action[:nth]] with name in {POINTS}, "
                f"action in {ACTIONS}, nth >= 1"
            )
        out[name] = (action, int(nth))
    return out


def arm(spec: str | None) -> None:
    """Arm the points named in `spec` (None or "" disarms all). Called once at import from the env."""
    parsed = parse(spec or "")
    with _lock:
        _armed.clear()
        _armed.update({name: _Armed(action, nth) for name, (action, nth) in parsed.items()})
    if parsed:
        logger.warning("fault_points_armed", points=spec)


def fault_point(name: str) -> None:
    """Fail here if `name` is armed. Unarmed: one test of an empty dict."""
    if _armed:
        _hit(name)


def _hit(name: str) -> None:
    with _lock:
        armed = _armed.get(name)
        if armed is None:
            return
        armed.hits += 1
        if armed.hits != armed.nth:
            return
    logger.warning("fault_point_hit", point=name, action=armed.action, hit=armed.hits)
    if armed.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FaultInjected(f"fault point {name!r} (hit {armed.hits})")


arm(os.environ.get(ENV))
