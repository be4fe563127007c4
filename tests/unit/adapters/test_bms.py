"""The BMS adapter: export rows and gateway pushes -> facility.meter_read, failures with where."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import TranslateContext, Translation
from adapters.bms.mapping import BmsMapping, default_mapping
from adapters.bms.translate import _Run, translate, translate_in_chunks
from hub.ports import RawRecord
from schemas.facility import FacilityMeterRead, FacilityMeterReadingsRecorded

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "bms"
RECEIVED = datetime(2024, 6, 12, 2, 0, tzinfo=UTC)
CTX = TranslateContext(
    site="main", tz=ZoneInfo("Asia/Shanghai"), adapter_version="bms/test", mapping_version="t"
)
HEADER = "表计编号,区域,计量类型,抄表时间,读数,用量,数据质量,换表标志"


def _raw(name: str) -> RawRecord:
    return RawRecord(raw_ref=f"r-{name}", system="bms", site="main", message_id=name, sha256="x", size=0,
                     transport="file", received_at=RECEIVED, metadata={"filename": name})  # fmt: skip


def _run(name: str, payload: bytes, mapping: BmsMapping | None = None) -> Translation:
    return translate(_raw(name), payload, mapping or default_mapping(), CTX)


def _csv(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode("utf-8")


def _reads(out: Translation) -> list[FacilityMeterRead]:
    """The readings of the translation's blocks, one by one."""
    return [
        r for e in out.events if isinstance(e.event, FacilityMeterReadingsRecorded) for r in e.event.unfold()
    ]


class TestExport:
    def test_the_example_export_lands_with_every_cell_accounted(self) -> None:
        """12 readings, two dead letters (an unknown meter, a bad time), the 合计 row skipped, 0 unclaimed."""
        out = _run("bms-meter-readings.csv", (EXAMPLES / "bms-meter-readings.csv").read_bytes())
        assert (len(_reads(out)), [f.code for f in out.failures]) == (12, ["unknown_meter", "invalid_date"])
        assert out.accounting is not None
        assert out.accounting.unclaimed_cells == 0
        assert [f.location.line for f in out.failures] == [15, 16]

    def test_a_row_becomes_a_reading_placed_by_the_meter_table(self) -> None:
        """The zone maps the meter to building, floor, department and place; time is site time."""
        (event,) = _reads(_run("a.csv", _csv("B-3F-W01,,水,2024-06-12 08:15,4521.300,,正常,")))
        p = event.payload
        assert (p.meter_id, p.quantity, p.kind, p.value, p.unit) == ("B-3F-W01", "water_m3", "cumulative",
                                                                    Decimal("4521.300"), "m3")  # fmt: skip
        assert (p.place.building, p.place.floor, p.place.zone, p.place.place) == (
            "B",
            "3F",
            "B-3F-ICU",
            "ICU 病区",
        )
        assert p.place.department is not None
        assert p.place.department.code == "0301"
        assert event.occurred_at == datetime(2024, 6, 12, 0, 15, tzinfo=UTC)
        assert p.register_max == Decimal("99999.999")

    def test_usage_without_a_register_is_an_interval_reading(self) -> None:
        """A 用量 column alone: what was used in the interval ending at the time."""
        (event,) = _reads(_run("a.csv", _csv("A-1F-E01,,电,2024-06-12 08:15,,12.5,,")))
        assert (event.payload.kind, event.payload.value) == ("interval", Decimal("12.5"))

    def test_replacement_and_quality_flags_are_carried(self) -> None:
        """换表 and 估算 become the `replaced` and `estimated` flags."""
        (event,) = _reads(_run("a.csv", _csv("A-1F-W01,,水,2024-06-12 08:15,0.040,,估算,是")))
        assert event.payload.quality == ["estimated", "replaced"]

    def test_the_same_reading_in_two_exports_is_one_event(self) -> None:
        """Overlapping daily exports: the event id is the meter, quantity and time, not the file."""
        row = "A-1F-E01,,电,2024-06-12 08:15,100.0,,,"
        first, second = _run("day1.csv", _csv(row)), _run("day2.csv", _csv(row))
        assert _reads(first)[0].event_id == _reads(second)[0].event_id

    def test_an_unknown_quantity_word_fails_the_row_naming_the_column(self) -> None:
        """计量类型 蒸汽 is not in the mapping: a dead letter at that column, listing the known words."""
        out = _run("a.csv", _csv("A-1F-E01,,蒸汽,2024-06-12 08:15,1.0,,,"))
        (failure,) = out.failures
        assert (failure.code, failure.location.column, failure.location.line) == (
            "unknown_quantity",
            "计量类型",
            2,
        )

    def test_an_xlsx_export_reads_like_the_csv(self) -> None:
        """The same rows in a workbook give the same events."""
        rows = [HEADER.split(","), ["A-1F-E01", "", "电", "2024-06-12 08:15", "100.5", "", "", ""]]
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        for row in rows:
            sheet.append(row)
        buf = io.BytesIO()
        book.save(buf)
        from_xlsx = _reads(_run("a.xlsx", buf.getvalue()))
        from_csv = _reads(_run("a.csv", _csv(",".join(rows[1]))))
        assert [e.payload for e in from_xlsx] == [e.payload for e in from_csv]

    @settings(max_examples=30, deadline=None)  # a timing limit is no behaviour (a shared machine)
    @given(st.text(max_size=30))
    def test_any_text_in_the_value_is_a_reading_or_a_dead_letter(self, text: str) -> None:
        """Odd text never raises: the row becomes an event or a failure."""
        cell = '"' + text.replace('"', '""').replace("\n", " ").replace("\r", " ") + '"'
        out = _run("a.csv", _csv(f"A-1F-E01,,电,2024-06-12 08:15,{cell},,,"))
        assert len(_reads(out)) + len(out.failures) + len(out.skipped) <= 1


