"""Scan-to-report: `/r/{asset id}`, the phone page a device label's QR code opens.

No personal login: the label carries its department's reporting key (`?k=`, hub.scan.keys). The
key opens only this page, for its department's devices (the same department scope as an API key
of that department: another department's device answers 404 like an unknown one), and files
reports; it reads no other route. A rotated-out or unknown key gets 403 with a Chinese "reprint
the label" message. Every request counts against its client address's limit (so guessing keys is
slow too); accepted reports also against the key's and the address's report limits (429 with
Retry-After).

- GET  /r/{asset_id}?k=...          the page (HTML; its script and style from /scan/, same origin)
- GET  /r/{asset_id}/state?k=...    what it shows: device, status, calibration, work orders (JSON)
- POST /r/{asset_id}/reports?k=...  {symptom, note?, nonce} -> the work order it was filed as or merged into

Nothing about patients is read or shown (hub.scan.service).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi import Path as PathParam
from fastapi import status as http
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.routes.console import HEADERS
from hub.api.scope import Scope
from hub.auth.roles import Principal, Role
from hub.scan.keys import InvalidReportKeyError, ReportKey
from hub.scan.service import STATUS_TEXT, ScanDesk
from schemas._base import DeptRef

if TYPE_CHECKING:
    from datetime import date, datetime

router = APIRouter(tags=["scan-to-report"])

PAGE_DIR: Final = Path(__file__).resolve().parents[2] / "scan" / "page"
FILES: Final[dict[str, str]] = {
    "scan.js": "text/javascript; charset=utf-8",
    "scan.css": "text/css; charset=utf-8",
}
PAGE_HEADERS: Final = {**HEADERS, "Cache-Control": "no-store"}  # the URL holds the label's key
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    http.HTTP_401_UNAUTHORIZED: {"description": "No reporting key (scan the label)", "content": _ERROR},
    http.HTTP_403_FORBIDDEN: {"description": "The label's key is unknown or rotated out", "content": _ERROR},
    http.HTTP_404_NOT_FOUND: {"description": "No such device in the key's department", "content": _ERROR},
    http.HTTP_429_TOO_MANY_REQUESTS: {"description": "Rate limited: see Retry-After", "content": _ERROR},
}
AssetIdPath = Annotated[str, PathParam(max_length=100, description="Any id of the device (the label's)")]

ASSET_STATUS_TEXT = {
    "in_use": "在用",
    "idle": "闲置",
    "under_repair": "维修中",
    "on_loan": "借出",
    "awaiting_acceptance": "待验收",
    "sealed": "封存",
    "scrapped": "报废",
    "unknown": "未知",
}
COMPLIANCE_KINDS = {
    "calibration": "计量检定",
    "electrical_safety": "电气安全检测",
    "preventive_maintenance": "预防性维护",
    "contract": "维保合同",
    "warranty": "保修",
}


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symptom: str = Field(min_length=1, max_length=100, description="One of the page's symptom choices")
    note: str | None = Field(default=None, max_length=500, description="Optional free text")
    nonce: str = Field(
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Per page load: a resubmit is one report",
    )


class ReportFiled(BaseModel):
    model_config = ConfigDict(frozen=True)

    workorder_id: str
    merged: bool = Field(description="True: added to the device's open work order instead of a new one")
    event_id: str
    message: str


def _desk(services: ServicesDep) -> ScanDesk:
    if services.scan is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, "scan-to-report is not enabled on this hub")
    return services.scan


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limited(seconds: int | None) -> None:
    if seconds is not None:
        raise HTTPException(
            http.HTTP_429_TOO_MANY_REQUESTS,
            f"操作过于频繁，请 {seconds} 秒后再试",
            headers={"Retry-After": str(seconds)},
        )


def _authenticate(request: Request, services: ServicesDep, desk: ScanDesk) -> ReportKey:
    token = request.query_params.get("k") or request.headers.get("x-report-key")
    if not token:
        raise HTTPException(http.HTTP_401_UNAUTHORIZED, "缺少报修码：请扫描设备上的二维码")
    try:
        return desk.keys.authenticate(token, services.clock.now())
    except InvalidReportKeyError as exc:
        raise HTTPException(http.HTTP_403_FORBIDDEN, "报修码已失效：请联系设备科更换标签") from exc


def _scope(services: ServicesDep, key: ReportKey) -> Scope:
    """The key's department scope, through the one scope layer (hub.api.scope)."""
    principal = Principal(
        key_id=f"report:{key.key_id}", role=Role.VIEWER, department=key.department, label="扫码报修"
    )
    return Scope(principal, services)


def _asset(services: ServicesDep, scope: Scope, asset_id: str) -> dict[str, Any]:
    with services.engine.connect() as conn:
        row = scope.asset(conn, asset_id)
    if row is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, "未找到该设备（或不属于本科室）")
    return row


