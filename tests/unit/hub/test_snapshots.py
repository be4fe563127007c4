"""Snapshot differ: a re-exported ledger publishes only what changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from hub.ports import event_out_record
from hub.translation.snapshot_state import PostgresSnapshotStore
from hub.translation.snapshots import WIRE_HASH, SnapshotDiffer, content_hash, serialise
from schemas._base import DeptRef, Identifier, Money, SourceSystem
from schemas.assets import AssetDetails, AssetRegistered, AssetRegisteredPayload, AssetStatus
from schemas.catalogue import dump_event
from schemas.envelope import Source
from schemas.ids import asset_id_for, event_id_for

OpenDiffer = Callable[[], SnapshotDiffer]  # the `open_differ` fixture (conftest): SQLite, PostgreSQL
T0 = datetime(2024, 6, 30, 8, 0, tzinfo=UTC)
SNAP = frozenset({"asset.registered"})


def registered(card: str, *, line: int, message: str = "ledger.csv", **details: object) -> AssetRegistered:
    ident = Identifier(scheme="hrp.card", value=card)
    base: dict[str, object] = {
        "name": "呼吸机",
        "department": DeptRef(code="ICU", name="重症医学科"),
        "status": AssetStatus.IN_USE,
        "net_value": Money(amount=Decimal("120000.00")),
    }
    base.update(details)
    return AssetRegistered(
        event_id=event_id_for("hrp", message, f"line:{line}"),
        occurred_at=T0,
        recorded_at=T0,
        source=Source(system=SourceSystem.HRP, site="main", message_id=message, adapter_version="hrp/1"),
        subject=asset_id_for(ident),
        payload=AssetRegisteredPayload(identifiers=[ident], details=AssetDetails(**base)),
    )


class TestSnapshotDiffer:
    async def test_first_sight_passes_through(self, open_differ: OpenDiffer) -> None:
        """An asset never seen before is published as registered, unchanged."""
        differ = open_differ()
        event = registered("ZC-1", line=3)
        result = await differ.diff("hrp", [event], SNAP)
        assert result.events == [event]
        assert result.new == 1
        differ.close()

    async def test_same_row_again_publishes_nothing(self, open_differ: OpenDiffer) -> None:
        """After commit, the same content (even from another file and line) yields no event."""
        differ = open_differ()
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        again = await differ.diff("hrp", [registered("ZC-1", line=9, message="ledger-2.csv")], SNAP)
        assert again.events == []
        assert again.unchanged == 1
        differ.close()

    async def test_changed_row_becomes_one_correction_with_only_changed_fields(
        self, open_differ: OpenDiffer
    ) -> None:
        """A changed department yields exactly one details_corrected naming that field, with before and after."""
        differ = open_differ()
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        moved = registered(
            "ZC-1", line=3, message="ledger-2.csv", department=DeptRef(code="ER", name="急诊科")
        )
        result = await differ.diff("hrp", [moved], SNAP)
        assert [e.type for e in result.events] == ["asset.details_corrected"]
        correction = result.events[0]
        assert correction.payload.changed_fields == ["department"]  # type: ignore[attr-defined]
        assert correction.payload.details.department.name == "急诊科"  # type: ignore[attr-defined]
        assert correction.payload.previous.department.name == "重症医学科"  # type: ignore[attr-defined]
        assert correction.subject == moved.subject
        differ.close()

    async def test_correction_ids_are_deterministic(self, open_differ: OpenDiffer) -> None:
        """Diffing the same change twice (a crash before commit) yields the same event id."""
        differ = open_differ()
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        moved = registered("ZC-1", line=3, status=AssetStatus.UNDER_REPAIR)
        first = await differ.diff("hrp", [moved], SNAP)
        second = await differ.diff("hrp", [moved], SNAP)
        assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
        differ.close()

    async def test_new_identifier_is_linked(self, open_differ: OpenDiffer) -> None:
        """A ledger row that newly names a serial number yields an identifier_linked event."""
        differ = open_differ()
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        event = registered("ZC-1", line=3)
        with_serial = event.model_copy(
            update={
                "payload": event.payload.model_copy(
                    update={
                        "identifiers": [
                            *event.payload.identifiers,
                            Identifier(scheme="serial", value="迈瑞|SV300-001"),
                        ]
                    }
                )
            }
        )
        result = await differ.diff("hrp", [with_serial], SNAP)
        assert [e.type for e in result.events] == ["asset.identifier_linked"]
        differ.close()

    async def test_other_types_pass_through_untouched(self, open_differ: OpenDiffer) -> None:
        """Events of non-snapshot types are never filtered, even when repeated."""
        differ = open_differ()
        event = registered("ZC-1", line=3)
        result = await differ.diff("hrp", [event, event], frozenset())
        assert result.events == [event, event]
        assert result.state == []
        differ.close()


class TestWhatTheStateKeeps:
    async def test_a_diff_reads_hashes_and_only_the_changed_rows_previous_payload(
        self, open_differ: OpenDiffer
    ) -> None:
        """Unchanged rows are compared by hash alone; a previous payload is read for a changed row only."""
        differ = open_differ()
        first = [registered(f"ZC-{i}", line=i) for i in range(50)]
        await differ.commit(await differ.diff("hrp", first, SNAP))
        asked: list[tuple[str, str]] = []
        payloads = differ.store.payloads

        def spy(system: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
            asked.extend(keys)
            return payloads(system, keys)

        differ.store.payloads = spy  # type: ignore[method-assign]  # a spy on what the diff reads
        again = [*first[:49], registered("ZC-49", line=49, name="转运呼吸机")]
        result = await differ.diff("hrp", again, SNAP)
        assert (result.unchanged, result.corrected) == (49, 1)
        assert asked == [(again[49].subject, "asset.registered")]
        assert result.events[0].type == "asset.details_corrected"

    async def test_types_without_a_correction_keep_the_hash_alone(self, open_differ: OpenDiffer) -> None:
        """The state of a snapshot type republished whole (SPD item definitions here) holds no payload."""
        differ = open_differ()
        event = registered("ZC-1", line=3)
        item = event.model_copy(update={"type": "inventory.item_defined"})
        await differ.commit(await differ.diff("spd", [item], frozenset({"inventory.item_defined"})))
        await differ.commit(await differ.diff("hrp", [event], SNAP))
        item_key, asset_key = (item.subject, item.type), (event.subject, event.type)
        assert differ.store.hashes("spd", [item_key]).keys() == {item_key}
        assert differ.store.payloads("spd", [item_key]) == {}
        kept = differ.store.payloads("hrp", [asset_key])  # the correction's `previous` needs it
        assert kept[asset_key]["details"]["name"] == "呼吸机"
        changed = registered("ZC-1", line=3, name="转运呼吸机").model_copy(
            update={"type": "inventory.item_defined"}
        )
        again = await differ.diff("spd", [changed], frozenset({"inventory.item_defined"}))
        assert (again.corrected, [e.type for e in again.events]) == (1, ["inventory.item_defined"])
        assert again.events[0].event_id != changed.event_id  # the new state under its content id


def legacy_state(differ: SnapshotDiffer, events: Sequence[AssetRegistered]) -> None:
    """State as an earlier hub wrote it: the hash of the payload as sorted JSON, and the payload."""
    differ.store.commit(
        [
            (
                "hrp",
                e.subject,
                e.type,
                content_hash(e.model_dump(mode="json", by_alias=True)["payload"]),
                json.dumps(e.model_dump(mode="json", by_alias=True)["payload"], ensure_ascii=False),
            )
            for e in events
        ],
        [],
    )


class TestOneSerialisation:
    async def test_records_carry_the_events_wire_bytes(self, open_differ: OpenDiffer) -> None:
        """What the differ serialised is what goes on the bus: each published event's record equals
        the one made from the event itself (new rows, and corrections made from changed ones)."""
        differ = open_differ()
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        moved = registered("ZC-1", line=3, department=DeptRef(code="ER", name="急诊科"))
        result = await differ.diff("hrp", [moved, registered("ZC-2", line=4)], SNAP)
        pairs = result.out_records()
        assert [e.type for e, _ in pairs] == ["asset.details_corrected", "asset.registered"]
        assert [r for _, r in pairs] == [event_out_record(e) for e, _ in pairs]
        assert all(id(e) in result.records for e, _ in pairs)  # none serialised on the event loop

    def test_serialise_gives_dump_event_bytes_and_the_payload(self) -> None:
        event = registered("ZC-1", line=3)
        wire, body = serialise(event)
        assert wire == dump_event(event)
        assert json.loads(body) == json.loads(wire)["payload"]
        assert serialise(event) == (wire, body)  # the spliced form, after the first of its class

    async def test_state_of_an_earlier_hub_is_compared_and_rewritten(self, open_differ: OpenDiffer) -> None:
        """A ledger diffed by an earlier hub (sorted-JSON hashes) re-exported unchanged publishes
        nothing and moves its state to the current hash; a changed row is still corrected."""
        differ = open_differ()
        ledger = [registered(f"ZC-{i}", line=i) for i in range(5)]
        legacy_state(differ, ledger)
        again = [*ledger[:4], registered("ZC-4", line=4, name="转运呼吸机")]
        result = await differ.diff("hrp", again, SNAP)
        assert (result.new, result.unchanged, result.corrected) == (0, 4, 1)
        assert [e.type for e in result.events] == ["asset.details_corrected"]
        assert result.events[0].payload.previous.name == "呼吸机"  # type: ignore[attr-defined]
        await differ.commit(result)
        keys = [(e.subject, e.type) for e in again]
        assert all(h.startswith(WIRE_HASH) for h in differ.store.hashes("hrp", keys).values())
        assert (await differ.diff("hrp", again, SNAP)).unchanged == 5


@pytest.mark.postgres
class TestTwoNodesOnOnePostgres:
    """With HUB_ARCHIVE_URL every node diffs against the same state: a re-export reaching another
    node than the first export yields corrections, not whole copies."""

    async def test_a_re_export_on_another_node_publishes_only_the_correction(self, pg_url: str) -> None:
        node_a, node_b = (
            SnapshotDiffer(PostgresSnapshotStore(pg_url)),
            SnapshotDiffer(PostgresSnapshotStore(pg_url)),
        )
        ledger = [registered(f"ZC-{i}", line=i) for i in range(20)]
        first = await node_a.diff("hrp", ledger, SNAP)
        assert (first.new, len(first.events)) == (20, 20)
        await node_a.commit(first)

        again = [registered(f"ZC-{i}", line=i, message="ledger-2.csv") for i in range(20)]
        again[7] = registered(
            "ZC-7", line=7, message="ledger-2.csv", department=DeptRef(code="ER", name="急诊科")
        )
        result = await node_b.diff("hrp", again, SNAP)
        assert (result.new, result.unchanged, result.corrected) == (0, 19, 1)
        (fix,) = result.events
        assert fix.type == "asset.details_corrected"
        assert fix.subject == again[7].subject
        assert fix.payload.previous.department.name == "重症医学科"  # type: ignore[attr-defined]
        await node_b.commit(result)

        # And back: node A now sees node B's state, so the same re-export is nothing new to it.
        assert (await node_a.diff("hrp", again, SNAP)).events == []
        node_a.close()
        node_b.close()
