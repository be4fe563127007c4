"""History with provenance: every event of a subject, from every source, traced to its raw message."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest

from hub.bus.embedded import EmbeddedBus
from hub.errors import ArchiveError
from hub.ingest.archive import SqliteRawArchive
from hub.ports import InboundMessage, RawRecord
from replay.history import HistoryEntry, SubjectKind, history
from schemas._base import DeptRef, Identifier, LocationRef
from schemas.assets import AssetLoaned, AssetUsed, LoanedPayload, UsedPayload
from schemas.derived import ComplianceDue, ComplianceDuePayload
from schemas.envelope import EventBase
from schemas.ids import asset_id_for
from schemas.inventory import ConsumedPayload, InventoryConsumed
from schemas.work_orders import AssignedPayload, RequestedPayload, WorkOrderAssigned, WorkOrderRequested
from tests.unit.projections.factories import registered
from tests.unit.replay.streams import link, publish, source

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
UDI = "(01)06942153500012(21)SN0001"
CARD = Identifier(scheme="hrp.card", value="ZC-2024-00001")
OA_NO = Identifier(scheme="oa.no", value="OA-77")
ASSET = asset_id_for(CARD)
PROVISIONAL = asset_id_for(OA_NO)
SYSTEMS = ("hrp", "oa", "fhir", "his", "spd")


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[SqliteRawArchive]:
    a = SqliteRawArchive(tmp_path / "archive.db")
    yield a
    a.close()


def make(
    cls: type[EventBase], label: str, subject: str, *, at: datetime, system: str, ref: str, payload: Any
) -> Any:
    return cls(
        event_id=uuid5(NAMESPACE_URL, label),
        occurred_at=at,
        recorded_at=at + timedelta(minutes=1),
        source=source(system, f"{system}-msg-{label}", ref),
        subject=subject,
        payload=payload,
    )


async def fleet(bus: EmbeddedBus, archive: SqliteRawArchive) -> dict[str, str]:
    """One device named by HRP (card + UDI), OA (its own number, linked later), FHIR (repair job),
    HIS (usage) and SPD (an implant consumed with the same UDI); plus another device and job."""
    refs = {}
    for system in SYSTEMS:
        stored = await archive.store(
            InboundMessage(
                system=system,
                payload=f"{system} bytes 原文".encode(),
                transport="file",
                message_id=f"{system}.txt",
                site="main",
            )
        )
        refs[system] = stored.record.raw_ref
    reg = registered("reg", ASSET, at=T0, card=CARD.value, udi=UDI)
    reg = reg.model_copy(update={"source": source("hrp", "ledger.csv", refs["hrp"])})
    other = registered("other", "AST-other", at=T0, card="ZC-OTHER").model_copy(
        update={"source": source("hrp", "ledger.csv", refs["hrp"])}
    )
    loan = make(
        AssetLoaned,
        "loan",
        PROVISIONAL,
        at=T0 + timedelta(days=1),
        system="oa",
        ref=refs["oa"],
        payload=LoanedPayload(loan_id="JY1", borrower_department=DeptRef(code="ER")),
    )
    linked = link("link", ASSET, OA_NO, at=T0 + timedelta(days=2)).model_copy(
        update={"source": source("hrp", "links.csv", refs["hrp"])}
    )
    used = make(
        AssetUsed,
        "used",
        ASSET,
        at=T0 + timedelta(days=3),
        system="his",
        ref=refs["his"],
        payload=UsedPayload(patient_token="tok"),
    )
    request = make(
        WorkOrderRequested,
        "wo",
        "WO-1",
        at=T0 + timedelta(days=4),
        system="fhir",
        ref=refs["fhir"],
        payload=RequestedPayload(asset=CARD, reporting_department=DeptRef(code="ICU"), symptom="报警"),
    )
    assigned = make(
        WorkOrderAssigned,
        "wo-assigned",
        "WO-1",
        at=T0 + timedelta(days=5),
        system="fhir",
        ref=refs["fhir"],
        payload=AssignedPayload(engineer="王工"),
    )
    other_job = make(
        WorkOrderRequested,
        "wo2",
        "WO-2",
        at=T0 + timedelta(days=4),
        system="oa",
        ref=refs["oa"],
        payload=RequestedPayload(
            asset=Identifier(scheme="hrp.card", value="ZC-OTHER"),
            reporting_department=DeptRef(code="ICU"),
            symptom="异响",
        ),
    )
    consumed = make(
        InventoryConsumed,
        "implant",
        "ITM-1",
        at=T0 + timedelta(days=6),
        system="spd",
        ref=refs["spd"],
        payload=ConsumedPayload(
            location=LocationRef(department=DeptRef(code="OR")), quantity=Decimal(1), udi=UDI
        ),
    )
    await publish(bus, [reg, other, loan, linked, used])
    await publish(bus, [request, assigned, other_job], topic="canonical.workorder.v1")
    await publish(bus, [consumed], topic="canonical.inventory.v1")
    due = ComplianceDue(
        event_id=uuid5(NAMESPACE_URL, "due"),
        occurred_at=T0 + timedelta(days=7),
        recorded_at=T0 + timedelta(days=7),
        source=source("hub", "compliance"),
        subject=ASSET,
        payload=ComplianceDuePayload(
            asset_id=ASSET, kind="calibration", due_on=(T0 + timedelta(days=30)).date()
        ),
    )
    await publish(bus, [due], topic="derived.compliance.v1")
    return refs


def types(entries: list[HistoryEntry]) -> list[str]:
    return [e.event_type for e in entries]


class TestAssetHistory:
    async def test_lists_every_source_oldest_first(self, bus: EmbeddedBus, archive: SqliteRawArchive) -> None:
        """The device's history holds its own, its provisional and its repair job's events, in business time."""
        await fleet(bus, archive)
        entries = await history(bus, SubjectKind.ASSET, ASSET)
        assert types(entries) == [
            "asset.registered",
            "asset.loaned",
            "asset.identifier_linked",
            "asset.used",
            "workorder.requested",
            "workorder.assigned",
        ]
        assert {e.source_system for e in entries} == {"hrp", "oa", "his", "fhir"}
        assert [e.subject for e in entries][1] == PROVISIONAL

    async def test_each_entry_names_its_source_message_and_raw_bytes(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """Every entry carries system, message id and raw reference; the archive lookup gives the bytes' sha256."""
        refs = await fleet(bus, archive)

        async def lookup(ref: str) -> RawRecord | None:
            try:
                return await archive.get(ref)
            except ArchiveError:
                return None

        entries = await history(bus, SubjectKind.ASSET, ASSET, raw_lookup=lookup)
        for entry in entries:
            assert entry.raw_ref == refs[entry.source_system]
            assert entry.message_id.startswith(entry.source_system) or entry.message_id.endswith(".csv")
            assert entry.raw is not None
            payload = await archive.payload(entry.raw_ref)
            assert entry.raw.sha256 == hashlib.sha256(payload).hexdigest()

    async def test_a_reference_missing_from_the_archive_is_shown_as_such(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """An event whose raw reference the archive does not hold gets raw=None, not an error."""
        await fleet(bus, archive)

        async def nothing(ref: str) -> RawRecord | None:
            return None

        entries = await history(bus, SubjectKind.ASSET, ASSET, raw_lookup=nothing)
        assert entries
        assert all(e.raw is None and e.raw_ref for e in entries)

    async def test_derived_conclusions_only_when_asked(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """compliance.due about the device appears with include_derived, and not without."""
        await fleet(bus, archive)
        plain = await history(bus, SubjectKind.ASSET, ASSET)
        full = await history(bus, SubjectKind.ASSET, ASSET, include_derived=True)
        assert "compliance.due" not in types(plain)
        assert types(full)[-1] == "compliance.due"

    async def test_since_skips_what_was_recorded_before(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """With since, the log is entered by record time and only later-recorded events are listed."""
        await fleet(bus, archive)
        entries = await history(bus, SubjectKind.ASSET, ASSET, since=T0 + timedelta(days=3, minutes=1))
        assert types(entries) == ["asset.used", "workorder.requested", "workorder.assigned"]

    async def test_an_unknown_asset_has_no_history(self, bus: EmbeddedBus, archive: SqliteRawArchive) -> None:
        """An id nothing names gives an empty list."""
        await fleet(bus, archive)
        assert await history(bus, SubjectKind.ASSET, "AST-nobody") == []


class TestOtherSubjects:
    async def test_udi_lists_every_event_naming_the_code(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """The UDI is in the device's registration and in the implant consumption, and nowhere else."""
        await fleet(bus, archive)
        entries = await history(bus, SubjectKind.UDI, UDI)
        assert types(entries) == ["asset.registered", "inventory.consumed"]

    async def test_work_order_and_item_are_listed_by_their_key(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """A work order's events and an item's events, found by the id they are keyed by."""
        await fleet(bus, archive)
        assert types(await history(bus, SubjectKind.WORKORDER, "WO-1")) == [
            "workorder.requested",
            "workorder.assigned",
        ]
        assert types(await history(bus, SubjectKind.ITEM, "ITM-1")) == ["inventory.consumed"]

    async def test_the_summary_is_short_and_leaves_patient_tokens_out(
        self, bus: EmbeddedBus, archive: SqliteRawArchive
    ) -> None:
        """Summaries name the payload's content compactly; the usage event's patient token is not shown."""
        await fleet(bus, archive)
        entries = {e.event_type: e for e in await history(bus, SubjectKind.ASSET, ASSET)}
        assert "tok" not in entries["asset.used"].summary
        assert "hrp.card:ZC-2024-00001" in entries["asset.registered"].summary
        assert entries["workorder.requested"].summary.startswith("asset=hrp.card:ZC-2024-00001")
        assert all(len(e.summary) < 400 for e in entries.values())
