"""The README's "Writing a site mapping" examples work: each mapping file is quoted in the README
as it is in examples/mappings/, and `hub mapping check` with it on its sample translates every
row, claims or ignores every non-empty field and shows what the guide says it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.cli.ingest import dry_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "mappings"
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = README[README.index("### Writing a site mapping") :]

CASES = [
    ("hrp", "hrp.yaml", "设备台账_两行表头.xlsx", ["lines 2-3: 2 header rows", "在用状态", "unclaimed 0"]),
    ("spd", "spd.yaml", "出入库流水_UDI.csv", ["器械UDI", "lot=2405A01", "unclaimed 0"]),
    ("oa", "oa.yaml", "维修流程_嵌套.xml", ["workorder.approved", "workorder.completed", "unclaimed 0"]),
    ("his", "his.yaml", "急停_EQU_HRP卡片.hl7", ["asset.status_changed", "under_repair", "unclaimed 0"]),
]


@pytest.mark.parametrize(("system", "mapping", "sample", "shown"), CASES, ids=[c[0] for c in CASES])
def test_each_guide_example_passes_mapping_check(
    tmp_path: Path, system: str, mapping: str, sample: str, shown: list[str]
) -> None:
    text = (EXAMPLES / mapping).read_text(encoding="utf-8")
    assert f"```yaml\n{text}```" in GUIDE, f"the README does not quote examples/mappings/{mapping} as it is"
    result = CliRunner().invoke(
        app,
        [
            "mapping", "check", system, str(EXAMPLES / sample),
            "--mapping", str(EXAMPLES / mapping), "--data-dir", str(tmp_path / "hub"),
        ],
        terminal_width=400,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for needle in shown:
        assert needle in result.output, needle
    assert "failures 0" in result.output


def test_the_guide_shows_each_source() -> None:
    for heading in ("HRP ledger, XLSX with a two-row header", "SPD movement log with a UDI column",
                    "OA workflow export with nested records", "HIS identifier namespaces"):  # fmt: skip
        assert heading in GUIDE


def test_the_hl7_e_stop_lands_on_the_hrp_ledgers_asset(tmp_path: Path) -> None:
    """The namespace example's point: ZC2019007^ZCK is the HRP card of the ledger example's row."""
    settings = tmp_path / "hub"
    ledger = dry_run("hrp", EXAMPLES / "设备台账_两行表头.xlsx", EXAMPLES / "hrp.yaml", settings)
    e_stop = dry_run("his", EXAMPLES / "急停_EQU_HRP卡片.hl7", EXAMPLES / "his.yaml", settings)
    [status] = e_stop.events
    assert status.event.subject == ledger.events[0].event.subject
    without = dry_run("his", EXAMPLES / "急停_EQU_HRP卡片.hl7", None, settings)
    assert without.events[0].event.subject != ledger.events[0].event.subject


def test_the_spd_log_reads_every_udi_form(tmp_path: Path) -> None:
    result = dry_run("spd", EXAMPLES / "出入库流水_UDI.csv", EXAMPLES / "spd.yaml", tmp_path / "hub")
    assert len(result.events) == 4
    for emitted in result.events:
        payload = emitted.event.payload
        assert payload.lot == "2405A01"  # type: ignore[attr-defined]
        assert payload.item_name == "药物洗脱冠脉支架"  # type: ignore[attr-defined]
    received = [e.event.payload for e in result.events if e.event.type == "inventory.received"]
    assert [p.serials for p in received] == [["SN0001"], ["SN0002"]]  # type: ignore[attr-defined]
