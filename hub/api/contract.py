"""The API's published contract: what the OpenAPI document declares is what the API does.

- Security: the two ways to present a key (`Authorization: Bearer hub_…`, `X-API-Key`) are
  declared as security schemes, required on every operation except the open ones (health,
  metrics, console, docs).
- Errors: every error the hub answers has one body, `{"detail": …}` (a sentence, or FastAPI's list
  of validation errors), declared as `Error` on 400/401/403/404/422 of every operation (open
  operations: 400/422), so a client can rely on it.
- 405: the `Allow` header lists every method the path has (a path served by two routes, GET and
  HEAD of /raw/{ref}, used to list only one).
- Docs: Swagger UI and ReDoc from assets shipped in the `fastapi-offline` package, served by the
  hub itself: a hospital intranet has no CDN.
- Events: `/asyncapi.json`, the AsyncAPI 3.0.0 document of the Kafka topics (with this
  deployment's topic prefix), the SSE stream and webhook deliveries (hub.schema_export). Open like
  /openapi.json: it describes the API and holds no data. Built once per process, with an ETag.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import fastapi_offline
from fastapi import Request  # noqa: TC002  (FastAPI reads the annotations at runtime)
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir.bundle import outcome
from hub.api.fhir.wire import FHIR_JSON, FHIR_XML, FhirError, Wire, negotiate
from hub.schema_export import asyncapi_json

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fastapi import APIRouter, FastAPI
    from fastapi.dependencies.models import Dependant

DOCS_ASSETS = "/docs/assets"
_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "What was wrong: a sentence, or the list of invalid parameters",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                {"type": "object"},
            ],
        }
    },
}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hub_<key id>_<secret>",
        "description": "An API key made with `hub keys create`",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key"},
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}},
}
_FHIR_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    503: "transient",
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ERRORS_OPEN = {400: "Bad request", 422: "Invalid parameters or body"}
ERRORS_KEYED = {
    **ERRORS_OPEN,
    401: "No key, or the key is unknown, revoked or expired",
    403: "The key's role (or department scope) does not allow this",
    404: "Not found, or outside the key's department",
}


def install(app: FastAPI, open_routers: Iterable[APIRouter]) -> None:
    """Serve the docs from local assets, declare security and errors, and answer 405 fully.

    `open_routers`: the routers whose operations need no key (health, metrics, console).
    """
    app.mount(DOCS_ASSETS, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")
    _docs_routes(app)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    unkeyed = {
        route.path for router in open_routers for route in router.routes if isinstance(route, APIRoute)
    }
    app.openapi = lambda: _openapi(app, unkeyed)  # type: ignore[method-assign]


def _docs_routes(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi(request: Request, services: ServicesDep) -> Response:
        body, etag = await asyncio.to_thread(_asyncapi, services.topic_prefix)
        headers = {
            "ETag": etag,
            "Cache-Control": "no-cache",
        }  # may keep it, must ask: a new version changes it
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


@lru_cache(maxsize=4)
def _asyncapi(prefix: str) -> tuple[bytes, str]:
    body = asyncapi_json(prefix).encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


async def _http_error(request: Request, exc: Exception) -> Response:
    exc = cast("StarletteHTTPException", exc)  # registered for this type only
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
    if exc.status_code in (204, 304):
        return JSONResponse(None, status_code=exc.status_code, headers=headers)
    if _is_fhir(request):  # a FHIR client reads OperationOutcome, whatever went wrong
        code = getattr(exc, "code", None) or _FHIR_CODES.get(exc.status_code, "processing")
        body = outcome(code, str(exc.detail), expression=getattr(exc, "expression", None))
        return _wire(request).respond(body, exc.status_code, headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    exc = cast("RequestValidationError", exc)  # registered for this type only
    if not _is_fhir(request):
        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
    body = outcome(
        "invalid", f"{where or 'request'}: {first.get('msg', 'invalid')}", expression=where or None
    )
    return _wire(request).respond(body, 400)


def _wire(request: Request) -> Wire:
    """The release and format the request asked for; R5 JSON when that is what was wrong."""
    try:
        return negotiate(request, request.query_params.get("_format"))
    except FhirError:
        return Wire()


def _is_fhir(request: Request) -> bool:
    return request.url.path == "/fhir" or request.url.path.startswith("/fhir/")


def _allowed(request: Request) -> list[str]:
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _openapi(app: FastAPI, unkeyed: set[str]) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["schemas"].pop("HTTPValidationError", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            needs_key = path not in unkeyed
            if needs_key:
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
            responses = operation.setdefault("responses", {})
            for code, text in (ERRORS_KEYED if needs_key else ERRORS_OPEN).items():
                entry = responses.setdefault(str(code), {"description": text})
                # FHIR answers every error as an OperationOutcome (fhir+json), the rest as `Error`.
                fhir = path == "/fhir" or path.startswith("/fhir/")
                entry["content"] = (
                    {FHIR_JSON: {"schema": _OUTCOME}, FHIR_XML: {"schema": {"type": "string"}}}
                    if fhir
                    else {"application/json": {"schema": _ERROR_REF}}
                )
    app.openapi_schema = schema
    return schema


def depends_on(dependant: Dependant, call: object) -> bool:
    """Whether `dependant` (a route's, or one of its dependencies') calls `call` at any depth."""
    return dependant.call is call or any(depends_on(d, call) for d in dependant.dependencies)
