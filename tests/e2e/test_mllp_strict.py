"""Opt-in strict HL7 validation per channel (HUB_MLLP_STRICT): hl7apy problems answer AE, and are dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.his.decode import decode
from hub.bootstrap import Hub, build_hub
from hub.ingest.mllp import MllpIngest
from hub.pipeline import drain
from hub.settings import Settings
from tests.e2e.conftest import REPO

HIS = REPO / "examples" / "his"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with build_hub(Settings(data_dir=tmp_path / "hub", mllp_strict=True)) as h:
        yield h


def msa(ack: bytes) -> list[str]:
    return next(s for s in decode(ack).text.split("\r") if s.startswith("MSA")).split("|")


class TestStrictChannel:
    async def test_structurally_invalid_message_is_refused_with_ae(self, hub: Hub) -> None:
        """An ORM^O01 missing the segments its version requires answers AE naming them, and is dead-lettered."""
        ack = await MllpIngest(hub).handle(
            (HIS / "06_orm_o01_dialysis_machine.hl7").read_bytes().replace(b"\n", b"\r"), {}
        )
        assert msa(ack)[1] == "AE"
        assert b"strict HL7 validation" in ack
        letters = await hub.dead_letters.query(system="his")
        assert [d.code for d in letters] == ["invalid_structure"]
        await drain(hub)  # the translator worker keeps it refused: no event, still dead-lettered
        assert [d.code for d in await hub.dead_letters.query(system="his")] == ["invalid_structure"]
        assert (await hub.archive.reconciliation())["his"]["events"] == 0

    async def test_valid_message_passes(self, hub: Hub) -> None:
        """A message hl7apy accepts is answered AA as without strict validation."""
        ack = await MllpIngest(hub).handle(
            (HIS / "07_esu_u01_ventilator_in_use.hl7").read_bytes().replace(b"\n", b"\r"), {}
        )
        assert msa(ack)[1] == "AA"
