"""Is the process that wrote a group membership row still running? Answered only when it is certain.

A member killed with SIGKILL cannot `leave` its group, so its claims would wait for the session
timeout. Each member therefore records who it is: boot id, PID namespace, PID and the process's
start time (a PID alone can be reused). A member on the same machine, in the same PID namespace,
whose PID is gone or now belongs to a process started at another time, is dead for certain and can
be removed at once. Anything else (another machine, another container, no /proc) answers "unknown",
and the session timeout decides as before.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: clock ticks after boot, fixed for the process's life.

    None for no such process, and for a zombie: it has ended, only its parent has not reaped it.
    """
    stat = _read(PROC / str(pid) / "stat")
    if stat is None:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):  # field 3, the state: zombie or dead
        return None
    return fields[19]


def _namespace() -> str | None:
    try:
        return str((PROC / "self" / "ns" / "pid").readlink())
    except OSError:
        return None


@cache
def _host() -> str | None:
    boot, namespace = _read(PROC / "sys" / "kernel" / "random" / "boot_id"), _namespace()
    return None if boot is None or namespace is None else f"{boot}/{namespace}"


def identity() -> str | None:
    """This process as `boot/namespace/pid/start`, or None where /proc does not tell."""
    return _own(os.getpid())  # keyed by PID: a forked child is another process


@cache
def _own(pid: int) -> str | None:
    return identity_of(pid)


def identity_of(pid: int) -> str | None:
    """Process `pid` of this machine and namespace as `identity()` writes it (None: unknown)."""
    host = _host()
    start = _start_time(pid) if host is not None else None
    return None if host is None or start is None else f"{host}/{pid}/{start}"


def certainly_dead(recorded: str | None) -> bool:
    """True only when `recorded` (an `identity()`) names a process of this machine that has ended."""
    host = _host()
    if recorded is None or host is None:
        return False
    parts = recorded.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != host or not parts[2].isdigit():
        return False
    return _start_time(int(parts[2])) != parts[3]
