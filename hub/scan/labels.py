"""Device labels: a sheet of QR codes, one per device of a department (`hub labels`).

Each label shows the device name, its card number and department, and a QR code holding
`<HUB_PUBLIC_URL>/r/<asset id>?k=<the department's reporting key>` (hub.scan.keys). `build_labels`
is pure (the rows in, the labels with their URLs out); `render_pdf` draws an A4 sheet with
reportlab, the QR modules as vector squares and the CJK font embedded (so the PDF prints the same
on any machine); `render_png` draws the same sheet as an image (Pillow, which reportlab needs).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import segno
from PIL import Image, ImageDraw, ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from hub.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian/Ubuntu fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora/RHEL wqy-microhei-fonts
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
MM = 72 / 25.4  # PDF points per millimetre
PAGE_W, PAGE_H = 210 * MM, 297 * MM  # A4
COLS, ROWS = 3, 8  # 70 x 37 mm labels, a common adhesive sheet
LABEL_W, LABEL_H = PAGE_W / COLS, PAGE_H / ROWS
QR_SIDE = 31 * MM
PNG_DPI = 200
MIN_PT = 5.5  # smallest text printed on a label
ERROR_LEVEL = "m"  # 15 % recovery: labels get scratched


@dataclass(frozen=True, slots=True)
class Label:
    asset_id: str
    name: str
    card: str
    department: str
    url: str


def label_url(base_url: str, asset_id: str, token: str | None) -> str:
    url = f"{base_url.rstrip('/')}/r/{quote(asset_id, safe='')}"
    return f"{url}?k={quote(token, safe='.')}" if token else url


def build_labels(assets: Iterable[dict[str, Any]], *, base_url: str, token: str | None) -> list[Label]:
    """One label per registry row (name, card number, department, the QR's URL)."""
    out = []
    for a in assets:
        ids = {i["scheme"]: i["value"] for i in a.get("identifiers") or []}
        out.append(
            Label(
                asset_id=a["asset_id"],
                name=a.get("name") or "（未命名设备）",
                card=ids.get("hrp.card") or next(iter(ids.values()), a["asset_id"]),
                department=a.get("department_name") or a.get("department_code") or "",
                url=label_url(base_url, a["asset_id"], token),
            )
        )
    return out


def find_font(configured: Path | None) -> Path:
    """The CJK font file to embed: HUB_LABEL_FONT, else the first usual system path present."""
    if configured is not None:
        if not configured.is_file():
            raise ConfigError(f"HUB_LABEL_FONT={configured}: no such font file")
        return configured
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError(
        "no CJK font for the labels: install one (Debian/Ubuntu: apt-get install fonts-wqy-microhei) "
        "or point HUB_LABEL_FONT at a TTF/TTC file with Chinese glyphs"
    )


def qr_matrix(url: str) -> list[list[bool]]:
    """The QR code's modules (True = dark), without the quiet zone."""
    return [[bool(m) for m in row] for row in segno.make(url, error=ERROR_LEVEL, micro=False).matrix]


def dark_runs(matrix: list[list[bool]]) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules: one rectangle each."""
    runs = []
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append((r, start, c - start))
            else:
                c += 1
    return runs


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_pdf(labels: Sequence[Label], font: Path, *, title: str = "设备报修标签") -> bytes:
    """An A4 sheet (several pages when needed) of the labels, the font embedded."""
    name = "HubCJK"
    try:
        pdfmetrics.registerFont(TTFont(name, str(font), subfontIndex=0))
    except Exception as exc:
        raise ConfigError(f"font {font} cannot be embedded: {exc}") from exc
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(PAGE_W, PAGE_H), pageCompression=1)
    pdf.setTitle(title)
    per_page = COLS * ROWS
    for index, label in enumerate(labels):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        x0 = (slot % COLS) * LABEL_W
        y0 = PAGE_H - (slot // COLS + 1) * LABEL_H
        pdf.setLineWidth(0.2)
        pdf.setStrokeGray(0.75)
        pdf.rect(x0 + 1 * MM, y0 + 1 * MM, LABEL_W - 2 * MM, LABEL_H - 2 * MM)
        matrix = qr_matrix(label.url)
        module = QR_SIDE / len(matrix)
        qx, qy = x0 + 3 * MM, y0 + (LABEL_H - QR_SIDE) / 2
        pdf.setFillGray(0)
        for r, c, n in dark_runs(matrix):
            pdf.rect(qx + c * module, qy + QR_SIDE - (r + 1) * module, n * module, module, stroke=0, fill=1)
        tx = qx + QR_SIDE + 2 * MM
        lines = [
            (9.5, _fit(label.name, 14)),
            (7, f"卡片号 {label.card}"),
            (7, _fit(label.department, 12)),
            (7.5, "扫码报修 · 无需登录"),
        ]
        y = y0 + LABEL_H - 8 * MM
        room = x0 + LABEL_W - 3 * MM - tx
        for size, text in lines:
            fitted = size
            while fitted > MIN_PT and pdfmetrics.stringWidth(text, name, fitted) > room:
                fitted -= 0.5  # a long name or card number shrinks to fit its label
            pdf.setFont(name, fitted)
            pdf.drawString(tx, y, text)
            y -= size + 3.5
    if not labels:
        pdf.setFont(name, 12)
        pdf.drawString(20 * MM, PAGE_H - 20 * MM, "该科室没有在册设备")
    pdf.save()
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class PngGeometry:
    """Where things are on the PNG sheet, in pixels (tests read the QR back from it)."""

    label_w: int
    label_h: int
    qr_x: int  # within a label
    qr_y: int
    module_px: int

    def qr_origin(self, index: int) -> tuple[int, int]:
        return (index % COLS) * self.label_w + self.qr_x, (index // COLS) * self.label_h + self.qr_y


def png_geometry() -> PngGeometry:
    px = PNG_DPI / 25.4
    return PngGeometry(
        label_w=round(70 * px), label_h=round(37 * px), qr_x=round(3 * px), qr_y=round(3 * px), module_px=5
    )


def render_png(labels: Sequence[Label], font: Path) -> bytes:
    """The sheet as one PNG (all labels, as many rows as needed), at PNG_DPI."""
    g = png_geometry()
    rows = max(1, -(-len(labels) // COLS))
    image = Image.new("L", (COLS * g.label_w, rows * g.label_h), 255)
    draw = ImageDraw.Draw(image)
    try:
        big, small = ImageFont.truetype(str(font), 30), ImageFont.truetype(str(font), 22)
    except OSError as exc:
        raise ConfigError(f"font {font} cannot be read: {exc}") from exc
    for index, label in enumerate(labels):
        lx, ly = (index % COLS) * g.label_w, (index // COLS) * g.label_h
        draw.rectangle((lx + 2, ly + 2, lx + g.label_w - 3, ly + g.label_h - 3), outline=190)
        qx, qy = g.qr_origin(index)
        matrix = qr_matrix(label.url)
        for r, c, n in dark_runs(matrix):
            x, y = qx + c * g.module_px, qy + r * g.module_px
            draw.rectangle((x, y, x + n * g.module_px - 1, y + g.module_px - 1), fill=0)
        tx = qx + len(matrix) * g.module_px + 16
        y = ly + 24
        for fnt, text in (
            (big, _fit(label.name, 8)),
            (small, f"卡片号 {label.card}"),
            (small, _fit(label.department, 9)),
            (small, "扫码报修 · 无需登录"),
        ):
            draw.text((tx, y), text, fill=0, font=fnt)
            y += int(fnt.size) + 14
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(PNG_DPI, PNG_DPI))
    return out.getvalue()
