"""The fresh place a rebuild writes to, beside the live read models, and how the swap reaches it.

- SQLite: a separate database file next to the live one (`<live>.rebuild-<projection>-<stamp>.db`),
  written with no durability at all (`SCRATCH_PRAGMAS`: synchronous=OFF, journal_mode=OFF, a
  large page cache, temporary tables in memory): a rebuild that fails or crashes is simply
  started again from an empty scratch, so there is nothing to protect until the swap, which
  commits on the live file with the live settings. Without a journal a rolled-back transaction
  leaves the scratch half-written, which is harmless for the same reason: a failed apply ends the
  rebuild and the scratch is dropped. The swap opens the live file with the scratch ATTACHed as
  `rebuild`.
- PostgreSQL: a fresh schema `rebuild_<projection>_<stamp>` in the live database; the scratch
  engine puts it first on its search_path, so the projection code, which names its tables
  without a schema, writes there. The swap runs on the live engine and names the schema.

Either way the scratch has its own copy of the shared tracking tables, so the rebuild's offsets,
applied event ids and staged derived events live beside its tables until the swap moves them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.pool import NullPool

from projections.runtime.db import PG_CONNECT_TIMEOUT_S, make_engine, write_transaction
from replay.errors import ReplayFailed

if TYPE_CHECKING:
    from sqlalchemy import Engine

SQLITE_ALIAS = "rebuild"  # the name the scratch file is ATTACHed under during a swap
# A million-event rebuild writes ~1 GB of pages: without a journal each is written once, not
# three times (WAL, then checkpoint); 256 MiB of cache keeps the hot B-tree pages (history,
# applied event ids) in memory instead of re-reading them with a syscall each.
SCRATCH_PRAGMAS = (
    "synchronous=OFF",
    "journal_mode=OFF",
    "cache_size=-262144",
    "temp_store=MEMORY",
)
SWAP_CACHE = "cache_size=-262144"
_UNSAFE = re.compile(r"[^a-z0-9_]+")
_PG_IDENTIFIER_MAX = 63


@dataclass
class Scratch:
    """Fresh tables for one rebuild. `schema` is how the swap connection names them."""

    live: Engine
    engine: Engine
    schema: str
    path: Path | None = None  # SQLite only

    @property
    def dialect(self) -> str:
        return self.live.dialect.name

    def swap_engine(self) -> Engine:
        """An engine on the live database from which the scratch tables are reachable as `schema`."""
        if self.path is None:
            return self.live
        engine = make_engine(self.live.url.render_as_string(hide_password=False), poolclass=NullPool)
        path = str(self.path)

        @event.listens_for(engine, "connect")
        def _attach(dbapi_conn: Any, _record: Any) -> None:
            # ATTACH cannot run inside a transaction; at connect time none is open yet.
            dbapi_conn.execute(f"ATTACH DATABASE ? AS {SQLITE_ALIAS}", (path,))
            # Memory only: the swap's one transaction rewrites most of the read model's pages.
            dbapi_conn.execute(f"PRAGMA main.{SWAP_CACHE}")
            dbapi_conn.execute(f"PRAGMA {SQLITE_ALIAS}.{SWAP_CACHE}")

        return engine

    def drop(self) -> None:
        """Remove the scratch tables (file or schema). Safe to call twice."""
        self.engine.dispose()
        if self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        quote = self.live.dialect.identifier_preparer.quote
        with write_transaction(self.live) as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {quote(self.schema)} CASCADE"))


def open_scratch(live: Engine, projection_name: str) -> Scratch:
    """Create an empty scratch area for rebuilding `projection_name` next to `live`."""
    stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    safe = _UNSAFE.sub("_", projection_name.lower()).strip("_") or "projection"
    dialect = live.dialect.name
    if dialect == "sqlite":
        database = live.url.database
        if not database or database == ":memory:":
            raise ReplayFailed("a rebuild needs the read models in a database file, not in memory")
        live_path = Path(database)
        path = live_path.with_name(f"{live_path.stem}.rebuild-{safe}-{stamp}.db")
        engine = make_engine(f"sqlite:///{path}")

        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:
            for pragma in SCRATCH_PRAGMAS:
                dbapi_conn.execute(f"PRAGMA {pragma}")

        return Scratch(live=live, engine=engine, schema=SQLITE_ALIAS, path=path)
    if dialect == "postgresql":
        schema = f"rebuild_{safe[:30]}_{stamp}"[:_PG_IDENTIFIER_MAX]
        quote = live.dialect.identifier_preparer.quote
        with write_transaction(live) as conn:
            conn.execute(text(f"CREATE SCHEMA {quote(schema)}"))
        # A rebuilt table is worthless after a crash anyway: no need to wait for the WAL flush.
        options = f"-c search_path={schema} -c synchronous_commit=off"
        engine = make_engine(
            live.url.render_as_string(hide_password=False),
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "options": options},
        )
        return Scratch(live=live, engine=engine, schema=schema)
    raise ReplayFailed(f"rebuild supports sqlite and postgresql read models, not {dialect}")
