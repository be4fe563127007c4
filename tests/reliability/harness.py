"""Driving a real `hub serve` for the fault suite: start, SIGKILL, restart, send, wait, compare tables.

Everything goes through what a deployment has: the `hub serve` process, its MLLP port, its inbox
folder and its HTTP API; the test reads the SQLite files only to compare outcomes.
"""

from __future__ import annotations

import hashlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from adapters.his.decode import decode
from adapters.his.mllp import MllpFramer, frame
from tests.e2e.conftest import REPO, free_port, hub_env

HIS = REPO / "examples" / "his"
SPD = REPO / "examples" / "spd"

# Columns that hold the hub's own clock or the log's positions: they legitimately differ between
# a run that crashed (events published twice land at other offsets) and a clean one.
VOLATILE_SUFFIXES = ("_at", "_ms", "offset", "partition", "received", "recorded")
# Bookkeeping of the exactly-once machinery, compared through its effects instead.
BOOKKEEPING = {"projection_tracking", "projection_applied_events", "audit_ledger_checkpoints"}
# The ledger's entries hold log positions and a hash chain over them: compare what was recorded.
ONLY_COLUMNS = {"audit_ledger_entries": ["topic", "event_id", "subject", "event_type"]}


def _volatile(column: str) -> bool:
    return column.endswith(VOLATILE_SUFFIXES) or column in {"hash", "prev_hash", "seq"}


