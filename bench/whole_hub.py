"""A real `hub serve` for the end-to-end benchmarks: a subprocess on loopback with a fresh data dir.

Each hub runs in its own process group and is killed with it in `stop()` (callers use it as an
async context manager, so nothing outlives the benchmark). Memory is read from /proc (VmRSS,
VmHWM: the kernel's own peak), no extra dependency. BENCH_SCALE shrinks sizes and durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess  # nosec B404: starts our own hub with the same interpreter
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

import httpx

if TYPE_CHECKING:
    from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 90.0


def scale() -> float:
    """BENCH_SCALE (default 1): a factor on row counts and durations, e.g. 0.05 for a quick run."""
    return float(os.environ.get("BENCH_SCALE", "1"))


def scaled(full: int, minimum: int) -> int:
    return max(minimum, int(full * scale()))


def cap_s() -> float:
    """How long an end-to-end row may run before it reports "not finished" (BENCH_CAP_S, default 600)."""
    return float(os.environ.get("BENCH_CAP_S", "600"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def proc_status_kb(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM` figure from /proc/<pid>/status, in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def hub_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        PYTHONPATH=str(REPO),
        HUB_DATA_DIR=str(data_dir),
        HUB_MODE="demo",
        HUB_AUTH="off",
        HUB_LOG_FORMAT="json",
    )
    env.update(extra or {})
    return env


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left; waits for the leader."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A child in its own session (so `kill_group` reaches everything it starts), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(  # nosec B603: fixed argv, our own modules
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass
class HubServe:
    """`python -m hub serve` with its own data dir and free API/MLLP ports."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    mllp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    idle_rss_kb: int = 0
    start_bytes: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-{self.api_port}.log"

    async def __aenter__(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = hub_env(
            self.data_dir,
            {"HUB_API_PORT": str(self.api_port), "HUB_MLLP_PORT": str(self.mllp_port), **self.extra_env},
        )
        # cwd is the data dir's parent: no stray hub.toml from wherever `make bench` was started.
        self.proc = spawn([sys.executable, "-m", "hub", "serve"], env, self.data_dir.parent, self.log)
        try:
            await self._ready()
        except BaseException:
            self.stop()
            raise
        self.idle_rss_kb = int(self.rss_mb() * 1024)
        self.start_bytes = dir_bytes(self.data_dir)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _proc(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise RuntimeError("hub serve was not started")
        return self.proc

    def exited(self) -> bool:
        return self._proc().poll() is not None

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)

    async def _ready(self) -> None:
        proc = self._proc()
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"hub serve exited with {proc.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code < 500 and accepts(self.mllp_port):
                        # and the projector child (HUB_SERVE_PROCESSES) past its start-up
                        checks = (await client.get("/health/ready")).json().get("checks", {})
                        if checks.get("projector", {"state": "ok"})["state"] == "ok":
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"hub serve not ready within {READY_TIMEOUT_S} s: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _pids(self) -> list[int]:
        """hub serve and its projector child (HUB_SERVE_PROCESSES): memory is the sum of both."""
        pid = self._proc().pid
        return [pid, *children(pid)]

    def peak_rss_mb(self) -> float:
        """Sum of each process's own peak: an upper bound of the pair's peak, never below it."""
        return sum(proc_status_kb(p, "VmHWM") for p in self._pids()) / 1024

    def rss_mb(self) -> float:
        return sum(proc_status_kb(p, "VmRSS") for p in self._pids()) / 1024

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by hub serve and its projector child."""
        total = 0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def grown_mb(self) -> float:
        return (dir_bytes(self.data_dir) - self.start_bytes) / 1e6


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (the command name in parentheses may hold spaces)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def assets_total(client: httpx.AsyncClient) -> int:
    response = await client.get("/assets", params={"limit": 1})
    response.raise_for_status()
    return int(response.json()["total"])


def drop_into_inbox(data_dir: Path, system: str, source: Path) -> None:
    """Copy `source` into inbox/<system>/ as a .part file and rename it: the watcher sees it whole."""
    folder = data_dir / "inbox" / system
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (source.name + ".part")
    part.write_bytes(source.read_bytes())
    part.rename(folder / source.name)
