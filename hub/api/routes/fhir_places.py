"""FHIR Location: `GET /fhir/Location/{id}` and `GET /fhir/Location?name=&partof=`.

The departments and places the asset registry and the inventory name (hub.api.fhir.places).
A scoped key sees its own department and the places inside it; any other Location is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response  # noqa: TC002  (FastAPI reads the return annotation)

from hub.api.deps import EngineDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir import places as fhir_places
from hub.api.fhir.answer import RESPONSES, in_release, search_answer
from hub.api.fhir.bundle import PagingDep, not_found
from hub.api.fhir.places import Place
from hub.api.fhir.wire import WireDep, read
from hub.api.scope import Scope, ScopeDep  # noqa: TC001
from projections.assets.queries import list_places as asset_places
from projections.inventory.queries import list_places as stock_places

router = APIRouter(prefix="/fhir", tags=["fhir"])


def known_places(engine: EngineDep, scope: Scope) -> list[Place]:
    """Every department and place the read models name that the caller may see, by id."""
    with engine.connect() as conn:
        rows = [*asset_places(conn), *stock_places(conn)]
    found: dict[str, Place] = {}
    for row in rows:
        code, name, where = row["department_code"], row["department_name"], row["location"]
        if not scope.sees(code, name):
            continue
        for place in (Place(code, name), Place(code, name, where or None)):
            found.setdefault(place.id, place)
    return [found[key] for key in sorted(found)]


@router.get("/Location/{location_id}", summary="One department or place", responses=RESPONSES)
async def read_location(
    location_id: str, request: Request, engine: EngineDep, scope: ScopeDep, wire: WireDep
) -> Response:
    found = [p for p in await run_in_threadpool(known_places, engine, scope) if p.id == location_id]
    if not found:
        raise not_found(f"Location/{location_id}")
    return read(request, wire, in_release(wire, fhir_places.location(found[0]), fhir_places.r4b))


@router.get("/Location", summary="Search departments and places (name, partof)", responses=RESPONSES)
async def search_locations(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    name: Annotated[str | None, Query(description="Part of the name")] = None,
    partof: Annotated[str | None, Query(description="Location/<department id>: the places inside it")] = None,
) -> Response:
    resources = [fhir_places.location(p) for p in await run_in_threadpool(known_places, engine, scope)]
    if name:
        resources = [r for r in resources if name.lower() in r["name"].lower()]
    if partof:
        parent = f"Location/{partof.removeprefix('Location/')}"
        resources = [r for r in resources if r.get("partOf", {}).get("reference") == parent]
    page = resources[paging.offset : paging.offset + paging.count]
    return search_answer(request, wire, page, total=len(resources), paging=paging, r4b=fhir_places.r4b)
