"""Scan-to-report's parts: labels (QR read back from the PNG, font embedded in the PDF), the
reporting keys and their rotation, the rate limit, symptom choices, and the merged report's fold."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine

from hub.errors import ConfigError
from hub.scan import labels as label_mod
from hub.scan.keys import InvalidReportKeyError, ReportKeyStore
from hub.scan.labels import Label, build_labels, find_font, png_geometry, qr_matrix, render_pdf, render_png
from hub.scan.limits import RateLimiter
from hub.scan.symptoms import load_symptoms
from projections.work_orders.projection import WorkOrders
from projections.work_orders.queries import get_work_order
from projections.work_orders.tables import METADATA
from schemas._base import DeptRef, Identifier, SourceSystem
from schemas.envelope import Source
from schemas.ids import event_id_for
from schemas.work_orders import ReportAddedPayload, WorkOrderReportAdded
from tests.unit.projections.test_work_orders_factories import CARD, T0, requested

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROWS = [
    {
        "asset_id": "AST-0001",
        "name": "呼吸机",
        "department_name": "新生儿科",
        "identifiers": [
            {"scheme": "udi", "value": "0106901234567892"},
            {"scheme": "hrp.card", "value": "FY-2022-00006"},
        ],
    },
    {"asset_id": "AST-0002", "name": "新生儿黄疸治疗仪", "department_code": "0402", "identifiers": []},
]


def _font() -> Path:
    try:
        return find_font(None)
    except ConfigError as exc:
        # scripts/test-services.sh installs fonts-wqy-microhei with Chromium: CI (HUB_REQUIRE_BROWSER=1)
        # must have it, so there its absence fails instead of skipping.
        if os.environ.get("HUB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no CJK font for the label PDF: {exc}")
        pytest.skip(str(exc))


class TestLabels:
    def test_each_label_holds_the_public_url_of_its_device_and_the_key(self) -> None:
        sheet = build_labels(ROWS, base_url="https://hub.example-hospital.cn/", token="ab12cd34.00ff")
        assert [s.url for s in sheet] == [
            "https://hub.example-hospital.cn/r/AST-0001?k=ab12cd34.00ff",
            "https://hub.example-hospital.cn/r/AST-0002?k=ab12cd34.00ff",
        ]
        assert (sheet[0].card, sheet[0].department) == ("FY-2022-00006", "新生儿科")  # the HRP card first
        assert (sheet[1].card, sheet[1].department) == ("AST-0002", "0402")

    def test_the_png_sheet_carries_exactly_each_labels_qr_code(self) -> None:
        """Read the modules back from the image: they are the QR code of that label's URL."""
        sheet = build_labels(ROWS * 2, base_url="http://10.1.2.3:8000", token="ab12cd34.00ff")
        sheet = [
            Label(s.asset_id, s.name, s.card, s.department, f"{s.url}&n={i}") for i, s in enumerate(sheet)
        ]
        image = Image.open(io.BytesIO(render_png(sheet, _font()))).convert("L")
        g = png_geometry()
        for index, label in enumerate(sheet):
            expected = qr_matrix(label.url)
            x0, y0 = g.qr_origin(index)
            half = g.module_px // 2
            read = [
                [
                    image.getpixel((x0 + c * g.module_px + half, y0 + r * g.module_px + half)) < 128
                    for c in range(len(expected))
                ]
                for r in range(len(expected))
            ]
            assert read == expected, label.url
        assert read != qr_matrix(sheet[0].url)  # the codes differ: the check can fail

    def test_the_pdf_embeds_the_cjk_font(self) -> None:
        pdf = render_pdf(build_labels(ROWS, base_url="http://h", token="k1.00"), _font())
        assert pdf.startswith(b"%PDF")
        assert b"/FontFile2" in pdf  # the TrueType program itself, not a reference to one

    def test_a_missing_font_is_a_clear_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(ConfigError, match="HUB_LABEL_FONT"):
            find_font(tmp_path / "nope.ttc")
        monkeypatch.setattr(label_mod, "FONT_CANDIDATES", (str(tmp_path / "none.ttc"),))
        with pytest.raises(ConfigError, match="fonts-wqy-microhei"):
            find_font(None)


