"""The snapshot differ's state on each backend (hub.translation.snapshot_state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hub.translation.snapshot_state import PostgresSnapshotStore, SqliteSnapshotStore
from hub.translation.snapshots import SnapshotDiffer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_differ(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SnapshotDiffer]]:
    """Opens a differ on one storage (a SQLite file, then a fresh PostgreSQL database); each call
    opens another on the same storage, as a restarted or a second node would."""
    if request.param == "sqlite":
        path = tmp_path / "archive.db"

        def store() -> SqliteSnapshotStore | PostgresSnapshotStore:
            return SqliteSnapshotStore(path)
    else:
        url = str(request.getfixturevalue("pg_url"))

        def store() -> SqliteSnapshotStore | PostgresSnapshotStore:
            return PostgresSnapshotStore(url)

    opened: list[SnapshotDiffer] = []

    def open_one() -> SnapshotDiffer:
        opened.append(SnapshotDiffer(store()))
        return opened[-1]

    yield open_one
    for differ in opened:
        differ.close()
