"""GET /assets and GET /assets/{asset_id}: the asset registry read model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi import status as http

from hub.api.deps import ConnDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.models import AssetOut, AssetPage
from projections.asset_registry import get_asset, list_assets
from schemas.assets import AssetStatus  # noqa: TC001

router = APIRouter(prefix="/assets", tags=["assets"])

MAX_PAGE = 500


@router.get("", response_model=AssetPage)
def read_assets(
    conn: ConnDep,
    *,
    department: Annotated[str | None, Query(description="Department code or name, exact")] = None,
    status: Annotated[AssetStatus | None, Query(description="Harmonised status")] = None,
    name: Annotated[str | None, Query(description="Substring of the device name, case-insensitive")] = None,
    category: Annotated[str | None, Query(description="Category code or name, exact")] = None,
    identifier: Annotated[
        str | None, Query(description="Any source identifier value (card no., UDI...)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AssetPage:
    """Assets matching every given filter, one page at a time, ordered by asset id."""
    rows, total = list_assets(
        conn,
        department=department,
        status=status.value if status is not None else None,
        name=name,
        category=category,
        identifier=identifier,
        limit=limit,
        offset=offset,
    )
    return AssetPage(
        items=[AssetOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{asset_id}",
    response_model=AssetOut,
    responses={http.HTTP_404_NOT_FOUND: {"description": "The registry has no asset with this id"}},
)
def read_asset(conn: ConnDep, asset_id: Annotated[str, Path(max_length=64)]) -> AssetOut:
    """One asset with all its identifiers."""
    row = get_asset(conn, asset_id)
    if row is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, detail=f"no asset with id {asset_id!r} in the registry")
    return AssetOut.model_validate(row)