class TestPush:
    def test_the_example_push_gives_three_readings_and_names_the_bad_entry(self) -> None:
        """Entry 4's `at` is not a time: a failure at record:4, key `at`."""
        out = _run("gateway-push.json", (EXAMPLES / "gateway-push.json").read_bytes())
        assert [r.payload.kind for r in _reads(out)] == ["cumulative", "interval", "instant"]
        (failure,) = out.failures
        assert (failure.position, failure.location.column, failure.code) == ("record:4", "at", "invalid_date")

    def test_unknown_keys_are_accounted_as_unclaimed(self) -> None:
        """A key the hub does not read is counted, not silently dropped."""
        body = json.dumps({"readings": [{"meter": "A-1F-E01", "at": "2024-06-12T08:15:00+08:00", "value": 1,
                                         "vendor_crc": "ab"}]}).encode()  # fmt: skip
        out = _run("p.json", body)
        assert out.accounting is not None
        assert out.accounting.unclaimed == {"vendor_crc": 1}


class TestSiteFigures:
    def test_beds_add_up_from_zones_and_the_census_is_per_department_and_month(self) -> None:
        """ICU 30 + ward 46 open beds in building B; the ICU's June census by code and by name."""
        mapping = default_mapping()
        beds = mapping.beds()
        assert (beds["zone", "B-3F-ICU"], beds["floor", "B/3F"], beds["building", "B"]) == (30, 30, 76)
        assert (beds["department", "0301"], beds["department", "重症医学科"], beds["campus", ""]) == (
            30,
            30,
            76,
        )
        assert ("building", "A") not in beds
        census = mapping.occupied_bed_days()
        assert census["department", "0301", "2024-06"] == census["department", "重症医学科", "2024-06"] == 852
        assert ("campus", "", "2024-06") not in census  # the ward (0501) has beds and no census
        assert mapping.place_names()["zone", "B-3F-ICU"] == "ICU 病区"

    def test_a_census_of_an_unknown_department_is_a_problem(self) -> None:
        data = default_mapping().model_dump(mode="json")
        data["bed_days"] = [{"department": "9999", "month": "2024-06", "bed_days": 10}]
        problems = BmsMapping.model_validate(data).problems()
        assert any("'9999' is not in departments" in message for _, message in problems)

    def test_the_campus_census_needs_every_department_with_beds(self) -> None:
        data = default_mapping().model_dump(mode="json")
        data["bed_days"] = [
            {"department": "0301", "month": "2024-06", "bed_days": 852},
            {"department": "心内科", "month": "2024-06", "bed_days": 1300},
        ]
        assert BmsMapping.model_validate(data).occupied_bed_days()["campus", "", "2024-06"] == 2152


class TestBlocks:
    """An export's readings travel as one block per series; rows of a known shape take a shortcut."""

    ROWS: ClassVar[list[str]] = [f"A-1F-E01,,电,2024-06-12 {h:02d}:{m:02d},{100 + h * 4 + m / 15:.2f},,{'估算' if (h, m) == (2, 30) else ''},"
            for h in range(4) for m in (0, 15, 30, 45)]  # fmt: skip

    def _export(self) -> bytes:
        rows = list(self.ROWS)
        rows.insert(7, "A-1F-E01,,电,2024-06-12 01:99,104.5,,,")  # not a time: a dead letter
        rows.insert(9, "A-1F-E01,,电,2024-06-12 02:05,1O4.8,,,")  # letter O in the value
        rows += [f"B-3F-W01,,水,2024-06-12 00:{m:02d},4521.{m:03d},,," for m in (0, 15, 30)]
        return _csv(*rows)

    def test_a_bad_reading_inside_a_block_is_named_and_the_others_land(self) -> None:
        out = _run("a.csv", self._export())
        assert [(f.location.line, f.location.column, f.code) for f in out.failures] == [
            (9, "抄表时间", "invalid_date"),
            (11, "读数", "invalid_amount"),
        ]
        assert [(e.event.subject, len(e.event.payload.readings)) for e in out.events] == [  # type: ignore[attr-defined]
            ("MTR-A-1F-E01/electricity_kwh", 16),
            ("MTR-B-3F-W01/water_m3", 3),
        ]
        flagged = [(r.occurred_at.minute, r.payload.quality) for r in _reads(out) if r.payload.quality]
        assert flagged == [(30, ["estimated"])]  # 02:30 site time, the only 估算 row

    def test_the_shortcut_gives_what_the_full_reader_gives(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Same events (ids, values, flags) and the same field accounting with every row read in full."""
        fast = _run("a.csv", self._export())
        monkeypatch.setattr(_Run, "shortcut", lambda *_: False)
        full = _run("a.csv", self._export())
        assert [e.event for e in fast.events] == [e.event for e in full.events]
        assert fast.failures == full.failures
        assert fast.accounting == full.accounting
        assert fast.accounting is not None
        assert fast.accounting.claimed["读数"] == len(self.ROWS) + 5

    def test_a_large_export_is_a_few_blocks_in_chunks(self) -> None:
        """Chunks of the worker's size still give blocks of many readings (BLOCK_ROWS at least)."""
        rows = [f"A-1F-E01,,电,2024-06-{1 + i // 96:02d} {i % 96 // 4:02d}:{i % 4 * 15:02d},{i}.5,,,"
                for i in range(2500)]  # fmt: skip
        chunks = list(translate_in_chunks(_raw("a.csv"), _csv(*rows), default_mapping(), CTX, 2_000))
        assert [len(e.event.payload.readings) for c in chunks for e in c.events] == [2500]  # type: ignore[attr-defined]
        assert sum(c.units for c in chunks) == 2500
