"""The bundled HIS samples (examples/his), and helpers the other HIS tests share."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext, Translation
from adapters.his import ADAPTER
from adapters.his.header import header
from adapters.his.mapping import HisMapping, default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "his"
SECRET = b"test-secret-for-patient-tokens-0123456789"
RECEIVED = datetime(2024, 6, 20, 1, 2, 3, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sample(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def sample_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.hl7"))


def mapping(base: HisMapping | None = None) -> HisMapping:
    return (base or default_mapping()).with_secret(SECRET)


def context(his_mapping: HisMapping | None = None) -> TranslateContext:
    return TranslateContext(
        site="demo",
        tz=SHANGHAI,
        adapter_version=ADAPTER.version,
        mapping_version=(his_mapping or default_mapping()).version,
    )


def raw_for(payload: bytes, *, message_id: str | None = None, filename: str | None = None) -> RawRecord:
    if message_id is None:
        message_id = header(payload).control_id
    return RawRecord(
        raw_ref=f"raw-{message_id}",
        system="his",
        site="demo",
        message_id=message_id,
        sha256="0" * 64,
        size=len(payload),
        transport="mllp",
        received_at=RECEIVED,
        metadata={"filename": filename} if filename else {},
    )


def run(
    payload: bytes, his_mapping: HisMapping | None = None, *, message_id: str | None = None
) -> Translation:
    chosen = his_mapping or mapping()
    return ADAPTER.translate(raw_for(payload, message_id=message_id), payload, chosen, context(chosen))


def hl7(*segments: str, end: str = "\r") -> bytes:
    return (end.join(segments) + end).encode("utf-8")


class TestSamples:
    def test_every_sample_is_documented_in_the_readme(self):
        """Each .hl7 file in examples/his appears in the README table, and the README names no missing file."""
        readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
        named = set(re.findall(r"^\| (\S+\.hl7) \|", readme, flags=re.MULTILINE))
        assert named == {p.name for p in sample_files()}

    def test_samples_say_they_are_synthetic(self):
        """The README and the generator state that the samples are team-authored and invented."""
        assert "Synthetic, written by the hub team" in (EXAMPLES / "README.md").read_text(encoding="utf-8")
        assert "invented by the hub team" in (EXAMPLES / "generate.py").read_text(encoding="utf-8")

    def test_gbk_sample_really_holds_trail_bytes_equal_to_delimiters(self):
        """The GBK sample contains a character whose second byte is `|` (so it exercises decode-first)."""
        payload = sample("02_dft_p03_pacemaker_gbk.hl7")
        assert "東".encode("gbk") in payload
        assert "東".encode("gbk")[1:] == b"|"
        assert b"\n" not in payload

    def test_gb18030_sample_holds_a_four_byte_character(self):
        """The GB18030 sample holds 㛃, which GBK cannot encode."""
        payload = sample("03_dft_p03_hip_gb18030.hl7")
        assert len("㛃".encode("gb18030")) == 4
        assert "㛃".encode("gb18030") in payload