class TestReportKeys:
    @pytest.fixture
    def store(self, tmp_path: Path) -> ReportKeyStore:
        return ReportKeyStore(create_engine(f"sqlite:///{tmp_path / 'keys.db'}"), b"s" * 32)

    def test_one_key_per_department_until_rotated(self, store: ReportKeyStore) -> None:
        first = store.current("新生儿科", now=NOW)
        assert store.current("新生儿科", now=NOW) == first
        assert store.current("检验科", now=NOW) != first
        assert store.authenticate(store.token(first), NOW).department == "新生儿科"

    def test_a_forged_or_foreign_secret_is_refused(self, store: ReportKeyStore, tmp_path: Path) -> None:
        key = store.current("新生儿科", now=NOW)
        key_id, secret = store.token(key).split(".")
        with pytest.raises(InvalidReportKeyError, match="unknown"):
            store.authenticate(f"{key_id}.{'0' * len(secret)}", NOW)
        other = ReportKeyStore(create_engine(f"sqlite:///{tmp_path / 'keys.db'}"), b"t" * 32)
        with pytest.raises(InvalidReportKeyError, match="unknown"):  # another HUB_SECRET_KEY
            other.authenticate(store.token(key), NOW)
        with pytest.raises(InvalidReportKeyError, match="malformed"):
            store.authenticate("hub_abc_def", NOW)

    def test_rotation_stops_old_labels_after_the_grace_period(self, store: ReportKeyStore) -> None:
        old = store.token(store.current("新生儿科", now=NOW))
        new = store.rotate("新生儿科", grace=timedelta(days=2), now=NOW + timedelta(hours=1))
        assert store.authenticate(old, NOW + timedelta(days=1)).department == "新生儿科"
        with pytest.raises(InvalidReportKeyError, match="rotated out"):
            store.authenticate(old, NOW + timedelta(days=3))
        assert store.authenticate(store.token(new), NOW + timedelta(days=3)).key_id == new.key_id
        assert store.current("新生儿科") == new


def test_rate_limit_refuses_past_the_limit_and_says_when_to_retry() -> None:
    t = [1000.0]
    limiter = RateLimiter(2, window_s=60, now=lambda: t[0])
    assert limiter.hit("k") is None
    t[0] += 10
    assert limiter.hit("k") is None
    assert limiter.hit("other") is None  # buckets are separate
    t[0] += 5
    assert limiter.hit("k") == 45  # the first hit leaves the window 45 s from now
    t[0] += 45
    assert limiter.hit("k") is None


def test_symptoms_by_category_code_or_name_else_the_default(tmp_path: Path) -> None:
    bundled = load_symptoms()
    assert "报警无法消除" in bundled.for_category("6821", None)
    assert bundled.for_category(None, "无此分类") == bundled.default
    custom = tmp_path / "s.yaml"
    custom.write_text("default: [无法开机]\ncategories:\n  呼吸机类: [漏气]\n", encoding="utf-8")
    assert load_symptoms(custom).for_category("9999", "呼吸机类") == ("漏气",)
    custom.write_text("default: []\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_symptoms(custom)


def test_a_merged_report_is_kept_beside_the_work_order_without_changing_its_lifecycle(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'wo.db'}")
    METADATA.create_all(engine)
    projection = WorkOrders()
    added = WorkOrderReportAdded(
        event_id=event_id_for(SourceSystem.HUB.value, "scan:n1", 0),
        occurred_at=T0 + timedelta(minutes=5),
        recorded_at=T0 + timedelta(minutes=5),
        source=Source(system=SourceSystem.HUB, site="main", message_id="scan:n1", adapter_version="t"),
        subject="WO-1",
        payload=ReportAddedPayload(
            asset=Identifier(scheme="hrp.card", value=CARD),
            reporting_department=DeptRef(code="ICU", name="重症医学科"),
            symptom="报警无法消除",
            note="第二位护士报告",
        ),
    )
    with engine.begin() as conn:
        projection.apply(conn, [added])  # before its work order: kept, nothing else made up
        projection.apply(conn, [requested("r1", "WO-1")])
    with engine.connect() as conn:
        row = get_work_order(conn, "WO-1", now=T0 + timedelta(hours=1))
    assert row is not None
    assert (row["status"], row["event_count"]) == ("requested", 1)
    assert [(r["symptom"], r["note"], r["channel"]) for r in row["reports"]] == [
        ("报警无法消除", "第二位护士报告", "scan")
    ]
