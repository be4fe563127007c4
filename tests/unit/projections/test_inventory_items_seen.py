"""Items first seen in a movement: defined from the movement's code and name, flagged provisional;
an item master definition, before or after, always wins; a database from before the flag is upgraded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text

from projections.inventory.projection import Inventory
from projections.inventory.queries import get_item
from projections.inventory.tables import items
from projections.runtime.tracking import ensure_tables
from tests.unit.projections.test_inventory_factories import (
    STENT,
    Feed,
    at,
    consumed,
    inventory_engine,
    received,
    stent_master,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from inventory_engine(db_url)


def _item(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        found = get_item(conn, STENT)
    assert found is not None
    return found


def test_an_item_first_seen_in_a_movement_is_defined_from_it(engine: Engine) -> None:
    feed = Feed(engine)
    feed.apply(received("r1", STENT, 5, when=at(1), item_code="GZ01004", item_name="药物洗脱冠脉支架"))
    found = _item(engine)
    assert (found["item_code"], found["name"], found["provisional"], found["source_system"]) == (
        "GZ01004",
        "药物洗脱冠脉支架",
        True,
        "spd",
    )
    # A later movement naming it otherwise does not rename it; it only fills what is missing.
    feed.apply(consumed("c1", STENT, 1, when=at(2), item_code="GZ01004", item_name="支架(别名)"))
    assert _item(engine)["name"] == "药物洗脱冠脉支架"


def test_a_movement_fills_only_what_is_missing(engine: Engine) -> None:
    feed = Feed(engine)
    feed.apply(received("r1", STENT, 5, when=at(1), item_code="GZ01004"))
    feed.apply(received("r2", STENT, 5, when=at(2), item_code="GZ01004", item_name="药物洗脱冠脉支架"))
    assert (_item(engine)["name"], _item(engine)["provisional"]) == ("药物洗脱冠脉支架", True)


@pytest.mark.parametrize("master_first", [True, False])
def test_the_item_master_wins_before_or_after(engine: Engine, master_first: bool) -> None:
    feed = Feed(engine)
    movement = received("r1", STENT, 5, when=at(5), item_code="GZ-OLD", item_name="旧名")
    master = stent_master()  # defined at T0, before the movement's business time
    feed.apply(*((master, movement) if master_first else (movement, master)))
    found = _item(engine)
    assert (found["item_code"], found["name"], found["provisional"]) == ("STENT", "药物洗脱冠脉支架", False)


def test_a_movement_without_item_details_defines_nothing(engine: Engine) -> None:
    Feed(engine).apply(received("r1", STENT, 5, when=at(1)))
    with engine.connect() as conn:
        assert conn.execute(select(items)).all() == []


def test_an_items_table_from_before_the_flag_is_upgraded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text(f"CREATE TABLE {items.name} (item_id VARCHAR(64) PRIMARY KEY, name TEXT)"))
        conn.execute(text(f"INSERT INTO {items.name} (item_id, name) VALUES ('x', 'old')"))
    old.dispose()
    engine = create_engine(url)
    ensure_tables(engine, Inventory())
    with engine.connect() as conn:
        assert conn.execute(select(items.c.provisional).where(items.c.item_id == "x")).scalar_one() is False
    engine.dispose()
