"""Snapshot differ: a re-exported ledger publishes only what changed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hub.translation.snapshots import SnapshotDiffer
from schemas._base import DeptRef, Identifier, Money, SourceSystem
from schemas.assets import AssetDetails, AssetRegistered, AssetRegisteredPayload, AssetStatus
from schemas.envelope import Source
from schemas.ids import asset_id_for, event_id_for

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
    async def test_first_sight_passes_through(self, tmp_path: Path) -> None:
        """An asset never seen before is published as registered, unchanged."""
        differ = SnapshotDiffer(tmp_path / "a.db")
        event = registered("ZC-1", line=3)
        result = await differ.diff("hrp", [event], SNAP)
        assert result.events == [event]
        assert result.new == 1
        differ.close()

    async def test_same_row_again_publishes_nothing(self, tmp_path: Path) -> None:
        """After commit, the same content (even from another file and line) yields no event."""
        differ = SnapshotDiffer(tmp_path / "a.db")
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        again = await differ.diff("hrp", [registered("ZC-1", line=9, message="ledger-2.csv")], SNAP)
        assert again.events == []
        assert again.unchanged == 1
        differ.close()

    async def test_changed_row_becomes_one_correction_with_only_changed_fields(self, tmp_path: Path) -> None:
        """A changed department yields exactly one details_corrected naming that field, with before and after."""
        differ = SnapshotDiffer(tmp_path / "a.db")
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

    async def test_correction_ids_are_deterministic(self, tmp_path: Path) -> None:
        """Diffing the same change twice (a crash before commit) yields the same event id."""
        differ = SnapshotDiffer(tmp_path / "a.db")
        await differ.commit(await differ.diff("hrp", [registered("ZC-1", line=3)], SNAP))
        moved = registered("ZC-1", line=3, status=AssetStatus.UNDER_REPAIR)
        first = await differ.diff("hrp", [moved], SNAP)
        second = await differ.diff("hrp", [moved], SNAP)
        assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
        differ.close()

    async def test_new_identifier_is_linked(self, tmp_path: Path) -> None:
        """A ledger row that newly names a serial number yields an identifier_linked event."""
        differ = SnapshotDiffer(tmp_path / "a.db")
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

    async def test_other_types_pass_through_untouched(self, tmp_path: Path) -> None:
        """Events of non-snapshot types are never filtered, even when repeated."""
        differ = SnapshotDiffer(tmp_path / "a.db")
        event = registered("ZC-1", line=3)
        result = await differ.diff("hrp", [event, event], frozenset())
        assert result.events == [event, event]
        assert result.state == []
        differ.close()
