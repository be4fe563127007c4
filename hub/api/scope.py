"""Department scope: the one place that decides what a department-scoped key may see.

A key made with `--department D` (D a code or a name) sees only D's objects. Every route that
serves data takes `ScopeDep` (directly, or through `require`/`AuditDep`), and asks it:

- lists: `scope.department_filter(requested)` -> the department to filter by, and whether the
  filter can match at all (asking for another department: an empty page, never a 403);
- one object: `scope.sees(code, name)`, `scope.asset(conn, id)`, `scope.work_order(...)`;
  outside the scope the route answers the same 404 as for an unknown id;
- raw messages and dead letters: `scope.raw_refs(refs)` -> the refs that are D's alone
  (projections.raw_scope: every department their events name is D); unknown -> not D's;
- hospital-wide routes (the event stream, webhook subscriptions, ingest): `WholeHospital`
  refuses a scoped key with 403: these are not objects of any department, so nothing is
  probed, and the refusal tells the caller it needs another key.

hub.api.app (behind `build_api`) refuses to build an app with a data route that does not go
through `get_scope`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException
from fastapi import status as http

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI reads the annotation at runtime)
from hub.api.security import PrincipalDep  # noqa: TC001
from hub.auth.roles import Permission  # noqa: TC001  (kept with the runtime imports)
from projections.assets.queries import get_asset
from projections.raw_scope.projection import departments_of, owned_by
from projections.work_orders.queries import get_work_order, in_scope

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Connection

    from hub.api.services import ApiServices
    from hub.auth.roles import Principal


class Scope:
    """The caller's department scope over one request's services."""

    def __init__(self, principal: Principal, services: ApiServices) -> None:
        self.principal = principal
        self._services = services

    @property
    def department(self) -> str | None:
        return self.principal.department

    @property
    def scoped(self) -> bool:
        return self.principal.department is not None

    def sees(self, department_code: str | None, department_name: str | None) -> bool:
        return self.principal.sees(department_code, department_name)

    def department_filter(self, requested: str | None) -> tuple[str | None, bool]:
        """The department a list query filters by, and whether it can match anything."""
        if self.department is None:
            return requested, True
        if requested is not None and requested != self.department:
            return self.department, False
        return self.department, True

    def whole_hospital(self, what: str) -> None:
        if self.scoped:
            raise HTTPException(
                http.HTTP_403_FORBIDDEN, f"department-scoped keys cannot use {what}: it is hospital-wide"
            )

    def asset(self, conn: Connection, asset_id: str) -> dict[str, Any] | None:
        """The registry row of `asset_id` (any id of the device) if the caller may see it."""
        row = get_asset(conn, asset_id)
        if row is None or not self.sees(row.get("department_code"), row.get("department_name")):
            return None
        return row

    def work_order(self, conn: Connection, workorder_id: str) -> dict[str, Any] | None:
        """The work order if the caller may see it: reported by the department or on its device."""
        row = get_work_order(conn, workorder_id, now=self._services.clock.now())
        if row is None or (self.department is not None and not in_scope(row, self.department)):
            return None
        return row

    def _owned(self, raw_refs: list[str]) -> set[str]:
        department = self.department
        assert department is not None  # noqa: S101  # nosec B101: only called for scoped keys
        with self._services.engine.connect() as conn:
            named = departments_of(conn, raw_refs)
        return {ref for ref in raw_refs if owned_by(named.get(ref, []), department)}

    async def raw_refs(self, raw_refs: Iterable[str]) -> set[str]:
        """The refs among `raw_refs` the caller may see: all of them unscoped, else D's alone."""
        refs = list(dict.fromkeys(raw_refs))
        if not self.scoped:
            return set(refs)
        return await asyncio.to_thread(self._owned, refs)

    async def sees_raw(self, raw_ref: str) -> bool:
        return raw_ref in await self.raw_refs([raw_ref])


def get_scope(principal: PrincipalDep, services: ServicesDep) -> Scope:
    return Scope(principal, services)


ScopeDep = Annotated[Scope, Depends(get_scope)]


def require(permission: Permission) -> Any:
    """A router/route dependency: 403 unless the caller's role grants `permission`."""

    def check(scope: ScopeDep) -> Scope:
        principal = scope.principal
        if not principal.can(permission):
            raise HTTPException(
                http.HTTP_403_FORBIDDEN,
                f"role {principal.role.value!r} may not {permission.value.replace('_', ' ')}",
            )
        return scope

    return Depends(check)


def whole_hospital(what: str) -> Any:
    """A route dependency: 403 for a department-scoped key (see the module docstring)."""

    def check(scope: ScopeDep) -> None:
        scope.whole_hospital(what)

    return Depends(check)