def table_digests(db: Path) -> dict[str, tuple[int, str]]:
    """Per read-model table: row count and a hash of its rows in canonical order, volatile columns left out."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in BOOKKEEPING and not r[0].startswith("sqlite_")
        ]
        out: dict[str, tuple[int, str]] = {}
        for name in names:
            cols = ONLY_COLUMNS.get(name) or [
                r[1] for r in conn.execute(f'PRAGMA table_info("{name}")') if not _volatile(r[1])
            ]
            rows = sorted(
                repr(r) for r in conn.execute(f'SELECT {", ".join(f"{c!r}" for c in cols)} FROM "{name}"')
            )
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
        return out
    finally:
        conn.close()


def his_messages(count: int, *, tag: str = "R") -> list[bytes]:
    """`count` distinct ESU^U01 equipment-status messages: unique MSH-10, a device each of 16."""
    template = (HIS / "07_esu_u01_ventilator_in_use.hl7").read_bytes()
    return [
        template.replace(b"ESU20240612001", f"{tag}{i:06d}".encode())
        .replace(b"VENT-0032", f"VENT-{i % 16:04d}".encode())
        .replace(
            b"20240612120930", f"20240612{10 + (i // 3600) % 10:02d}{(i // 60) % 60:02d}{i % 60:02d}".encode()
        )
        for i in range(count)
    ]


def ack_code(ack: bytes) -> str:
    text = decode(ack).text
    msa = next(seg for seg in text.replace("\n", "\r").split("\r") if seg.startswith("MSA"))
    return msa.split("|")[1]


class MllpSender:
    """One connection of a sending system: send a frame, wait for its ACK; None when the hub went away."""

    def __init__(self, port: int, timeout_s: float = 20.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._framer = MllpFramer()

    def send(self, payload: bytes) -> str | None:
        try:
            if self._sock is None:
                self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout_s)
                self._framer = MllpFramer()
            self._sock.sendall(frame(payload))
            while True:
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the hub")
                if acks := self._framer.feed(data):
                    return ack_code(acks[0])
        except OSError:
            self.close()
            return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass
class Hub:
    """One data directory and the `hub serve` processes run on it, one at a time."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    mllp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_dir: Path | None = None  # default: beside the data directory

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return (self.log_dir or self.data_dir.parent) / f"{self.data_dir.name}-serve.log"

    def inbox(self, system: str) -> Path:
        return self.data_dir / "inbox" / system

    def start(self, *, faults: str = "", wait: bool = True) -> float:
        """Start `hub serve`; with `wait`, return the seconds until its API answered."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Ticks well inside wait_drained's quiet window: what time alone concludes (a notification
        # expired) is in the tables before they are compared, however long a run took.
        extra = {
            "HUB_API_PORT": str(self.port),
            "HUB_MLLP_PORT": str(self.mllp_port),
            "HUB_PROJECTION_TICK_S": "0.5",
            **self.env,
        }
        if faults:
            extra["HUB_FAULT_POINTS"] = faults
            # A fault kills the process that reaches its point, and the suite restarts hub serve
            # when it exits: so every stage in hub serve's own process. (With the projector child,
            # the child would inherit the faults, be killed and restarted by its parent; that
            # path is tests/e2e/test_serve_processes.py.)
            extra.setdefault("HUB_SERVE_PROCESSES", "1")
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve"],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**hub_env(self.data_dir, **extra), "PYTHONPATH": str(REPO)},
            )
        if wait:
            self.wait_healthy()
        return time.monotonic() - started

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def error_lines(self, since: int = 0) -> list[str]:
        """Lines of the serve log from byte `since` on that report an error or a traceback."""
        with self.log.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return [
            line
            for line in text.splitlines()
            if "Traceback" in line or '"level": "error"' in line or line.startswith(("ERROR", "CRITICAL"))
        ]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"hub serve exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"hub serve did not become healthy:\n{self.log.read_text(errors='replace')[-3000:]}"
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.reap()

    def wait_exit(self, timeout_s: float) -> bool:
        """Wait (bounded) for the process to end by itself; True when it did (and it is reaped)."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        self.proc = None
        return True

    def reap(self, timeout_s: float = 60) -> int | None:
        if self.proc is None:
            return None
        code = self.proc.wait(timeout=timeout_s)
        self.proc = None
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.reap(30)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.reap()

    # --- what the hub has done ------------------------------------------------------------------

    def lag(self) -> int | None:
        try:
            body = httpx.get(f"{self.url}/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        lag = body.get("projection_lag")
        return None if lag is None else int(sum(lag.values()))

    def raw_counts(self) -> dict[str, int]:
        """Raw messages by status, from the archive file."""
        db = self.data_dir / "archive.db"
        if not db.exists():
            return {}
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return {
                str(s): int(n)
                for s, n in conn.execute("SELECT status, count(*) FROM raw_messages GROUP BY 1")
            }
        except sqlite3.OperationalError:
            return {}
        finally:
            conn.close()

    @property
    def db_url(self) -> str:
        return self.env.get("HUB_DB_URL") or f"sqlite:///{self.data_dir / 'readmodels.db'}"

    def _read_model_count(self, query: str) -> int:
        """One count from the read-model database (0 while its tables do not exist yet)."""
        if self.db_url.startswith("sqlite") and not (self.data_dir / "readmodels.db").exists():
            return 0
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(query)).scalar_one())
        except (OperationalError, ProgrammingError):
            return 0
        finally:
            engine.dispose()

    def applied_twice(self) -> int:
        """Events the audit ledger recorded more than once: each application appends one entry."""
        return self._read_model_count(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM audit_ledger_entries"
            " GROUP BY topic, event_id HAVING count(*) > 1) AS twice"
        )

    def stored_ids(self, system: str) -> set[str]:
        """Message ids of the raw messages the archive holds for `system`."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'archive.db'}?mode=ro", uri=True, timeout=10)
        try:
            return {
                str(r[0])
                for r in conn.execute("SELECT message_id FROM raw_messages WHERE system = ?", (system,))
            }
        finally:
            conn.close()

    def status_of(self, system: str, message_id: str) -> str | None:
        conn = sqlite3.connect(f"file:{self.data_dir / 'archive.db'}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute(
                "SELECT status FROM raw_messages WHERE system = ? AND message_id = ?", (system, message_id)
            ).fetchone()
            return None if row is None else str(row[0])
        except sqlite3.OperationalError:
            return None
        finally:
            conn.close()

    def unpublished_derived(self) -> int:
        return self._read_model_count("SELECT count(*) FROM projection_outbox WHERE NOT published")

    def wait_drained(self, expected_raw: int, timeout_s: float = 180) -> None:
        """Until every raw message is translated or dead-lettered and the projections are caught up."""
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            counts = self.raw_counts()
            done = sum(counts.values()) >= expected_raw and not counts.get("pending")
            if done and self.lag() == 0 and self.unpublished_derived() == 0:
                quiet += 1
                # Derived events just published are applied by the next polls; 1.2 s also spans
                # two ticks at HUB_PROJECTION_TICK_S=0.5.
                if quiet >= 4:
                    return
            else:
                quiet = 0
            time.sleep(0.3)
        raise AssertionError(
            f"not drained in {timeout_s} s: raw {self.raw_counts()}, lag {self.lag()}\n"
            + self.log.read_text(errors="replace")[-2000:]
        )

    def drop_file(self, system: str, source: Path, name: str | None = None) -> Path:
        """Drop an export as a well-behaved sender does: write aside, then rename into the inbox."""
        inbox = self.inbox(system)
        inbox.mkdir(parents=True, exist_ok=True)
        part = inbox / f".{name or source.name}.part"
        part.write_bytes(source.read_bytes())
        target = inbox / (name or source.name)
        part.replace(target)
        return target

    def processed(self, system: str) -> set[str]:
        folder = self.inbox(system) / "processed"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()
