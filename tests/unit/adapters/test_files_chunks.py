"""Tabular exports translated in chunks: the same translation as whole, one chunk of rows at a time."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from adapters._files.grid import ReadLimits
from adapters._files.tabular import footprint, stream_grid
from adapters.errors import MalformedMessage
from adapters.hrp import ADAPTER as HRP
from adapters.hrp.mapping import default_mapping as hrp_mapping
from adapters.spd import ADAPTER as SPD
from adapters.spd.mapping import default_mapping as spd_mapping
from tests.unit.adapters._hrp import LEDGER, SUPPLEMENT, context, ledger_csv, raw_record

SPD_EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "spd"


@pytest.mark.parametrize("path", [LEDGER, SUPPLEMENT], ids=["csv", "xlsx"])
def test_hrp_chunks_join_to_the_whole_translation(path: Path) -> None:
    """Chunks of 50 rows: several of them, and together the same events, failures and skips, in order."""
    mapping = hrp_mapping()
    raw, ctx = raw_record(path.name), context(mapping)
    payload = path.read_bytes()
    whole = HRP.translate(raw, payload, mapping, ctx)
    assert HRP.translate_chunks is not None
    chunks = list(HRP.translate_chunks(raw, payload, mapping, ctx, 50))
    assert len(chunks) == whole.units // 50 + 1
    assert all(c.units == 50 for c in chunks[:-1])
    assert [e.event.event_id for c in chunks for e in c.events] == [e.event.event_id for e in whole.events]
    assert [e.event for c in chunks for e in c.events] == [e.event for e in whole.events]
    assert [f for c in chunks for f in c.failures] == list(whole.failures)
    assert [s for c in chunks for s in c.skipped] == list(whole.skipped)
    assert sum(c.units for c in chunks) == whole.units


def test_a_repeated_card_in_a_later_chunk_is_still_caught() -> None:
    """Per-file state (cards seen) spans chunks: a card repeated three chunks later is a duplicate."""
    rows = [f"ZC-{i:05d},监护仪,M1,厂,S{i},ICU,3F,2020-01-01,1000,在用," for i in range(10)]
    rows.append("ZC-00001,监护仪,M1,厂,S99,ICU,3F,2020-01-01,1000,在用,")
    mapping = hrp_mapping()
    assert HRP.translate_chunks is not None
    chunks = list(HRP.translate_chunks(raw_record("l.csv"), ledger_csv(*rows), mapping, context(mapping), 3))
    failures = [f for c in chunks for f in c.failures]
    assert [f.code for f in failures] == ["duplicate_key"]
    assert sum(len(c.events) for c in chunks) == 10


def test_spd_chunks_join_to_the_whole_translation() -> None:
    mapping = spd_mapping()
    path = SPD_EXAMPLES / "01_物资字典.csv"
    raw = replace(raw_record(path.name), system="spd")
    ctx = replace(context(hrp_mapping()), adapter_version=SPD.version, mapping_version=mapping.version)
    whole = SPD.translate(raw, path.read_bytes(), mapping, ctx)
    assert SPD.translate_chunks is not None
    chunks = list(SPD.translate_chunks(raw, path.read_bytes(), mapping, ctx, 7))
    assert len(chunks) > 2
    assert [e.event for c in chunks for e in c.events] == [e.event for e in whole.events]


def test_a_csv_broken_on_its_last_line_is_refused_before_any_row_is_handed_over() -> None:
    """The CSV is checked whole first: a limit passed at the end fails the open, not a later chunk."""
    text = "a,b\n" + "1,2\n" * 50 + "x," + "y" * 100 + "\n"
    with pytest.raises(MalformedMessage, match="line 52"):
        stream_grid(text.encode(), filename="f.csv", limits=ReadLimits(max_cell_chars=50))
    mapping = hrp_mapping()
    assert HRP.translate_chunks is not None
    too_wide = ledger_csv(*["ZC-1,监护仪,M1,厂,S1,ICU,3F,2020-01-01,1000,在用,"] * 3, "," * 300 + "x")
    chunks = HRP.translate_chunks(raw_record("l.csv"), too_wide, mapping, context(mapping), 1)
    with pytest.raises(MalformedMessage, match="columns"):
        next(chunks)


def test_footprint_counts_what_reading_holds_whole() -> None:
    """CSV: the bytes and the per-file keys (the text is streamed); XLSX: the bytes and its shared
    strings, inflated."""
    csv_bytes = LEDGER.read_bytes()
    assert footprint(csv_bytes) == 2 * len(csv_bytes)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:  # only the directory is read
        archive.writestr("xl/sharedStrings.xml", b"<si><t>x</t></si>" * 10_000)
        archive.writestr("xl/worksheets/sheet1.xml", b"<row/>" * 10_000)
    xlsx = out.getvalue()
    assert footprint(xlsx) == len(xlsx) + 4 * 170_000
