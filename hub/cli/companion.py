"""The projector process that `hub serve` runs beside itself on a machine with more than one core.

Python runs one thread at a time per process: with translation, the MLLP listener, the API and
six read models in one process, a 2-core machine used one core and the whole ran at a fraction of
its parts (issue "The whole pipeline at hospital scale"). So `hub serve` with every role keeps
ingest, translation and the API and starts one child, `hub serve --role project`, for the read
models, webhooks, notifications and alerts: the same split a site makes by hand with `--role`
(docs/deploy-kafka.md), made by default. Both share the data dir, the bus and the databases, as
two nodes do; nothing new is shared.

The child dies with its parent (Linux PR_SET_PDEATHSIG, set by the child itself: see
`die_with_parent`), so a SIGKILLed `hub serve` leaves no projector behind; a child that exits on
its own is started again after a growing pause, and GET /health/ready names it while it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from hub.settings import Settings

logger = structlog.get_logger()

PARENT_ENV = "HUB_COMPANION_OF"  # the parent's pid, set in the child's environment
READY_FD_ENV = "HUB_COMPANION_READY_FD"  # a pipe the child writes to once its stages run
STOP_GRACE_S = 20.0
SIGNAL_RACE_S = 1.0
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
_PR_SET_PDEATHSIG = 1


def processes_for(settings: Settings) -> int:
    """How many processes `hub serve` with every role runs: HUB_SERVE_PROCESSES, `auto` = 2 where
    the machine has 2 cores or more."""
    wanted = settings.serve_processes
    if wanted == "auto":
        return 2 if (os.cpu_count() or 1) >= 2 else 1
    return int(wanted)


def is_companion() -> bool:
    """True in a projector child `hub serve` started (its output is the parent's terminal)."""
    return bool(os.environ.get(PARENT_ENV))


def die_with_parent() -> None:
    """In a companion: ask the kernel for SIGTERM when the parent goes, then check it has not gone
    already (it may die between fork and here). Elsewhere, or off Linux, nothing."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):
        os._exit(0)  # the parent is gone: nothing to project for


def tell_parent_ready() -> None:
    """In a companion, once its stages run: the parent counts it as serving from now on."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"ready\n")
        os.close(int(fd))


class Companion:
    """Runs `hub serve --role project` as a child until `stop`, restarting it when it exits."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = False
        self._watch: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def alive(self) -> bool:
        """Running and past its start-up (imports, database connections): its stages consume."""
        return self._ready and self._proc is not None and self._proc.returncode is None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HUB_ROLE="project",
            HUB_DATA_DIR=str(self._settings.data_dir),
            HUB_SERVE_PROCESSES="1",
            **{PARENT_ENV: str(os.getpid())},
        )
        return env

    async def _spawn(self) -> asyncio.subprocess.Process:
        self._ready = False
        read_end, write_end = os.pipe()
        env = {**self._env(), READY_FD_ENV: str(write_end)}
        try:
            proc = await asyncio.create_subprocess_exec(  # nosec B603: our own module, same interpreter
                sys.executable, "-m", "hub", "serve", "--role", "project", env=env, pass_fds=(write_end,)
            )
        finally:
            os.close(write_end)
        self._watch = asyncio.create_task(self._await_ready(read_end, proc.pid))
        logger.info("projector_started", pid=proc.pid)
        return proc

    async def _await_ready(self, read_end: int, pid: int) -> None:
        try:
            said = await asyncio.to_thread(os.read, read_end, 16)  # b"" when the child exits first
        finally:
            os.close(read_end)
        if said:
            self._ready = True
            logger.info("projector_ready", pid=pid)

    async def run(self, stop: asyncio.Event) -> None:
        delay = RESTART_MIN_S
        while not stop.is_set():
            self._proc = await self._spawn()
            waiting = asyncio.create_task(self._proc.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                stopping.cancel()
                await self._stop(waiting)
                return
            stopping.cancel()
            # Ctrl-C reaches the whole process group: the child may finish first; not a failure.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SIGNAL_RACE_S)
            if stop.is_set():
                return
            proc = self._proc
            logger.error("projector_exited", pid=proc.pid, code=proc.returncode, restart_in_s=delay)
            self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def _stop(self, waiting: asyncio.Task[int]) -> None:
        """SIGTERM, the child's own clean shutdown (a batch committed or not at all), then SIGKILL."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(waiting), STOP_GRACE_S)
        except TimeoutError:
            logger.warning("projector_killed", pid=proc.pid, grace_s=STOP_GRACE_S)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await waiting
