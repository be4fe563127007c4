"""`hub serve` on a multi-core machine: the read models run in a child process (hub.cli.companion).

What a site relies on: the file it drops still becomes visible, /health/ready names the child,
a child that dies is started again, and a SIGKILLed `hub serve` leaves no projector behind.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from bench.whole_hub import children
from tests.e2e.conftest import Served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _wait(predicate, what: str, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ready(served: Served) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{served.url}/health/ready", timeout=10).json()
    return body


def _total(served: Served) -> int:
    total: int = httpx.get(f"{served.url}/assets?limit=1", timeout=10).json()["total"]
    return total


def test_two_processes_project_restart_their_projector_and_leave_nothing_behind(tmp_path: Path) -> None:
    served = Served(tmp_path / "hub", HUB_SERVE_PROCESSES="2", HUB_AUTH="off")
    served.start()
    try:
        assert served.proc is not None
        _wait(lambda: len(children(served.proc.pid)) == 1, "the projector process")
        (child,) = children(served.proc.pid)
        _wait(lambda: _ready(served)["checks"]["projector"]["state"] == "ok", "projector ok")  # type: ignore[index]
        assert "roles:" not in served.log.read_text()  # the child does not speak for the hub

        # the read models are the child's: a ledger dropped into the inbox becomes visible
        inbox = served.data_dir / "inbox" / "hrp"
        inbox.mkdir(parents=True, exist_ok=True)
        ledger = next((EXAMPLES / "hrp").glob("*.csv"))
        (inbox / ".part").write_bytes(ledger.read_bytes())
        (inbox / ".part").rename(inbox / ledger.name)
        _wait(lambda: _total(served) > 0, "assets from the ledger")

        # a projector that dies is started again; readiness says so meanwhile or after
        os.kill(child, signal.SIGKILL)
        _wait(
            lambda: [c for c in children(served.proc.pid) if c != child and _alive(c)] != [],
            "a new projector",
        )
        (again,) = [c for c in children(served.proc.pid) if _alive(c)]
        _wait(lambda: _ready(served)["checks"]["projector"]["state"] == "ok", "projector ok again")  # type: ignore[index]
        assert "projector_exited" in served.log.read_text()

        # SIGKILL of hub serve: the kernel tells the child, which stops by itself
        served.kill()
        _wait(lambda: not _alive(again), "the orphaned projector to stop")
    finally:
        served.stop()


def test_one_process_when_asked(tmp_path: Path) -> None:
    served = Served(tmp_path / "hub", HUB_SERVE_PROCESSES="1", HUB_AUTH="off")
    served.start()
    try:
        assert served.proc is not None
        assert children(served.proc.pid) == []
        assert "projector" not in _ready(served)["checks"]  # type: ignore[operator]
    finally:
        served.stop()
