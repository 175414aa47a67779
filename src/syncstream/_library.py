"""``Syncstream``: declare entity types, compose streams, mount them into a FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from syncstream._access import (
    AccessIndex,
    Permission,
    apply_membership_change,
    both,
    end_organization_streams,
    end_session_streams,
    route,
)
from syncstream._capture import apply_settings
from syncstream._entities import (
    EntityType,
    Scope,
    Shape,
    TxMeta,
    entity_type,
    ring_later,
    set_context,
    track,
)
from syncstream._entities import record as record_change
from syncstream._lifetime import close_streams, close_streams_on_exit_signal
from syncstream._streams import StreamPaths, StreamSlice, hot_stream, open_slice, organization_slice
from syncstream.activities import log
from syncstream.activities.model import Action, Activity
from syncstream.activities.transports.base import redact_url
from syncstream.activities.writer import WriteTransaction
from syncstream.auth import passwords
from syncstream.auth.sessions import Caller
from syncstream.config import Settings
from syncstream.db.migrate import upgrade
from syncstream.modules.common import CallerDep, current_caller, wire_read_caches
from syncstream.modules.hot import HotStream
from syncstream.modules.stream_docs import stream_route_docs
from syncstream.modules.streaming import measured
from syncstream.runtime import Runtime, build_runtime
from syncstream.stream.helpers import keep_alive
from syncstream.stream.response import StreamMiddleware

logger = logging.getLogger("syncstream")

T = TypeVar("T")
SliceEndpoint = Callable[..., Awaitable[StreamSlice]]

_LIFECYCLE = {
    "membership.created": apply_membership_change,
    "membership.updated": apply_membership_change,
    "membership.deleted": apply_membership_change,
    "organization.deleted": end_organization_streams,
    "session.revoked": end_session_streams,
}


class Syncstream:
    """Live sync for an application's own entity types.

    ``settings`` default to the ``SYNCSTREAM_*`` environment, read on first use.
    ``permission(access, activity)`` is the application's own read rule, applied to
    every activity of every member stream on top of the organization/project rule.
    ``caller`` replaces the dependency that finds the request's :class:`Caller` (the
    bearer token or session cookie of syncstream's own users).
    ``organization_stream``: where the stream of a whole organization is served (every
    declared organization type); None for none.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        permission: Permission | None = None,
        caller: Callable[..., Any] | None = None,
        organization_stream: str | None = "/organizations/{org}/sync/stream",
    ) -> None:
        self._settings = settings
        self._runtime: Runtime | None = None
        self.permission = permission
        self.caller_dependency = caller
        self.entities: dict[str, EntityType] = {}
        self._types: dict[bool, frozenset[str]] = {}
        #: Stream routes whose types are the declared ones (public or not), for their docs.
        self._documented: list[tuple[BaseRoute, bool]] = []
        #: The stream routes (and nothing else): include it in your app, or use :meth:`install`.
        self.router = APIRouter(tags=["streams"])
        #: The explicit stream marker, for ``StreamMiddleware``.
        self.stream_paths = StreamPaths()
        #: The stream routes a server may serve on its hot path (see ``hot_stream``).
        self.hot_streams: list[HotStream] = []
        self._hook = ring_later(self._committed)
        if organization_stream is not None:
            self._organization_stream(organization_stream)

    # -- configuration ------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def runtime(self) -> Runtime:
        """The running parts (database, bus, tailer, subscribers), built on first use."""
        if self._runtime is None:
            settings = self.settings
            hashing = passwords.configure(
                time_cost=settings.password_time_cost,
                memory_kib=settings.password_memory_kib,
                concurrency=settings.password_concurrency,
                queue=settings.password_queue,
            )
            runtime = build_runtime(settings)
            runtime.metrics.watch_password_hashing(lambda: hashing.running, lambda: hashing.peak)
            wire_read_caches(runtime)
            access = runtime.access
            for event, apply in _LIFECYCLE.items():
                runtime.bus.on(event, functools.partial(_apply, apply, access))
            self._runtime = runtime
            for entity in self.entities.values():
                self._wire(entity)
        return self._runtime

    # -- entity types -------------------------------------------------------------------------

    def entity(
        self,
        name: str,
        model: type[Any] | Table,
        *,
        scope: Scope,
        shape: Shape,
        untracked: Iterable[str] = (),
        keys: Mapping[str, str] | None = None,
        auto: bool = True,
    ) -> EntityType:
        """Declare an entity type: its creates, updates and deletes become activities.

        ``model`` is a declarative ORM class (or a ``Table`` for Core-only writes);
        ``shape(row)`` is the JSON the stream carries. With ``auto`` (ORM models), every
        flush that writes a row of ``model`` records its activity in the same
        transaction; ``untracked`` attributes (``updated_at``) make no change alone.
        """
        entity = entity_type(name, model, scope=scope, shape=shape, untracked=untracked, keys=keys)
        return self.add(entity, auto=auto)

    def add(self, entity: EntityType, *, auto: bool = True) -> EntityType:
        """Declare an :class:`EntityType` made with :func:`entity_type`."""
        if entity.name in self.entities:
            raise ValueError(f"entity type {entity.name!r} is declared already")
        self.entities[entity.name] = entity
        self._types.clear()
        self._document_types()
        if auto and entity.model is not None:
            track(entity.model, entity, self._hook)
        if self._runtime is not None:
            self._wire(entity)
        return entity

    def _wire(self, entity: EntityType) -> None:
        runtime = self.runtime
        runtime.bus.declare(entity.events)
        listener = measured(runtime, route)
        for event in entity.events:
            runtime.bus.on(event, listener)

    def _document_types(self) -> None:
        for api_route, public in self._documented:
            if isinstance(api_route, APIRoute):
                docs = stream_route_docs(self.types(public=public), authenticated=not public)
                api_route.openapi_extra = docs["openapi_extra"]

    def types(self, *, public: bool) -> frozenset[str]:
        """The names of the declared public (or organization) entity types."""
        cached = self._types.get(public)
        if cached is None:
            cached = self._types[public] = frozenset(
                n for n, e in self.entities.items() if e.public == public
            )
        return cached

    def _entity(self, entity: str | EntityType) -> EntityType:
        return self.entities[entity] if isinstance(entity, str) else entity

    # -- writes -------------------------------------------------------------------------------

    def context(
        self, session: Session | AsyncSession, *, user_id: str | None = None, tx: TxMeta | None = None
    ) -> None:
        """Who writes in ``session``, and the client's ``tx`` to echo: the activities it
        records from now on (until commit) carry them."""
        set_context(session, user_id=user_id, tx=tx)

    def record(
        self,
        session: Session,
        entity: str | EntityType,
        action: Action,
        row: Any,
        *,
        changed_keys: list[str] | None = None,
        data: object | None = None,
        user_id: str | None = None,
        tx: TxMeta | None = None,
    ) -> int:
        """Record one change of ``row`` in ``session``'s transaction, explicitly (a Core
        write, or a model declared with ``auto=False``); returns the activity ID."""
        return record_change(
            session,
            self._entity(entity),
            action,
            row,
            hook=self._hook,
            changed_keys=changed_keys,
            data=data,
            user_id=user_id,
            tx=tx,
        )

    async def arecord(
        self, session: AsyncSession, entity: str | EntityType, action: Action, row: Any, **kw: Any
    ) -> int:
        """:meth:`record` for an ``AsyncSession``."""
        return await session.run_sync(lambda s: self.record(s, entity, action, row, **kw))

    async def write(self, work: Callable[[WriteTransaction], T]) -> T:
        """Run ``work(tx)`` (a plain function: no awaits) as one transaction on
        syncstream's own write path (SQLite's writer thread, group commit); record with
        ``tx.record(entity.activity(...))``."""
        return await self.runtime.writer.run(work)

    @property
    def engine(self) -> AsyncEngine:
        """The database's write engine (on SQLite: one connection, ``BEGIN IMMEDIATE``)."""
        return self.runtime.database.writer

    async def session(self) -> AsyncIterator[AsyncSession]:
        """A FastAPI dependency: an ``AsyncSession`` on the database's write engine."""
        async with AsyncSession(self.runtime.database.writer, expire_on_commit=False) as session:
            yield session

    async def created_by(
        self, entity: str | EntityType, user_id: str | None, organization_id: str | None, transaction_id: str
    ) -> str | None:
        """The ID of the entity a create with this ``transactionId`` made, if any: a
        repeated create answers with it instead of creating twice."""
        key = self._entity(entity).idempotency_key(user_id, organization_id, transaction_id)
        async with AsyncSession(self.runtime.database.reader) as session:
            return await log.find_by_idempotency_key(session, key)

    async def _committed(self, recorded: list[Any], newest: int) -> None:
        await self.runtime.writer.committed(recorded, newest)

    # -- streams ------------------------------------------------------------------------------

    async def organization_slice(
        self, caller: Caller, organization: str, project_id: str | None = None
    ) -> StreamSlice:
        """The stream slice of an organization (ID or slug), or of one of its projects,
        if ``caller`` may read it; a 404 problem otherwise."""
        return await organization_slice(self.runtime, caller, organization, project_id)

    def stream(
        self,
        path: str,
        *,
        types: Collection[str] | None = None,
        name: str | None = None,
        router: APIRouter | None = None,
        permission: Permission | None = None,
        **route: Any,
    ) -> Callable[[SliceEndpoint], SliceEndpoint]:
        """Serve a stream type at ``path`` (a GET route on :attr:`router`).

        The decorated function takes what any FastAPI endpoint takes and returns the
        :class:`StreamSlice` the request may open (or raises a problem). Everything
        else (JSON page or SSE, catch-up, membership snapshot, revocation, the
        permission function) comes with it. ``types`` defaults to every declared type
        of the slice's kind; ``name`` labels metrics and logs. The route goes on
        ``router`` if given (without a prefix: ``path`` is the stream marker's), else on
        :attr:`router`; other keywords go to ``add_api_route`` (``summary``, ``tags``, ...).
        ``permission`` is this stream's own read rule, on top of the application's.
        """

        def decorate(fn: SliceEndpoint) -> SliceEndpoint:
            stream_name = name or fn.__name__
            hints = get_type_hints(fn, include_extras=True)
            signature = inspect.signature(fn)
            params = [
                p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
            ]
            params.append(
                inspect.Parameter("syncstream_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            )

            async def open_where(request: Request, kwargs: dict[str, Any]) -> Response:
                where = await fn(**kwargs)
                kinds = types if types is not None else self.types(public=where.organization_id is None)
                rule = both(self.permission, permission)
                return await open_slice(
                    self.runtime, request, where, types=kinds, stream=stream_name, permission=rule
                )

            async def endpoint(**kwargs: Any) -> Response:
                request: Request = kwargs.pop("syncstream_request")
                return await open_where(request, kwargs)

            endpoint.__signature__ = signature.replace(parameters=params, return_annotation=Response)  # type: ignore[attr-defined]
            endpoint.__name__ = fn.__name__
            endpoint.__doc__ = fn.__doc__
            # The OpenAPI description: the parameters the stream parses by hand, both 200s and
            # its problems. With a caller it is an organization's stream, else a public one.
            authenticated = any(_is_caller(hint) for hint in hints.values())
            for key, value in stream_route_docs(types or (), authenticated=authenticated).items():
                route.setdefault(key, value)
            target = router or self.router
            target.add_api_route(path, endpoint, methods=["GET"], **route)
            if types is None:  # documented with the types declared, as they are declared
                self._documented.append((target.routes[-1], not authenticated))
                self._document_types()
            self.stream_paths.add(path)
            if (hot := hot_stream(path, params[:-1], open_where)) is not None:
                self.hot_streams.append(hot)
            return fn

        return decorate

    def _organization_stream(self, path: str) -> None:
        async def org_stream(org: str, caller: CallerDep) -> StreamSlice:
            return await self.organization_slice(caller, org)

        self.stream(
            path,
            name="org",
            summary="The organization's sync stream (JSON page or SSE)",
            description=ORG_STREAM_DESCRIPTION,
        )(org_stream)

    # -- lifetime -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI | None = None) -> AsyncIterator[None]:
        """Start (migrate syncstream's tables, install or remove the change-capture triggers,
        follow the log, ping idle streams) and stop."""
        runtime = self.runtime
        await upgrade(runtime.database)
        await apply_settings(self.runtime.database, self.settings, list(self.entities.values()))
        await runtime.tailer.start()
        # What start-up made (modules, routes, the schema) lives as long as the process:
        # moved out of the cyclic collector's way, every later collection is cheaper.
        gc.freeze()
        pinger = asyncio.create_task(
            keep_alive(runtime.subscribers.get_all, self.settings.keepalive_seconds),
            name="syncstream-keep-alive",
        )
        close_streams_on_exit_signal(runtime)
        logger.info(
            "syncstream ready: database=%s bus=%s",
            runtime.database.dialect,
            redact_url(self.settings.bus_url),
        )
        try:
            yield
        finally:
            pinger.cancel()
            close_streams(runtime)
            await runtime.sessions.flush()
            await runtime.tailer.stop()
            await runtime.database.dispose()

    async def capture(self) -> None:
        """With ``SYNCSTREAM_CAPTURE=on``, (re)install the change-capture triggers of every
        declared type whose table exists (docs/capture.md): call it after creating tables
        inside the app's lifespan. :meth:`lifespan` does it at start already; with capture
        off it removes them."""
        await apply_settings(self.runtime.database, self.settings, list(self.entities.values()))

    def install(self, app: FastAPI, *, identity: bool = True, middleware: bool = True) -> None:
        """Mount into an existing app: the stream routes, syncstream's error answers,
        the runtime, the host's caller dependency; with ``identity``, syncstream's own
        users, organizations, projects and memberships routes. The app's lifespan must
        enter :meth:`lifespan` (``FastAPI(lifespan=sync.lifespan)``)."""
        from syncstream.errors import install_error_handlers
        from syncstream.modules.memberships.routes import router as memberships
        from syncstream.modules.organizations.routes import router as organizations
        from syncstream.modules.users.rate_limit import SignInLimiter, SignUpLimiter
        from syncstream.modules.users.routes import router as users
        from syncstream.modules.users.sessions import router as sessions

        app.state.runtime = self.runtime
        install_error_handlers(app)
        app.include_router(self.router)
        if identity:
            settings = self.settings
            limiter = SignInLimiter(settings.sign_in_attempts, settings.sign_in_window_seconds)
            app.state.sign_in_limiter = limiter
            sign_ups = SignUpLimiter(settings.sign_ups_per_address, settings.sign_up_window_seconds)
            app.state.sign_up_limiter = sign_ups
            for router in (users, sessions, organizations, memberships):
                app.include_router(router)
        if self.caller_dependency is not None:
            app.dependency_overrides[current_caller] = self.caller_dependency
        if middleware:
            # Outermost, outside even Starlette's error middleware (which wraps ``send``):
            # an open stream then reaches the server's own ``send`` and its transport, for
            # direct writes (see stream/direct.py), as in the standalone server.
            build = app.build_middleware_stack

            open_wait = self.settings.stream_open_wait_seconds

            def build_with_streams() -> ASGIApp:
                return StreamMiddleware(build(), open_wait_seconds=open_wait, is_stream=self.stream_paths)

            app.build_middleware_stack = build_with_streams  # type: ignore[method-assign]


def _is_caller(hint: Any) -> bool:
    """Whether an endpoint parameter's annotation is (an ``Annotated``) :class:`Caller`."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    return isinstance(hint, type) and issubclass(hint, Caller)


def _apply(apply: Callable[[AccessIndex, Activity], None], access: AccessIndex, activity: Activity) -> None:
    apply(access, activity)


ORG_STREAM_DESCRIPTION = """
The organization's changes that you may read. Without `live`, one JSON page of
catch-up; with `live=sse`, a Server-Sent Events stream: every missed change, one
`offset` frame, then live changes and keep-alive pings. `Last-Event-ID` overrides `offset`.
"""
