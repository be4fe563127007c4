"""`Accept: text/csv` on any list endpoint: the same `items`, as a spreadsheet hospitals can open.

A middleware rather than per-route code, so every list endpoint (`{"items": [...], ...}`) gets
it without knowing. Nested objects flatten to dotted columns, lists join with `;`. The file
starts with a UTF-8 BOM because Excel, which most departments use, needs it to show Chinese.

CSV injection (OWASP): read models carry text from source files (a device name, a fault note),
and a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel and LibreOffice (`=HYPERLINK(...)`, `=cmd|...`). Such a cell, and such a column title, is
written with a leading single quote (`'=HYPERLINK(...)`), which spreadsheets show as text; a
plain number (`-3`, `+1.5`) stays as it is, since a spreadsheet reads it as a number, not a
formula. The JSON answer is never changed: the quote exists only in the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import TYPE_CHECKING, Any

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.middleware.base import RequestResponseEndpoint
    from starlette.requests import Request


def wants_csv(accept: str) -> bool:
    """True when text/csv is preferred over JSON (by order, then q-value), as a browser would ask."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, val = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if media.strip() in {"text/csv", "application/json", "*/*"}:
            cand = (q, -i, media.strip())
            best = cand if best is None or cand > best else best
    return best is not None and best[2] == "text/csv" and best[0] > 0


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def escape_cell(value: str) -> str:
    """The cell as a spreadsheet must show it: a leading `'` when it would start a formula."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def flatten(item: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ";".join(
                json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v) for v in value
            )
        else:
            out[name] = "" if value is None else str(value)
    return out


def to_csv(items: list[dict[str, Any]]) -> str:
    """The items as CSV text: a header of flattened names, every cell escaped by `escape_cell`."""
    rows = [flatten(i) for i in items]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([escape_cell(c) for c in columns])
    writer.writerows([escape_cell(row.get(c, "")) for c in columns] for row in rows)
    return "\ufeff" + buf.getvalue()


class CsvExportMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.method != "GET" or not wants_csv(request.headers.get("accept", "")):
            return response
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        doc = json.loads(body)
        if not (isinstance(doc, dict) and isinstance(doc.get("items"), list)):
            return Response(body, status_code=response.status_code, media_type="application/json")
        name = request.url.path.strip("/").replace("/", "-") or "export"
        return Response(
            to_csv(doc["items"]).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.csv"',
                "X-Total-Count": str(doc.get("total", "")),
            },
        )
