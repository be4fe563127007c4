"""Helpers for driving the hub as a user would: the real wiring in-process, or the `hub` command.

`wired_hub(...)` / the `wired` fixture: `build_hub` + `build_api` (the composition root the CLI
uses) over real SQLite (or a given database), with an in-process HTTP client: what every API
test should use rather than assembling an app by hand. `Served`: `hub serve` as a subprocess.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.app import build_api
from hub.api.deps import HubApi
from hub.auth.roles import Role
from hub.bootstrap import Hub, build_hub
from hub.pipeline import drain, ingest_path
from hub.settings import Settings

REPO = Path(__file__).resolve().parents[2]

# Columns that carry the hub's receive time: they legitimately differ between two data dirs.
TIME_COLUMNS = ("first_recorded_at", "last_recorded_at", "recorded_at")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(data_dir: Path, **extra: str) -> dict[str, str]:
    # COLUMNS/LINES dropped: a library in the test process may set them, and the CLI's width follows.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k not in {"COLUMNS", "LINES"}}
    env.update({"HUB_DATA_DIR": str(data_dir), "HUB_LOG_FORMAT": "json", **extra})
    return env


def run_hub(
    *args: str, data_dir: Path, timeout: float = 180, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=REPO,
        env=hub_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Served:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.env = env  # extra HUB_* settings for this server
        self.port = free_port()
        self.mllp_port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start `hub serve`; when a port picked free was taken meanwhile (another test's server
        on a loaded machine), pick others and start again."""
        for _ in range(3):
            try:
                self._start()
            except AssertionError as exc:
                if "address already in use" not in str(exc):
                    raise
                self.port, self.mllp_port = free_port(), free_port()
            else:
                return
        self._start()

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve"],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=hub_env(
                    self.data_dir,
                    HUB_API_PORT=str(self.port),
                    HUB_MLLP_PORT=str(self.mllp_port),
                    **self.env,
                ),
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub serve exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200 and self._projecting():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"hub serve did not become healthy:\n{self.log.read_text()[-3000:]}")

    def _projecting(self) -> bool:
        """The projector child of hub serve (HUB_SERVE_PROCESSES) is past its start-up, or absent."""
        checks = httpx.get(f"{self.url}/health/ready", timeout=10).json().get("checks", {})
        return bool(checks.get("projector", {"state": "ok"})["state"] == "ok")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "served")
    yield s
    s.stop()


class Wired:
    """A hub from build_hub, its API from build_api, and an in-process client (no sockets)."""

    def __init__(self, hub: Hub, app: HubApi, http: httpx.AsyncClient) -> None:
        self.hub = hub
        self.app = app
        self.http = http
        self._tokens: dict[tuple[Role, str | None], str] = {}

    def token(self, role: Role, department: str | None = None) -> str:
        """A key of `role` (scoped to `department`), made once per hub."""
        if (role, department) not in self._tokens:
            self._tokens[(role, department)] = self.hub.keys.create(role, department=department)[1]
        return self._tokens[(role, department)]

    def auth(self, role: Role, department: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, department)}"}

    async def ingest(self, system: str, *paths: Path) -> list[str]:
        """Archive `paths` as `system` exports, translate and project everything; their raw refs."""
        refs = [(await ingest_path(self.hub, system, path)).record.raw_ref for path in paths]
        await drain(self.hub)
        return refs


@asynccontextmanager
async def wired_hub(
    data_dir: Path, *, settings: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[Wired]:
    """The real wiring: Settings(data_dir, auth=keys, **settings) -> build_hub(**overrides) -> build_api."""
    chosen = Settings(**{"data_dir": data_dir, "auth": "keys", **(settings or {})})
    async with build_hub(chosen, **overrides) as hub:
        app = build_api(hub)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=30
            ) as http,
        ):
            yield Wired(hub, app, http)


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    """An empty hub with keys required, wired as `hub serve` wires it."""
    async with wired_hub(tmp_path / "hub") as w:
        yield w


@asynccontextmanager
async def open_api(db_url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Wired]:
    """The real wiring over an existing read-model database, keys off (callers act as admin)."""
    async with wired_hub(data_dir, settings={"db_url": db_url, "auth": "off"}, **overrides) as w:
        yield w
