"""Fixtures for projection tests: a read-model engine on SQLite and on PostgreSQL, tables created."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from projections.assets.registry import AssetRegistry
from projections.runtime.db import make_engine
from projections.runtime.tracking import ensure_tables

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh read-model database with the asset registry's tables."""
    eng = make_engine(db_url)
    ensure_tables(eng, AssetRegistry())
    yield eng
    eng.dispose()
