"""GET /console: the operators' single-page console (static HTML, JS, CSS from hub/api/console/).

The page holds no data: it is served without authentication, and every figure it shows comes
from the JSON API through the same key, role and scope checks as any other caller. A strict
Content-Security-Policy keeps it to scripts and styles of this origin (no inline code, no CDN),
so data rendered by the page cannot turn into script. `/` redirects here. The charts use Apache
ECharts, served from here too (/console/echarts.min.js, its licence beside it): no CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

CONSOLE_DIR: Final = Path(__file__).resolve().parent.parent / "console"

# Only these files are served: a fixed table, so no request path ever reaches the filesystem.
ASSETS: Final[dict[str, str]] = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    # Apache ECharts, vendored with its licence (hub/api/console/__init__.py says which build).
    "echarts.min.js": "text/javascript; charset=utf-8",
    "echarts-LICENSE.txt": "text/plain; charset=utf-8",
    "echarts-NOTICE.txt": "text/plain; charset=utf-8",
    "echarts-LICENSE-d3.txt": "text/plain; charset=utf-8",
}

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load so an upgraded hub never runs an old script against a new API.
    "Cache-Control": "no-cache",
}


@router.get("/")
def root() -> RedirectResponse:
    """The hub's front door is the console."""
    return RedirectResponse("/console", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/console")
def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/console/{name}")
def console_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no console file {name!r}")
    return FileResponse(CONSOLE_DIR / name, media_type=media_type, headers=HEADERS)
