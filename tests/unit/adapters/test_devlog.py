"""The device-log adapter: vendor log rows -> asset.telemetry_recorded, failures with where."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import TranslateContext, Translation
from adapters.devlog.mapping import DevlogMapping, default_mapping
from adapters.devlog.translate import translate
from hub.ports import RawRecord
from schemas._base import Identifier
from schemas.ids import asset_id_for
from schemas.telemetry import AssetTelemetryRecorded

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "devlog"
RECEIVED = datetime(2024, 6, 12, 2, 0, tzinfo=UTC)
CTX = TranslateContext(
    site="main", tz=ZoneInfo("Asia/Shanghai"), adapter_version="devlog/test", mapping_version="t"
)
HEADER = "设备序列号,EUI-64,设备型号,使用科室,记录时间,累计运行时间(h),开机次数,电池容量(%),报警次数,错误代码"


def _run(payload: bytes, mapping: DevlogMapping | None = None, name: str = "log.csv") -> Translation:
    raw = RawRecord(raw_ref=f"r-{name}", system="devlog", site="main", message_id=name, sha256="x", size=0,
                    transport="file", received_at=RECEIVED, metadata={"filename": name})  # fmt: skip
    return translate(raw, payload, mapping or default_mapping(), CTX)


def _csv(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode("utf-8")


def _events(result: Translation) -> list[AssetTelemetryRecorded]:
    return [e.event for e in result.events if isinstance(e.event, AssetTelemetryRecorded)]


class TestRows:
    def test_the_bundled_log_lands_whole_with_every_column_claimed(self) -> None:
        """examples/devlog: one event per row, nothing failed, no column unclaimed."""
        result = _run((EXAMPLES / "ventilator-device-log.csv").read_bytes())
        assert not result.failures
        assert len(_events(result)) == 20
        assert result.accounting.unclaimed == {}

    def test_a_row_carries_counters_battery_alarms_and_errors_on_the_eui64_asset(self) -> None:
        """The EUI-64 names the asset (the one PCD-01 names); the model maps to its MDC device type."""
        (event,) = _events(
            _run(_csv("SV8-1,0012a3fffe000001,SV-800,ICU,2024-03-01 23:50,14157.1,419,87.3,4,E-217；E-101"))
        )
        p = event.payload
        assert event.subject == asset_id_for(Identifier(scheme="eui64", value="0012A3FFFE000001"))
        assert (p.usage_hours, p.power_on_cycles, p.battery_capacity_pct, p.alarm_count) == (
            Decimal("14157.1"), 419, Decimal("87.3"), 4,
        )  # fmt: skip
        assert [c.code for c in p.error_codes] == ["E-217", "E-101"]
        assert p.device_type == "MDC_DEV_SYS_PT_VENT_MDS"
        assert p.department is not None
        assert p.department.code == "0101"
        assert event.occurred_at == datetime(2024, 3, 1, 15, 50, tzinfo=UTC)

    def test_without_an_eui64_the_serial_is_kept_qualified_unless_the_vendor_is_known(self) -> None:
        """No EUI-64: `ns` devlog|serial; with the mapping's vendor: the registry's `serial` scheme."""
        row = "SV8-9,,SV-800,ICU,2024-03-01 23:50,1,1,90,0,"
        (bare,) = _events(_run(_csv(row)))
        assert bare.payload.device == Identifier(scheme="ns", value="devlog|SV8-9")
        vendor = default_mapping().model_copy(update={"vendor": "某医疗"})
        (named,) = _events(_run(_csv(row), vendor))
        assert named.payload.device == Identifier(scheme="serial", value="某医疗|SV8-9")

    def test_a_malformed_eui64_fails_its_row_naming_the_column(self) -> None:
        """`0012-XYZ` is not an EUI-64: the row fails at that column, the good row still lands."""
        result = _run(_csv("SV8-1,0012-XYZ,SV-800,ICU,2024-03-01 23:50,1,1,90,0,",
                           "SV8-2,0012A3FFFE000002,SV-800,ICU,2024-03-01 23:50,1,1,90,0,"))  # fmt: skip
        assert len(_events(result)) == 1
        (failure,) = result.failures
        assert failure.code == "invalid_identifier"
        assert "EUI-64" in failure.reason

    def test_a_re_export_gives_the_same_event_ids(self) -> None:
        """Overlapping exports: the same device and time is the same event."""
        row = "SV8-1,0012A3FFFE000001,SV-800,ICU,2024-03-01 23:50,1,1,90,0,"
        first = _events(_run(_csv(row), name="a.csv"))
        again = _events(_run(_csv(row), name="b.csv"))
        assert [e.event_id for e in first] == [e.event_id for e in again]


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=30))
def test_odd_text_in_a_code_cell_never_crashes(text: str) -> None:
    """Whatever the error-code cell holds, the row lands or fails; translation never raises."""
    cell = text.replace(",", "").replace("\n", "").replace("\r", "").replace('"', "")
    result = _run(_csv(f"SV8-1,0012A3FFFE000001,SV-800,ICU,2024-03-01 23:50,1,1,90,0,{cell}"))
    assert len(result.events) + len(result.failures) == 1
