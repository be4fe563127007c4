"""Fixtures for the replay tests: a real embedded bus with the whole topic catalogue, a read-model engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hub.bus.embedded import EmbeddedBus
from projections.runtime.db import make_engine
from topics.catalogue import CATALOGUE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """A started embedded bus (a SQLite log in the test's directory) with every catalogue topic."""
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics(CATALOGUE)
    yield b
    await b.close()


@pytest.fixture
def live(db_url: str) -> Iterator[Engine]:
    """The live read-model database: a SQLite file, then a fresh PostgreSQL database."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
