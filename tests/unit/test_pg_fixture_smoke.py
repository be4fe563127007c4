import pytest
from sqlalchemy import create_engine, text


@pytest.mark.postgres
def test_fresh_database_is_empty(pg_url: str) -> None:
    """A fresh test database has no tables of ours."""
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        n = conn.execute(
            text("select count(*) from information_schema.tables where table_schema='public'")
        ).scalar()
    engine.dispose()
    assert n == 0
