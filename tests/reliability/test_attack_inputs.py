"""Hostile inputs, each through the adapter as the hub runs it: bombs, entities, 100 MB, formulas.

- an XLSX whose sheet inflates to 3 GiB from a 3 MB file: refused from the zip's own directory,
  before a byte is inflated; one whose directory lies about the size stops at the declared size;
- entity expansion (billion laughs), external entities and external DTDs in OA XML, FHIR XML and
  an XLSX part: refused, nothing expanded, nothing read from disk or network;
- nesting 100,000 deep in JSON and XML: refused, no RecursionError;
- 100 MB inputs: over a limit they are refused holding at most the limit (MLLP at 16 MiB, OA at
  20 MB, FHIR at 10 MB); in the soak, each reader runs in a child process and its peak RSS is
  reported: CSV, XLSX and HL7 files (up to HUB_MAX_FILE_BYTES) take a bounded multiple of their size;
- formula cells (`=HYPERLINK(...)`, `+cmd`, `-1+1`, `@SUM`) in CSV and XLSX are kept as their
  text and reach the events as data; the CSV export writes them with a leading quote.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest

from adapters._files.tabular import read_grid
from adapters.errors import MalformedMessage
from adapters.fhir.errors import FhirRejected
from adapters.his.mllp import DEFAULT_MAX_FRAME_BYTES, FrameTooLarge, MllpFramer
from hub.api.csv_export import to_csv
from tests.reliability.fuzzing import EXAMPLES, ROOT, translate

GIB = 1 << 30
MIB = 1 << 20
FORMULAS = ('=HYPERLINK("http://203.0.113.9/x","点此查看")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1:A9)")


def _peak_during(action) -> tuple[object, int]:
    """What `action()` returned or raised, and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        try:
            outcome: object = action()
        except MalformedMessage as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- zip bombs ----


def _raw_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, stored bytes, method, crc, declared uncompressed size) each.

    zipfile cannot write a member it did not compress itself, and a bomb must carry a deflate
    stream built without ever holding the gigabytes it stands for.
    """
    body, directory = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        encoded, offset = name.encode(), len(body)
        body += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded), 0
        )
        body += encoded + data
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    return bytes(body + directory + end)


def _deflated_zeros(mebibytes: int) -> bytes:
    """A raw deflate stream of `mebibytes` MiB of zeros, made of one repeated full-flush block."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH)
    assert (
        packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH) == block
    )  # state reset: blocks repeat
    return block * mebibytes + packer.flush()


def _workbook_with_sheet(sheet: bytes, declared: int) -> bytes:
    """The SPD consumption workbook with its sheet replaced by `sheet` (a deflate stream)."""
    source = zipfile.ZipFile(EXAMPLES / "spd" / "05_消耗扫码_2024-06.xlsx")
    members = []
    for info in source.infolist():
        data = source.read(info)
        if info.filename == "xl/worksheets/sheet1.xml":
            # The CRC is not that of the inflated data: a reader that inflated it would fail on
            # the CRC with another message, and the assertions below would say so.
            members.append((info.filename, sheet, zipfile.ZIP_DEFLATED, 0, declared))
            continue
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        members.append(
            (
                info.filename,
                packer.compress(data) + packer.flush(),
                zipfile.ZIP_DEFLATED,
                zlib.crc32(data),
                len(data),
            )
        )
    return _raw_zip(members)


def test_xlsx_zip_bomb_of_3_gib_is_refused_before_inflating() -> None:
    """A ~3 MB workbook whose sheet inflates to 3 GiB: refused naming the member, without inflating."""
    bomb = _workbook_with_sheet(_deflated_zeros(3072), declared=3 * GIB)
    assert len(bomb) < 4 * MIB
    outcome, peak = _peak_during(lambda: translate("spd", bomb, "05_消耗扫码_bomb.xlsx"))
    assert isinstance(outcome, MalformedMessage)
    assert "05_消耗扫码_bomb.xlsx: refused" in str(outcome)
    assert "zip bomb" in str(outcome)
    assert peak < 4 * len(bomb) + 16 * MIB  # the file, a copy or two, never the gigabytes


