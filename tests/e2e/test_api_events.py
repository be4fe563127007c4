"""GET /events/stream: Server-Sent Events from the log, filtered, resumable without loss or repeats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.api.routes.events import Cursor
from hub.auth.roles import Role
from hub.bootstrap import Hub
from hub.ports import event_out_record
from schemas.audit import AccessRecorded
from schemas.catalogue import parse_event
from schemas.envelope import EventBase
from tests.e2e.conftest import REPO, Wired, wired_hub
from tests.unit.schemas.examples import example_event

OA = REPO / "examples" / "oa" / "工单导出_2024Q2.json"


def sse(text: str) -> list[dict[str, str]]:
    """The messages of an SSE body (comments and the retry hint left out)."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            out.append(fields)
    return out


class Reads:
    def __init__(self) -> None:
        self.events: list[AccessRecorded] = []

    async def __call__(self, event: EventBase) -> None:
        assert isinstance(event, AccessRecorded)
        self.events.append(event)


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[tuple[Wired, Reads]]:
    reads = Reads()
    async with wired_hub(tmp_path / "hub", access_log=reads) as w:
        await w.ingest("oa", OA)
        yield w, reads


@pytest.fixture
def hub(wired: tuple[Wired, Reads]) -> Hub:
    return wired[0].hub


@pytest.fixture
def client(wired: tuple[Wired, Reads]) -> tuple[httpx.AsyncClient, dict[str, str], Reads]:
    w, reads = wired
    tokens = {"app": w.token(Role.APP), "ward": w.token(Role.VIEWER, "0301")}
    return w.http, tokens, reads


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestEventStream:
    async def test_resuming_from_an_id_continues_exactly_after_it(
        self, client: tuple[httpx.AsyncClient, dict[str, str], Reads]
    ) -> None:
        """Ten events from the beginning; reconnecting with the 4th id gives the 5th onwards, nothing twice."""
        http, tokens, reads = client
        params = {"from": "beginning", "topics": "canonical.workorder.v1", "limit": "10"}
        first = sse((await http.get("/events/stream", params=params, headers=bearer(tokens["app"]))).text)
        assert len(first) == 10
        ids = [json.loads(m["data"])["event_id"] for m in first]
        assert len(set(ids)) == 10
        assert all(parse_event(m["data"]).type == m["event"] for m in first)
        resumed = await http.get(
            "/events/stream",
            params={**params, "limit": "6"},
            headers={**bearer(tokens["app"]), "Last-Event-ID": first[3]["id"]},
        )
        assert [json.loads(m["data"])["event_id"] for m in sse(resumed.text)] == ids[4:10]
        assert [(r.payload.action, r.payload.resource) for r in reads.events] == [
            ("events.stream", "canonical.workorder.v1")
        ] * 2

    async def test_type_filter_with_prefixes(
        self, client: tuple[httpx.AsyncClient, dict[str, str], Reads]
    ) -> None:
        http, tokens, _ = client
        params = {"from": "beginning", "types": "workorder.completed,asset.*", "limit": "20"}
        got = sse((await http.get("/events/stream", params=params, headers=bearer(tokens["app"]))).text)
        assert got
        assert {m["event"] for m in got} <= {"workorder.completed"} | {
            m["event"] for m in got if m["event"].startswith("asset.")
        }
        assert any(m["event"] == "workorder.completed" for m in got)

    async def test_from_now_waits_for_what_is_published_next(
        self, client: tuple[httpx.AsyncClient, dict[str, str], Reads], hub: Hub
    ) -> None:
        """A stream from now sees nothing of the past, then the event published after it opened."""
        http, tokens, _ = client
        pending = asyncio.create_task(
            http.get("/events/stream", params={"limit": "1"}, headers=bearer(tokens["app"]))
        )
        await asyncio.sleep(1.5)
        event = example_event("asset.relocated")
        await hub.bus.publish("canonical.asset.v1", [event_out_record(event)])
        [message] = sse((await asyncio.wait_for(pending, 30)).text)
        assert message["event"] == "asset.relocated"
        assert json.loads(message["data"])["event_id"] == str(event.event_id)

    async def test_refusals(self, client: tuple[httpx.AsyncClient, dict[str, str], Reads], hub: Hub) -> None:
        http, tokens, _ = client
        assert (await http.get("/events/stream", params={"limit": "1"})).status_code == 401
        ward = await http.get("/events/stream", params={"limit": "1"}, headers=bearer(tokens["ward"]))
        assert ward.status_code == 403
        bad_topic = await http.get(
            "/events/stream", params={"topics": "raw.his.v1"}, headers=bearer(tokens["app"])
        )
        assert bad_topic.status_code == 422
        naive = await http.get(
            "/events/stream", params={"from": "2024-01-01T00:00"}, headers=bearer(tokens["app"])
        )
        assert naive.status_code == 422
        forged = await http.get(
            "/events/stream", headers={**bearer(tokens["app"]), "Last-Event-ID": "not-a-cursor"}
        )
        assert forged.status_code == 400


class TestCursor:
    @given(
        st.dictionaries(
            st.tuples(st.sampled_from(["canonical.asset.v1", "derived.workorder.v1"]), st.integers(0, 9)),
            st.integers(0, 2**53),
        ),
        st.none() | st.integers(0, 2**45),
    )
    def test_round_trip(self, positions: dict[tuple[str, int], int], since: int | None) -> None:
        cursor = Cursor(positions, since)
        assert Cursor.decode(cursor.encode()) == cursor

    @given(st.text(max_size=200))
    def test_anything_else_is_refused_cleanly(self, text: str) -> None:
        """Random text is a ValueError or a real cursor (which then survives a round trip), never a crash."""
        try:
            cursor = Cursor.decode(text)
        except ValueError:
            return
        assert Cursor.decode(cursor.encode()) == cursor
