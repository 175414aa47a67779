"""The application: builds the runtime, wires the modules, and manages their lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from syncstream.activities.bus import ActivityBus
from syncstream.activities.tailer import LogTailer
from syncstream.activities.transports import Doorbell, channel_for_database, doorbell_from_url
from syncstream.activities.transports.base import redact_url
from syncstream.activities.writer import ActivityWriter
from syncstream.admission import stream_quota
from syncstream.api_docs import install_api_docs
from syncstream.auth import passwords
from syncstream.auth.session_activity import SessionActivity
from syncstream.auth.sessions import record_last_used
from syncstream.browser import router as browser_router
from syncstream.config import Settings
from syncstream.console import router as console_router
from syncstream.db.engine import Database
from syncstream.db.migrate import upgrade
from syncstream.errors import install_error_handlers
from syncstream.http_metrics import HttpMetricsMiddleware
from syncstream.logs import RequestIdMiddleware
from syncstream.metrics import Metrics
from syncstream.modules.attachments.routes import router as attachments_router
from syncstream.modules.common import wire_read_caches
from syncstream.modules.memberships.routes import router as memberships_router
from syncstream.modules.operations.admin import router as admin_router
from syncstream.modules.operations.routes import router as operations_router
from syncstream.modules.organizations.routes import router as organizations_router
from syncstream.modules.pages import stream_routes as pages_stream
from syncstream.modules.pages.routes import router as pages_router
from syncstream.modules.security_docs import install_security_docs
from syncstream.modules.sync import routes as sync_stream
from syncstream.modules.users.rate_limit import SignInLimiter, SignUpLimiter
from syncstream.modules.users.routes import router as users_router
from syncstream.modules.users.sessions import router as sessions_router
from syncstream.request_limits import BodyLimitMiddleware
from syncstream.runtime import Runtime
from syncstream.stream.frames import close_frame
from syncstream.stream.helpers import keep_alive
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.response import StreamMiddleware
from syncstream.stream.subscriber import Subscriber

logger = logging.getLogger("syncstream")


def build_doorbell(settings: Settings) -> Doorbell:
    """The bus URL's doorbell, on ``SYNCSTREAM_BUS_CHANNEL`` or else the channel derived
    from the database: deployments sharing a Redis or NATS server stay apart."""
    channel = settings.bus_channel or channel_for_database(settings.database_url)
    return doorbell_from_url(settings.bus_url, channel=channel)


def build_runtime(settings: Settings) -> Runtime:
    database = Database.connect(settings.database_url, pool_size=settings.database_pool_size, serial=True)
    doorbell = build_doorbell(settings)
    bus = ActivityBus()
    subscribers: SubscriberManager[Subscriber] = SubscriberManager()
    writer = ActivityWriter(database, doorbell)

    async def record_sessions_used(used: dict[str, float]) -> None:
        await writer.run(lambda tx: record_last_used(tx.session, used))

    return Runtime(
        settings=settings,
        database=database,
        doorbell=doorbell,
        bus=bus,
        writer=writer,
        tailer=LogTailer(
            database, bus, doorbell, poll_seconds=settings.poll_seconds, max_bytes=settings.page_bytes
        ),
        subscribers=subscribers,
        metrics=Metrics(subscribers.count),
        quota=stream_quota(settings),
        sessions=SessionActivity(
            idle_seconds=settings.session_idle_seconds,
            max_seconds=settings.session_max_seconds,
            write=record_sessions_used,
        ),
    )


def close_streams(runtime: Runtime, reason: str = "shutdown") -> None:
    """End every open stream cleanly (clients resume elsewhere with Last-Event-ID), and
    refuse new ones from now on. Each gets ``event: close`` last, so a client knows to
    reconnect at once rather than back off as from a failure."""
    runtime.closing = True
    frame = close_frame(reason)
    for sub in runtime.subscribers.get_all():
        sub.close(reason, frame)


def _close_streams_on_exit_signal(runtime: Runtime) -> None:
    """Close streams as soon as the server is told to stop.

    Servers such as uvicorn wait for open connections to finish before they run the
    lifespan shutdown, and an SSE stream never finishes by itself: so on SIGTERM/SIGINT
    we end every stream first (cleanly, clients resume elsewhere), then hand the signal
    on to the server's own handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(close_streams, runtime)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    hashing = passwords.configure(
        time_cost=settings.password_time_cost,
        memory_kib=settings.password_memory_kib,
        concurrency=settings.password_concurrency,
        queue=settings.password_queue,
    )
    runtime = build_runtime(settings)
    runtime.metrics.watch_password_hashing(lambda: hashing.running, lambda: hashing.peak)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade(runtime.database)
        await runtime.tailer.start()
        # What start-up made (modules, routes, the schema) lives as long as the process:
        # moved out of the cyclic collector's way, every later collection is cheaper.
        gc.freeze()
        pinger = asyncio.create_task(
            keep_alive(runtime.subscribers.get_all, settings.keepalive_seconds), name="syncstream-keep-alive"
        )
        _close_streams_on_exit_signal(runtime)
        logger.info(
            "syncstream ready: database=%s bus=%s", runtime.database.dialect, redact_url(settings.bus_url)
        )
        try:
            yield
        finally:
            pinger.cancel()
            close_streams(runtime)
            await runtime.sessions.flush()
            await runtime.tailer.stop()
            await runtime.database.dispose()

    app = SyncstreamApp(
        title="syncstream",
        version="1.0.0",
        summary="Every change of your data, live, to the clients allowed to see it.",
        lifespan=lifespan,
        docs_url=None,  # served from the installed assets, not a CDN: see api_docs.py
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.cors_origins = settings.cors_origins
    app.state.sign_in_limiter = SignInLimiter(settings.sign_in_attempts, settings.sign_in_window_seconds)
    app.state.sign_up_limiter = SignUpLimiter(settings.sign_ups_per_address, settings.sign_up_window_seconds)
    install_error_handlers(app)
    install_security_docs(app)

    # Stream routes first: /pages/stream must win over /pages/{page_id}.
    mount(app, pages_stream.router)
    mount(app, sync_stream.router)
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
    wire_read_caches(runtime)
    sync_stream.install(runtime)
    pages_stream.install(runtime)

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

    def build_middleware_stack(self) -> ASGIApp:
        # Outside even Starlette's error middleware, which wraps ``send`` in a closure:
        # streams need the server's own ``send`` to reach the transport. CORS goes
        # outside that, so that stream responses carry its headers too.
        # HTTP metrics go inside it, where a stream's route is still known (a stream is
        # counted as it opens: see http_metrics).
        metrics = self.state.runtime.metrics
        inner = HttpMetricsMiddleware(RequestIdMiddleware(super().build_middleware_stack()), metrics)
        open_wait = self.state.runtime.settings.stream_open_wait_seconds
        stack: ASGIApp = StreamMiddleware(inner, open_wait_seconds=open_wait)
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
