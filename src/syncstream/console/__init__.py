"""The live console: a page at ``/console`` that watches the streams from a browser.

It is deliberately plain (one HTML file, three small ES modules, one stylesheet, no build step), and it
follows streams with the server's own browser client (``/client.js``, :mod:`syncstream.browser`), so what
it shows is what an application using that client sees: cookie authentication, ``Last-Event-ID``
resumption, the ``offset`` frame, ``error`` and ``close`` frames. The files live in
``static/`` inside the package, so they ship in the wheel (hatchling includes every file under the package
directory) and are read with :mod:`importlib.resources`, which works from a zip as well as a directory.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from fastapi import APIRouter
from starlette.responses import Response

from syncstream import problems

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: The only files served, with their media types: a fixed list, so no request can name another file.
ASSETS: Final = {
    "console.js": "text/javascript; charset=utf-8",
    "rows.js": "text/javascript; charset=utf-8",
    "server.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

#: Nothing inline, nothing from elsewhere: entity names from the stream can never run as script.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    # Served with the server, so always the version that matches its API: revalidate every time.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def _read(name: str) -> bytes:
    return resources.files(__name__).joinpath("static", name).read_bytes()


@router.get("/console")
async def console_page() -> Response:
    """The console's page."""
    headers = {
        **_HEADERS,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
    }
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=headers)


@router.get("/console/static/{name}")
async def console_asset(name: str) -> Response:
    """The console's script and stylesheet."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise problems.not_found(f"no console asset {name!r}")
    return Response(_read(name), media_type=media_type, headers=_HEADERS)
