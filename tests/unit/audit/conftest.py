"""Fixtures for audit ledger tests: a read-model database (SQLite, then PostgreSQL) with the ledger's tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from projections.audit.ledger import AuditLedger
from projections.runtime.db import make_engine
from projections.runtime.tracking import ensure_tables

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the tracking and audit ledger tables."""
    eng = make_engine(db_url)
    ensure_tables(eng, AuditLedger())
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    """The same on SQLite only, for tests that are about the files verify writes, not the database."""
    eng = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    ensure_tables(eng, AuditLedger())
    yield eng
    eng.dispose()
