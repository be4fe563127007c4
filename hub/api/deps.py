"""FastAPI dependencies as `Annotated` aliases: the app's state and a read-model connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request
from sqlalchemy import Connection

from hub.api.state import ApiState

if TYPE_CHECKING:
    from collections.abc import Iterator


def get_state(request: Request) -> ApiState:
    """The state `create_app` stored on this app."""
    return cast("ApiState", request.app.state.hub)


StateDep = Annotated[ApiState, Depends(get_state)]


def get_conn(state: StateDep) -> Iterator[Connection]:
    """A read-model connection for one request (sync: FastAPI runs it in its threadpool)."""
    with state.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
