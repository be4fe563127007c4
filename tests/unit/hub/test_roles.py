"""`hub serve --role`: which pipeline stages a process runs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest
from typer.testing import CliRunner

from hub.cli.app import app
from hub.pipeline import ROLES, parse_roles, run_forever

if TYPE_CHECKING:
    from hub.bootstrap import Hub


class Stage:
    """A stage that says it ran and then waits to be stopped, like the real loops."""

    def __init__(self, name: str, ran: list[str]) -> None:
        self.group = name
        self._ran = ran

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._ran.append(self.group)
        await stop.wait()


def fake_hub(ran: list[str]) -> Hub:
    return cast(
        "Hub",
        SimpleNamespace(
            relay=Stage("relay", ran),
            workers={"hrp": Stage("adapter.hrp", ran), "his": Stage("adapter.his", ran)},
            runners=[Stage("assets", ran), Stage("inventory", ran)],
        ),
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("all", {"relay", "adapter.hrp", "adapter.his", "assets", "inventory"}),
        ("ingest", {"relay"}),
        ("translate", {"adapter.hrp", "adapter.his"}),
        ("project", {"assets", "inventory"}),
        ("ingest, translate", {"relay", "adapter.hrp", "adapter.his"}),
        ("api", set()),
    ],
)
async def test_a_process_runs_the_stages_of_its_roles_only(role: str, expected: set[str]) -> None:
    ran: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(run_forever(fake_hub(ran), stop, parse_roles(role)))
    for _ in range(50):  # each stage records itself at its first step
        await asyncio.sleep(0)
    assert not task.done()  # an api-only process stays up too
    stop.set()
    await asyncio.wait_for(task, 5)
    assert set(ran) == expected
    assert len(ran) == len(expected)


def test_roles_are_read_case_and_space_insensitively() -> None:
    assert parse_roles(" Ingest ,API ") == frozenset({"ingest", "api"})
    assert parse_roles("all") == frozenset(ROLES)
    assert parse_roles("translate,all") == frozenset(ROLES)


def test_an_unknown_role_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown role projector; known: all, ingest, translate"):
        parse_roles("ingest,projector")
    result = CliRunner().invoke(app, ["serve", "--role", "ingest,projector"])
    assert result.exit_code == 2
    assert "projector" in result.output