def test_xlsx_bomb_whose_directory_lies_stops_at_the_declared_size() -> None:
    """The same stream declared as 1 MiB passes the ratio check; reading stops at 1 MiB and fails cleanly."""
    bomb = _workbook_with_sheet(_deflated_zeros(3072), declared=MIB)
    outcome, peak = _peak_during(lambda: translate("spd", bomb, "lying.xlsx"))
    assert isinstance(outcome, MalformedMessage)
    assert str(outcome).startswith("lying.xlsx: ")
    assert peak < 4 * len(bomb) + 16 * MIB


# ---- entities, external references, nesting ----

OA_BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE 工单列表 [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<工单列表><工单 单据类型="报修单" 单据号="LC1" 工单号="WX-1"><故障描述>&lol9;</故障描述></工单></工单列表>"""
FHIR_NS = 'xmlns="http://hl7.org/fhir"'
XXE_TARGETS = ("file:///etc/passwd", "http://203.0.113.9/steal")


def test_billion_laughs_in_oa_xml_is_refused_unexpanded() -> None:
    outcome, peak = _peak_during(lambda: translate("oa", OA_BILLION_LAUGHS.encode(), "bomb.xml"))
    assert isinstance(outcome, MalformedMessage)
    assert "bomb.xml: refused" in str(outcome)
    assert "billion laughs" in str(outcome)
    assert peak < 16 * MIB  # 10^9 "lol"s would be 3 GB


def test_billion_laughs_in_fhir_xml_is_refused_unexpanded() -> None:
    entities = "".join(f'<!ENTITY l{i + 1} "{f"&l{i};" * 10}">' for i in range(8))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE Device [<!ENTITY l0 "lol">{entities}]>'
        f'<Device {FHIR_NS}><manufacturer value="&l8;"/></Device>'
    ).encode()
    outcome, peak = _peak_during(
        lambda: translate("fhir", body, "bomb", {"content_type": "application/fhir+xml"})
    )
    assert isinstance(outcome, FhirRejected)
    assert "refused" in str(outcome)
    assert peak < 16 * MIB


@pytest.mark.parametrize("target", XXE_TARGETS)
def test_external_entities_are_refused_in_oa_fhir_and_xlsx(target: str) -> None:
    """An entity pointing at a local file or a URL is refused everywhere; nothing of it is read."""
    oa = (
        f'<?xml version="1.0"?><!DOCTYPE 工单列表 [<!ENTITY x SYSTEM "{target}">]>'
        '<工单列表><工单 单据类型="报修单" 单据号="LC1"><故障描述>&x;</故障描述></工单></工单列表>'
    ).encode()
    fhir = (
        f'<?xml version="1.0"?><!DOCTYPE Device [<!ENTITY x SYSTEM "{target}">]>'
        f'<Device {FHIR_NS}><manufacturer value="&x;"/></Device>'
    ).encode()
    source = zipfile.ZipFile(EXAMPLES / "spd" / "05_消耗扫码_2024-06.xlsx")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = f'<!DOCTYPE worksheet [<!ENTITY x SYSTEM "{target}">]>'.encode() + data
                data = data.replace(b"<t>", b"<t>&x;", 1)
            archive.writestr(info, data)
    refusals = []
    for system, payload, name, metadata in (
        ("oa", oa, "xxe.xml", None),
        ("fhir", fhir, "xxe", {"content_type": "application/fhir+xml"}),
        ("spd", out.getvalue(), "05_消耗扫码_xxe.xlsx", None),
    ):
        with pytest.raises(MalformedMessage) as caught:
            translate(system, payload, name, metadata)
        refusals.append(str(caught.value))
    assert all("root:" not in r for r in refusals)
    assert all("refused" in r or "not a readable XLSX" in r for r in refusals), refusals


def test_external_dtd_is_refused_in_oa_and_fhir_xml() -> None:
    oa = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://203.0.113.9/oa.dtd"><x><y/></x>'
    fhir = f'<?xml version="1.0"?><!DOCTYPE Device SYSTEM "http://203.0.113.9/f.dtd"><Device {FHIR_NS}/>'.encode()
    with pytest.raises(MalformedMessage, match="refused"):
        translate("oa", oa, "dtd.xml")
    with pytest.raises(FhirRejected, match="refused"):
        translate("fhir", fhir, "dtd", {"content_type": "application/fhir+xml"})


@pytest.mark.parametrize(
    ("system", "payload", "metadata"),
    [
        ("oa", b"[" * 100_000 + b"]" * 100_000, None),
        ("oa", b"<a>" * 100_000 + b"</a>" * 100_000, None),
        ("fhir", b'{"resourceType":"Device","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
        ("fhir", f"<Device {FHIR_NS}>".encode() + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</Device>", None),
    ],
    ids=["oa-json", "oa-xml", "fhir-json", "fhir-xml"],
)
def test_nesting_100000_deep_is_refused_not_a_recursion_error(
    system: str, payload: bytes, metadata: None
) -> None:
    with pytest.raises(MalformedMessage):
        translate(system, payload, "deep.json" if payload[:1] in b"[{" else "deep.xml", metadata)


# ---- 100 MB inputs, in a child process so the peak RSS is the reader's own ----


def _big(target: str, tmp_path: Path, megabytes: int = 100) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    module = [sys.executable, "-m", "tests.reliability.big_input"]
    source = str(megabytes)
    if target != "mllp":
        source = str(tmp_path / f"big-{target}")
        subprocess.run(
            [*module, "make", target, str(megabytes), source], cwd=ROOT, env=env, timeout=600, check=True
        )
    done = subprocess.run(
        [*module, target, source], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(figures, ensure_ascii=False))  # the figures RELIABILITY.md quotes
    return figures


def _growth(figures: dict[str, object]) -> float:
    return float(figures["peak_rss_mb"]) - float(figures["baseline_rss_mb"])  # type: ignore[arg-type]


def test_a_100_mb_mllp_frame_is_refused_at_16_mib_holding_at_most_the_limit() -> None:
    """100 MB in 64 KiB reads, as the listener reads them: refused once past 16 MiB, never held whole."""
    framer = MllpFramer()
    chunk = b"X" * 65536

    def stream() -> None:
        framer.feed(b"\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r")
        for _ in range(100_000_000 // len(chunk)):
            framer.feed(chunk)

    outcome, peak = _peak_during(stream)
    assert isinstance(outcome, FrameTooLarge)
    assert outcome.limit == DEFAULT_MAX_FRAME_BYTES
    assert peak < 2 * DEFAULT_MAX_FRAME_BYTES + MIB  # the frame buffer (and its growth), not 100 MB


@pytest.mark.parametrize("system", ["oa", "fhir"])
def test_a_100_mb_oa_or_fhir_body_is_refused_by_size_before_parsing(system: str) -> None:
    payload = b"{" + b" " * 100_000_000 + b"}"
    outcome, peak = _peak_during(lambda: translate(system, payload, "big.json"))
    assert isinstance(outcome, MalformedMessage)
    assert "100,000,002 bytes" in str(outcome)
    assert "limit" in str(outcome)
    assert peak < MIB  # refused on its length: nothing decoded, parsed or copied


@pytest.mark.soak
@pytest.mark.parametrize(
    ("target", "growth_mb"),
    # MLLP: the frame limit is 16 MiB; its growth measured +29 MB run alone and up to +79 MB inside
    # `make soak` (the bytearray's reallocations): under 96 MB, the 100 MB input is never held whole.
    [("mllp", 96), ("oa", 16), ("fhir", 16), ("csv", 400), ("xlsx", 400), ("his", 1400)],
)
def test_a_100_mb_input_peak_rss(target: str, growth_mb: int, tmp_path: Path) -> None:
    """Each reader on 100 MB in a child process; its RSS growth over the loaded input is bounded.

    Over their limits MLLP, OA and FHIR refuse; CSV and XLSX stop at limits.max_rows; HL7 is read
    whole and its events are the output (about 10 bytes of events per byte of DFT), hence more.
    """
    figures = _big(target, tmp_path)
    assert figures["outcome"] in {"read", "refused"}
    assert _growth(figures) < growth_mb


# ---- formula cells: data in, escaped out ----


def _item_master_with_names(names: tuple[str, ...]) -> bytes:
    """The SPD item master (GBK) with the first rows' 物资名称 replaced by `names`."""
    lines = (EXAMPLES / "spd" / "01_物资字典.csv").read_bytes().decode("gbk").split("\r\n")
    for offset, name in enumerate(names):
        cells = next(csv.reader([lines[3 + offset]]))
        cells[2] = name
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(cells)
        lines[3 + offset] = buffer.getvalue()
    return "\r\n".join(lines).encode("gbk")


def _names(translation) -> list[str]:
    return [e.event.payload.name for e in translation.events if e.event.type == "inventory.item_defined"]


def test_formula_cells_in_csv_are_kept_as_text_and_escaped_on_export() -> None:
    payload = _item_master_with_names(FORMULAS)
    grid = read_grid(payload, filename="01_物资字典.csv")
    cells = {cell for _, row in grid.rows for cell in row}
    assert set(FORMULAS) <= cells  # read as the text written, nothing evaluated or dropped
    names = _names(translate("spd", payload, "01_物资字典.csv"))
    assert names[: len(FORMULAS)] == list(FORMULAS)
    exported = list(csv.reader(io.StringIO(to_csv([{"name": n} for n in names]).removeprefix("\ufeff"))))
    assert [row[0] for row in exported[1 : len(FORMULAS) + 1]] == ["'" + f for f in FORMULAS]


def test_formula_text_in_xlsx_is_kept_and_formula_cells_are_never_evaluated(tmp_path: Path) -> None:
    """Shared-string cells holding formula text stay text; a real formula without a cached value stays
    empty (the hub never computes it); one with a value Excel cached is read as that value."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["物资编码", "物资名称", "单位", "单价"])
    for n, text in enumerate(FORMULAS, start=1):
        sheet.append([f"GZ{n:05d}", None, "个", "1.00"])
        cell = sheet.cell(row=n + 1, column=2)
        cell.value = text
        cell.data_type = "s"  # openpyxl would write a leading "=" as a formula; this is text
    sheet["D2"] = "=1+1"  # a real formula, saved without a cached value
    path = tmp_path / "01_物资字典.xlsx"
    workbook.save(path)
    data = path.read_bytes()
    grid = read_grid(data, filename=path.name)
    assert [row[1] for _, row in grid.rows[1:]] == list(FORMULAS)
    assert grid.rows[1][1] == ("GZ00001", FORMULAS[0], "个")  # D2 (=1+1, nothing cached) is empty, never "2"
    # The same cell with a value Excel cached: that value is read, the formula never run.
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            part = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                # openpyxl writes the empty value as `<v />`, or `<v/>`/`<v></v>` when lxml is installed.
                part, replaced = re.subn(
                    rb"<f>1\+1</f><v ?/>|<f>1\+1</f><v></v>", b"<f>1+1</f><v>2</v>", part
                )
                assert replaced == 1
            archive.writestr(info, part)
    assert read_grid(out.getvalue(), filename=path.name).rows[1][1][3] == "2"
    names = _names(translate("spd", data, path.name))
    assert names == list(FORMULAS)
