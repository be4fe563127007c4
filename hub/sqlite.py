"""Opening the hub's own SQLite files (raw archive, operational state) with durable settings."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def connect_durable(path: Path) -> sqlite3.Connection:
    """A connection whose commits are on disk when `commit()` returns.

    WAL + synchronous=FULL: the guarantee "acknowledge only what is stored" rests on this.
    `check_same_thread=False` because the archive hands work to a thread; callers serialise
    access with their own lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
