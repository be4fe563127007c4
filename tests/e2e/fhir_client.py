"""fhirclient (the SMART on FHIR Python client) talking to the in-process hub: a requests
transport adapter that hands each request to the wired hub's httpx client on its event loop.

fhirclient is synchronous (requests); the test runs it in a worker thread while the module's
event loop serves the hub. Nothing is changed in the requests: the adapter is only the wire.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

if TYPE_CHECKING:
    import httpx


class HubAdapter(BaseAdapter):
    """requests -> the hub's ASGI app (through `http`, on `loop`)."""

    def __init__(self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._http = http
        self._loop = loop

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        call = self._http.request(
            str(request.method), str(request.url), headers=dict(request.headers), content=request.body
        )
        answer = asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=60)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.content  # how requests holds a read body
        response.url = str(request.url)
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release: the hub's client belongs to the test."""
