"""``SyncClient``: the typed, resuming Python client of syncstream's two streams."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Final, Literal
from urllib.parse import quote

import httpx
import pydantic

from syncstream.client.backoff import Backoff
from syncstream.client.collection import LiveCollection
from syncstream.client.cursors import CursorStore
from syncstream.client.errors import ProblemError, ProtocolError
from syncstream.client.events import StreamEvent
from syncstream.client.follow import ConnectedCallback, DisconnectedCallback, Follower
from syncstream.client.position import MustRefetchCallback
from syncstream.client.refusals import problem_from_response
from syncstream.client.subscription import Subscription, only_changes
from syncstream.client.wire import Transient, raise_for_refusal
from syncstream.client.writes import WritesMixin, new_source_id
from syncstream.stream.messages import JsonPage, StreamMessage

__all__ = ["DEFAULT_READ_TIMEOUT", "SyncClient"]

#: Longer than three of the server's default 30 s keep-alive pings: a connection silent for that long is
#: dead (a half-open TCP connection never errors by itself), so the client drops it and resumes.
DEFAULT_READ_TIMEOUT: Final = 95.0
USER_AGENT: Final = "syncstream-client/1"


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: "Use the client's default" (distinct from ``None``, which means "none").
UNSET: Final = _Unset.UNSET


class SyncClient(WritesMixin):
    """An async client of the org stream and the public pages stream, and of the writes that feed them.

    ::

        async with SyncClient("https://sync.example.com", token) as client:
            async for message in client.org_stream("acme", entity_types=["attachment"]):
                cache.apply(message)

    The streams resume by themselves after drops, without losing or repeating a change (see
    :mod:`syncstream.client.follow` for the rules), and raise an exception only for what retrying cannot
    fix. Every stream method returns a :class:`~syncstream.client.Subscription`, which also works as
    ``async with`` to close the connection deterministically.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8000``; stream paths are appended to it.
        token: A bearer token (``POST /auth/sign-in``); needed for the org stream, not for pages. It may be
            changed later (``client.token = …``): the next (re)connection uses it.
        cursor_store: Where every stream of this client persists its cursor by default (one entry per
            stream URL and filter). ``None`` keeps cursors in memory only, for one iteration.
        on_must_refetch: Default callback for ``must_refetch``; see :class:`~syncstream.client.MustRefetch`.
        backoff: The reconnection policy.
        read_timeout: Seconds without a byte before a connection is considered dead.
        http: An ``httpx.AsyncClient`` to use (proxies, TLS, transports); the caller closes it. By default
            the client makes its own and closes it in :meth:`aclose`.
        headers: Extra headers for every request.
        source_id: This client's ``tx.sourceId`` on writes (default: a random one per client object).
        on_connected: Default callback of every stream when the server accepts a (re)connection.
        on_disconnected: Default callback of every stream when a connection ends or fails.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        cursor_store: CursorStore | None = None,
        on_must_refetch: MustRefetchCallback | None = None,
        backoff: Backoff | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        http: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        source_id: str | None = None,
        on_connected: ConnectedCallback | None = None,
        on_disconnected: DisconnectedCallback | None = None,
    ) -> None:
        self.source_id = source_id or new_source_id()
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.token = token
        self.cursor_store = cursor_store
        self.on_must_refetch = on_must_refetch
        self.backoff = backoff or Backoff()
        self.extra_headers = dict(headers or {})
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=read_timeout), headers={"User-Agent": USER_AGENT}
        )

    async def __aenter__(self) -> SyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it (open streams end)."""
        if self._owns_http:
            await self.http.aclose()

    # -- URLs ------------------------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> httpx.URL:
        """An absolute URL: ``path_or_url`` itself when absolute, else appended to ``base_url`` (keeping any
        path prefix of ``base_url``, e.g. behind a reverse proxy at ``/sync/``)."""
        url = httpx.URL(path_or_url)
        if url.is_absolute_url:
            return url
        return httpx.URL(str(self.base_url) + path_or_url.lstrip("/"))

    def org_stream_url(self, org: str, entity_types: Iterable[str] | None = None) -> httpx.URL:
        """``/organizations/{org}/sync/stream`` (``org`` is an ID or a slug)."""
        return self._with_types(self.url(f"organizations/{quote(org, safe='')}/sync/stream"), entity_types)

    def pages_stream_url(self, entity_types: Iterable[str] | None = None) -> httpx.URL:
        """``/pages/stream``, the public pages stream."""
        return self._with_types(self.url("pages/stream"), entity_types)

    @staticmethod
    def _with_types(url: httpx.URL, entity_types: Iterable[str] | None) -> httpx.URL:
        if entity_types is None:
            return url
        return url.copy_merge_params({"entityTypes": ",".join(entity_types)})

    def headers(self) -> dict[str, str]:
        """The headers of the next request (read at every reconnection, so a new token is picked up)."""
        headers = dict(self.extra_headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    # -- the lower-level API -----------------------------------------------------------------------------

    def follower(
        self,
        url: str | httpx.URL,
        *,
        offset: str | int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Follower:
        """A :class:`~syncstream.client.Follower` for any stream URL, with this client's settings."""
        return Follower(
            self.http,
            self.url(str(url)),
            headers=self.headers,
            offset=offset,
            cursor_store=self.cursor_store if cursor_store is UNSET else cursor_store,
            on_must_refetch=self.on_must_refetch if on_must_refetch is UNSET else on_must_refetch,
            backoff=self.backoff,
            on_connected=self.on_connected,
            on_disconnected=self.on_disconnected,
        )

    def follow(
        self,
        url: str | httpx.URL,
        *,
        offset: str | int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamEvent]:
        """Follow any stream URL in SSE mode, yielding every event: connection changes as well as changes.

        This is what the typed helpers and ``syncstream tail`` are built on; use it to show the connection
        state. ``offset`` is where to start when no cursor is stored (``"-1"``, ``"now"`` or an activity ID;
        default: the URL's own ``offset``, else ``"-1"``).
        """
        follower = self.follower(
            url, offset=offset, cursor_store=cursor_store, on_must_refetch=on_must_refetch
        )
        return Subscription(follower, follower.events())

    def changes(
        self,
        url: str | httpx.URL,
        *,
        offset: str | int | None = None,
        limit: int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamMessage]:
        """Page through any stream URL in JSON mode until ``hasMore`` is false (then the iteration ends).

        For clients that poll rather than hold a connection open (a cron job, a serverless function);
        with a ``cursor_store``, each run reads only what changed since the last one.
        """
        follower = self.follower(
            url, offset=offset, cursor_store=cursor_store, on_must_refetch=on_must_refetch
        )
        return Subscription(follower, follower.pages(limit))

    async def fetch_page(
        self, url: str | httpx.URL, *, offset: str | int = "-1", limit: int | None = None
    ) -> JsonPage:
        """One JSON-mode page, without retries or cursor handling (errors raise as in the streams)."""
        follower = self.follower(url, offset=offset, cursor_store=None, on_must_refetch=None)
        request = follower._request(sse=False, offset=str(offset), limit=limit)
        response = await self.http.send(request)
        if response.status_code != 200:
            try:
                problem = raise_for_refusal(response)
            except Transient as exc:
                raise ProblemError(str(exc.problem), problem=exc.problem, url=str(request.url)) from None
            await follower.position.must_refetch(problem, str(request.url))
            raise ProtocolError(f"unexpected answer {problem_from_response(response)}", url=str(request.url))
        try:
            return JsonPage.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise ProtocolError(f"a page does not match the contract: {exc}", url=str(request.url)) from exc

    # -- typed helpers ------------------------------------------------------------------------------------

    def org_stream(
        self,
        org: str,
        *,
        entity_types: Iterable[str] | None = None,
        offset: str | int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamMessage]:
        """Every change of the organization that the caller may read: all missed ones, then live, for ever."""
        follower = self.follower(
            self.org_stream_url(org, entity_types),
            offset=offset,
            cursor_store=cursor_store,
            on_must_refetch=on_must_refetch,
        )
        return Subscription(follower, only_changes(follower.events()))

    def pages_stream(
        self,
        *,
        entity_types: Iterable[str] | None = None,
        offset: str | int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamMessage]:
        """Every page change (public, no token needed): all missed ones, then live, for ever."""
        follower = self.follower(
            self.pages_stream_url(entity_types),
            offset=offset,
            cursor_store=cursor_store,
            on_must_refetch=on_must_refetch,
        )
        return Subscription(follower, only_changes(follower.events()))

    def org_changes(
        self,
        org: str,
        *,
        entity_types: Iterable[str] | None = None,
        offset: str | int | None = None,
        limit: int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamMessage]:
        """The organization's changes in JSON mode, paged with ``cursor`` until ``hasMore`` is false."""
        return self.changes(
            self.org_stream_url(org, entity_types),
            offset=offset,
            limit=limit,
            cursor_store=cursor_store,
            on_must_refetch=on_must_refetch,
        )

    def pages_changes(
        self,
        *,
        entity_types: Iterable[str] | None = None,
        offset: str | int | None = None,
        limit: int | None = None,
        cursor_store: CursorStore | Literal[_Unset.UNSET] | None = UNSET,
        on_must_refetch: MustRefetchCallback | Literal[_Unset.UNSET] | None = UNSET,
    ) -> Subscription[StreamMessage]:
        """The page changes in JSON mode, paged with ``cursor`` until ``hasMore`` is false."""
        return self.changes(
            self.pages_stream_url(entity_types),
            offset=offset,
            limit=limit,
            cursor_store=cursor_store,
            on_must_refetch=on_must_refetch,
        )

    # -- live collections ----------------------------------------------------------------------------------

    def collection(self, url: str | httpx.URL) -> LiveCollection:
        """A :class:`~syncstream.client.LiveCollection` of any stream URL (entity ID → entity, kept
        current); start it with ``async with``."""

        def subscribe(on_must_refetch: MustRefetchCallback) -> Subscription[StreamEvent]:
            # From -1 and without a stored cursor: the collection's content lives in memory only.
            return self.follow(url, offset="-1", cursor_store=None, on_must_refetch=on_must_refetch)

        return LiveCollection(subscribe, is_own=self.is_own)

    def org_collection(self, org: str, *, entity_types: Iterable[str] | None = None) -> LiveCollection:
        """The organization's entities the caller may read (e.g. ``entity_types=["attachment"]``), live."""
        return self.collection(self.org_stream_url(org, entity_types))

    def pages_collection(self) -> LiveCollection:
        """Every page, live (public)."""
        return self.collection(self.pages_stream_url())
