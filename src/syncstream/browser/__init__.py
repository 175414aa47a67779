"""The browser client, served by the server: ``/client.js`` (an ES module) and ``/client.d.ts`` (its types).

The files live in ``js/`` inside the package, next to the ``package.json`` that ``npm pack`` uses, so the
server always serves the client that matches its own API, from the wheel as well as from a checkout
(:mod:`importlib.resources` reads either).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from fastapi import APIRouter
from starlette.responses import Response

__all__ = ["ASSETS", "read_asset", "router"]

router = APIRouter(include_in_schema=False)

#: The files served, with their media types: a fixed list, so no request can name another file.
ASSETS: Final = {
    "client.js": "text/javascript; charset=utf-8",
    "client.d.ts": "application/typescript; charset=utf-8",
}

_HEADERS: Final = {
    # Served with the server, so always the version matching its API: revalidate every time.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # Public code: any page may import the module (module scripts are fetched with CORS). Requests the
    # client then makes to the API are still subject to SYNCSTREAM_CORS_ORIGINS.
    "Access-Control-Allow-Origin": "*",
}


@functools.cache
def read_asset(name: str) -> bytes:
    """The bytes of one of :data:`ASSETS`."""
    return resources.files(__name__).joinpath("js", name).read_bytes()


def _asset(name: str) -> Response:
    return Response(read_asset(name), media_type=ASSETS[name], headers=_HEADERS)


@router.get("/client.js")
async def client_js() -> Response:
    """The browser client, an ES module: ``import { SyncStream } from "/client.js"``."""
    return _asset("client.js")


@router.get("/client.d.ts")
async def client_types() -> Response:
    """The browser client's TypeScript declarations."""
    return _asset("client.d.ts")
