"""Run one reader on a ~100 MB input in this process and print what happened and the peak RSS.

Used by test_attack_inputs.py in subprocesses, so the figure is this reader's alone and not the
cost of building the input: `python -m tests.reliability.big_input make <target> <MB> <path>`
writes an input, `python -m tests.reliability.big_input <target> <path>` reads it (for `mllp`:
`mllp <MB>`, streamed) and prints one JSON line:
{"target", "input_bytes", "outcome", "detail", "baseline_rss_mb", "peak_rss_mb"}.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import zipfile
from pathlib import Path

from adapters.errors import MalformedMessage
from adapters.his.mllp import FrameTooLarge, MllpFramer
from tests.reliability.fuzzing import ROOT, translate

MB = 1024 * 1024
# The bundled PTCA charge message (two consumptions), each copy with its own MSH-10.
DFT = (ROOT / "examples" / "his" / "01_dft_p03_ptca_prt_utf8.hl7").read_text(encoding="utf-8").replace(
    "{", "{{"
).replace("}", "}}").replace("|DFT20240612001|", "|DFT{n:09d}|").rstrip("\r\n") + "\r"
CSV_HEADER = "物资编码,物资名称,规格型号,单位,生产厂家,单价,出库数量,出库日期,领用科室\r\n"
CSV_ROW = "WZ{n:08d},一次性输液器,20滴/ml,支,山东威高,1.20,2,2024-06-12,重症医学科\r\n"


def _rss_mb() -> float:
    """The RSS now (baseline). The peak is ru_maxrss; comparing against the current RSS, not an
    earlier high-water mark of the imports, counts all of the reader's growth."""
    resident_pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return resident_pages * resource.getpagesize() / MB


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # Linux: kilobytes


def _repeat(template: str, size: int, encoding: str = "utf-8") -> bytes:
    """`template` filled with n = 0, 1, ... up to ~1 MB, that block repeated up to `size` bytes."""
    block = bytearray()
    n = 0
    while len(block) < min(size, 1_000_000):
        block += template.format(n=n).encode(encoding)
        n += 1
    return bytes(block) * max(1, size // len(block))


def _xlsx(size: int) -> bytes:
    # No r= attributes (they are optional): the repeated blocks still number their rows 1, 2, 3...
    cells = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in CSV_ROW.strip().split(","))
    rows = _repeat("<row>" + cells + "</row>", size)
    header = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in CSV_HEADER.strip().split(","))
    sheet = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    sheet += f"<row>{header}</row>".encode() + rows + b"</sheetData></worksheet>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # stored: 100 MB on disk too
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return out.getvalue()


SYSTEMS = {"his": "his", "csv": "spd", "xlsx": "spd", "oa": "oa", "fhir": "fhir"}
NAMES = {
    "his": "big.hl7",
    "csv": "04_出库配送单_big.csv",
    "xlsx": "05_消耗扫码_big.xlsx",
    "oa": "big.json",
    "fhir": "big",
}


def make(target: str, size: int) -> bytes:
    """A ~`size`-byte input for `target` (not for mllp, which is streamed)."""
    makers = {
        "his": lambda: _repeat(DFT, size),
        "csv": lambda: CSV_HEADER.encode("gbk") + _repeat(CSV_ROW, size, "gbk"),
        "xlsx": lambda: _xlsx(size),
        "oa": lambda: b'{"records": [' + _repeat('{{"单据号": "LC{n}"}},', size) + b"{}]}",
        "fhir": lambda: (
            b'{"resourceType": "Bundle", "type": "batch", "entry": [' + _repeat("{{}},", size) + b"{}]}"
        ),
    }
    return makers[target]()


def run(target: str, source: str) -> dict[str, object]:
    """Read `source` (a file made by `make`, or a size in MB for mllp) with `target`'s reader."""
    if target == "mllp":
        # Streamed in 64 KiB reads as the listener does; the payload is never held whole.
        size = int(float(source) * 1_000_000)
        baseline = _rss_mb()
        framer = MllpFramer()
        chunk = b"X" * 65536
        framer.feed(b"\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r")
        outcome, detail = "read", ""
        for _ in range(size // len(chunk)):
            try:
                framer.feed(chunk)
            except FrameTooLarge as exc:
                outcome, detail = "refused", str(exc)
                break
        return _result(target, size, outcome, detail, baseline)
    payload = Path(source).read_bytes()
    baseline = _rss_mb()  # the payload itself is the input, not the reader's cost
    try:
        translation = translate(SYSTEMS[target], payload, NAMES[target])
    except MalformedMessage as exc:
        outcome, detail = "refused", str(exc)[:200]
    else:
        outcome = "read"
        detail = f"{len(translation.events)} events, {len(translation.failures)} failures, {translation.units} units"
    return _result(target, len(payload), outcome, detail, baseline)


def _result(target: str, size: int, outcome: str, detail: str, baseline: float) -> dict[str, object]:
    return {
        "target": target,
        "input_bytes": size,
        "outcome": outcome,
        "detail": detail,
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)

if __name__ == "__main__":
    if sys.argv[1] == "make":  # make <target> <megabytes> <path>
        Path(sys.argv[4]).write_bytes(make(sys.argv[2], int(float(sys.argv[3]) * 1_000_000)))
    else:  # <target> <path or megabytes>
        print(json.dumps(run(sys.argv[1], sys.argv[2]), ensure_ascii=False))
