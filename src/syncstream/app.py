"""The application: builds the runtime, wires the modules, and manages their lifetime."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from syncstream import Syncstream
from syncstream.api_docs import install_api_docs
from syncstream.browser import router as browser_router
from syncstream.config import Settings
from syncstream.console import router as console_router
from syncstream.errors import install_error_handlers
from syncstream.http_metrics import HttpMetricsMiddleware
from syncstream.logs import RequestIdMiddleware
from syncstream.modules.attachments.entity import ATTACHMENT
from syncstream.modules.attachments.routes import HOT_CREATE as HOT_ATTACHMENT_CREATE
from syncstream.modules.attachments.routes import router as attachments_router
from syncstream.modules.hot import HotRoute, HotRoutes, HotStream
from syncstream.modules.memberships.routes import router as memberships_router
from syncstream.modules.operations.admin import router as admin_router
from syncstream.modules.operations.routes import router as operations_router
from syncstream.modules.organizations.routes import router as organizations_router
from syncstream.modules.pages import stream as pages_stream
from syncstream.modules.pages.entity import PAGE
from syncstream.modules.pages.routes import HOT_CREATE as HOT_PAGE_CREATE
from syncstream.modules.pages.routes import router as pages_router
from syncstream.modules.security_docs import install_security_docs
from syncstream.modules.users.rate_limit import SignInLimiter, SignUpLimiter
from syncstream.modules.users.routes import router as users_router
from syncstream.modules.users.sessions import router as sessions_router
from syncstream.request_limits import BodyLimitMiddleware
from syncstream.runtime import build_doorbell, build_runtime
from syncstream.stream.response import StreamMiddleware

logger = logging.getLogger("syncstream")

__all__ = ["SyncstreamApp", "build_doorbell", "build_runtime", "create_app", "mount"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The standalone server: syncstream's own domain (attachments, pages, both streams),
    built on the same public API an application uses (:class:`syncstream.Syncstream`)."""
    settings = settings or Settings.from_env()
    sync = Syncstream(settings)
    # Built-in routes record explicitly (Core inserts on the hot path), hence auto=False.
    sync.add(ATTACHMENT, auto=False)
    sync.add(PAGE, auto=False)
    pages_stream.install(sync)
    runtime = sync.runtime

    app = SyncstreamApp(
        title="syncstream",
        version="1.0.0",
        summary="Every change of your data, live, to the clients allowed to see it.",
        lifespan=sync.lifespan,
        docs_url=None,  # served from the installed assets, not a CDN: see api_docs.py
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.syncstream = sync
    app.cors_origins = settings.cors_origins
    app.is_stream = sync.stream_paths
    app.hot_routes = (HOT_ATTACHMENT_CREATE, HOT_PAGE_CREATE, *sync.hot_streams)
    app.state.sign_in_limiter = SignInLimiter(settings.sign_in_attempts, settings.sign_in_window_seconds)
    app.state.sign_up_limiter = SignUpLimiter(settings.sign_ups_per_address, settings.sign_up_window_seconds)
    app.state.sign_up_limiter = SignUpLimiter(settings.sign_ups_per_address, settings.sign_up_window_seconds)
    install_error_handlers(app)
    install_security_docs(app)

    # Stream routes first: /pages/stream must win over /pages/{page_id}.
    mount(app, sync.router)
    for router in (
        users_router,
        sessions_router,
        organizations_router,
        memberships_router,
        attachments_router,
        pages_router,
        operations_router,
        admin_router,
    ):
        mount(app, router)
    mount(app, console_router)
    mount(app, browser_router)
    install_api_docs(app)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def mount(app: FastAPI, router: APIRouter) -> None:
    """Put a module's routes on the app itself.

    ``include_router`` keeps each router as a nested object that this FastAPI version
    re-validates and searches on every request: a tenth of the CPU of a create. The
    module routers take no prefix, dependencies or overrides, so their routes can be
    taken over as they are (``/openapi.json`` is the same either way; a test checks).
    """
    app.router.routes.extend(router.routes)


class SyncstreamApp(FastAPI):
    cors_origins: tuple[str, ...] = ()
    is_stream: Callable[[str], bool] | None = None
    #: Operations served without the framework's per-request work (modules/hot.py).
    hot_routes: tuple[HotRoute | HotStream, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        # Outside even Starlette's error middleware, which wraps ``send`` in a closure:
        # streams need the server's own ``send`` to reach the transport. CORS goes
        # outside that, so that stream responses carry its headers too.
        # HTTP metrics go inside it, where a stream's route is still known (a stream is
        # counted as it opens: see http_metrics).
        metrics = self.state.runtime.metrics
        settings = self.state.runtime.settings
        hot = HotRoutes(super().build_middleware_stack(), self, self.hot_routes, settings.max_body_bytes)
        inner = HttpMetricsMiddleware(RequestIdMiddleware(hot), metrics)
        open_wait = self.state.runtime.settings.stream_open_wait_seconds
        stack: ASGIApp = StreamMiddleware(inner, open_wait_seconds=open_wait, is_stream=self.is_stream)
        if self.cors_origins:
            stack = CORSMiddleware(
                stack,
                allow_origins=list(self.cors_origins),
                allow_credentials=True,
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["Retry-After", "X-Request-ID"],
            )
        return stack
