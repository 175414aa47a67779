"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with no network beyond this server.

FastAPI's own pages load their scripts from a CDN: on a machine or network without one
they are blank. The assets here come from the installed ``fastapi-offline`` package
(MIT; it ships Swagger UI's and ReDoc's release bundles): only its static files are
used, with FastAPI's own page builders, so nothing else of that package runs.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "install_api_docs"]

#: Where the assets are served; one folder under the docs' own path.
ASSETS_PATH = "/docs/assets"
_ASSETS = Path(str(files("fastapi_offline") / "static"))

#: No validator badge: Swagger UI would otherwise ask an outside validator about the document.
_SWAGGER_PARAMETERS = {"validatorUrl": None, "tryItOutEnabled": False}


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (the app is made with ``docs_url=None``
    and ``redoc_url=None``, so FastAPI's CDN pages are not there)."""
    title = app.title

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} — API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} — API reference",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.router.routes.append(Mount(ASSETS_PATH, StaticFiles(directory=_ASSETS), name="api-docs-assets"))