async def _checked(
    request: Request, services: ServicesDep, asset_id: str
) -> tuple[ScanDesk, ReportKey, dict[str, Any]]:
    desk = _desk(services)
    _limited(desk.views_per_client.hit(_client(request)))
    key = await run_in_threadpool(_authenticate, request, services, desk)
    asset = await run_in_threadpool(_asset, services, _scope(services, key), asset_id)
    return desk, key, asset


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _state(desk: ScanDesk, key: ReportKey, asset: dict[str, Any]) -> dict[str, Any]:
    view = desk.service.view(asset, key.department)
    status = asset.get("status") or "unknown"
    orders = [
        {
            "workorder_id": o["workorder_id"],
            "status": o["status"],
            "status_text": STATUS_TEXT.get(o["status"], o["status"]),
            "pending": bool(o.get("pending")),
            "requested_at": _iso(o.get("requested_at")),
            "status_at": _iso(o.get("status_at")),
            "symptom": o.get("symptom"),
            "channel": o.get("channel"),
            "engineer": o.get("engineer"),
            "resolution": o.get("resolution"),
            "reporters": 1 + len(o.get("reports") or []),
            "reports": [
                {"symptom": r["symptom"], "note": r["note"], "at": _iso(r["occurred_at"])}
                for r in o.get("reports") or []
            ],
        }
        for o in view["orders"]
    ]
    calibration = view["calibration"]
    return {
        "asset_id": asset["asset_id"],
        "name": asset.get("name"),
        "model": asset.get("model"),
        "manufacturer": asset.get("manufacturer"),
        "card": view["card"],
        "department": asset.get("department_name") or asset.get("department_code"),
        "location": asset.get("location"),
        "category": asset.get("category_name"),
        "status": status,
        "status_text": ASSET_STATUS_TEXT.get(status, asset.get("status_text") or status),
        "calibration": {
            "calibrated_on": _iso(calibration["calibrated_on"]),
            "valid_until": _iso(calibration["valid_until"]),
            "result": calibration["result"],
            "expired": calibration["expired"],
        },
        "due": [
            {
                "kind": d["kind"],
                "kind_text": COMPLIANCE_KINDS.get(d["kind"], d["kind"]),
                "due_on": _iso(d["due_on"]),
                "overdue": d["overdue"],
            }
            for d in view["due"]
        ],
        "orders": orders,
        "symptoms": view["symptoms"],
    }


def _error_page(exc: HTTPException) -> HTMLResponse:
    text = str(exc.detail).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/scan/scan.css"><title>设备报修</title></head>'
        f'<body><main><h1>设备报修</h1><p class="error">{text}</p></main></body></html>'
    )
    return HTMLResponse(body, status_code=exc.status_code, headers={**PAGE_HEADERS, **(exc.headers or {})})


@router.get("/r/{asset_id}", include_in_schema=False)
async def scan_page(request: Request, services: ServicesDep, asset_id: AssetIdPath) -> Any:
    """The page (its data comes from /state, with the same key)."""
    try:
        await _checked(request, services, asset_id)
    except HTTPException as exc:
        return _error_page(exc)
    return FileResponse(PAGE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/scan/{name}", include_in_schema=False)
def scan_file(name: str) -> FileResponse:
    media_type = FILES.get(name)
    if media_type is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, f"no file {name!r}")
    return FileResponse(PAGE_DIR / name, media_type=media_type, headers=HEADERS)


@router.get("/r/{asset_id}/state", responses=RESPONSES)
async def scan_state(request: Request, services: ServicesDep, asset_id: AssetIdPath) -> JSONResponse:
    """The device's status, calibration and open/recent work orders, for the label's key."""
    desk, key, asset = await _checked(request, services, asset_id)
    state = await run_in_threadpool(_state, desk, key, asset)
    return JSONResponse(state, headers={"Cache-Control": "no-store"})


@router.post(
    "/r/{asset_id}/reports",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=ReportFiled,
    responses=RESPONSES,
)
async def scan_report(
    request: Request, services: ServicesDep, asset_id: AssetIdPath, report: Annotated[ReportIn, Body()]
) -> ReportFiled:
    """File a fault report: a new `workorder.requested` (channel scan), or merged into the open one."""
    desk = _desk(services)
    _limited(desk.views_per_client.hit(_client(request)))  # every request, guesses included
    key = await run_in_threadpool(_authenticate, request, services, desk)
    _limited(desk.reports_per_client.hit(_client(request)))
    _limited(desk.reports_per_key.hit(key.key_id))
    asset = await run_in_threadpool(_asset, services, _scope(services, key), asset_id)
    if report.symptom not in desk.service.choices(asset) and report.symptom != "其他":
        raise HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, "请选择列表中的故障现象")
    filed = await desk.service.report(
        asset,
        symptom=report.symptom,
        note=(report.note or "").strip() or None,
        nonce=report.nonce,
        department=DeptRef(code=asset.get("department_code"), name=asset.get("department_name")),
        reporter=f"scan:{key.key_id}",
    )
    message = (
        f"该设备已有报修单 {filed.workorder_id}，您的报告已合并，维修人员会一并处理"
        if filed.merged
        else f"已报修，工单号 {filed.workorder_id}"
    )
    return ReportFiled(
        workorder_id=filed.workorder_id, merged=filed.merged, event_id=filed.event_id, message=message
    )
