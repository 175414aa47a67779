"""A blocking client for scripts, notebooks and threads: :class:`syncstream.client.SyncClient` without
``async``.

::

    from syncstream.client.sync import BlockingClient

    with BlockingClient("http://127.0.0.1:8000") as client:
        client.sign_in("ada@example.com", "correct-horse")
        client.create("organizations/acme/attachments", {"name": "plan.pdf"})
        with client.org_collection("acme") as attachments:   # returns once the history is read
            print(attachments.snapshot())
        for message in client.org_stream("acme"):            # blocks; resumes after drops by itself
            print(message.action, message.entity_id)

It runs an event loop in a daemon thread of its own and hands each call to it, so it works from any
thread, including where another event loop is running (a notebook). Callbacks (``on_change``,
``on_connected``, …) run in that thread: keep them short, or hand work to your own thread. Every blocking
call takes an optional ``timeout`` (seconds); Ctrl-C interrupts a blocked call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from syncstream.client.collection import ChangeCallback, LiveCollection, ResetCallback
from syncstream.client.core import SyncClient
from syncstream.client.subscription import Subscription
from syncstream.stream.messages import StreamMessage, TxInfo

__all__ = ["BlockingClient", "BlockingCollection", "BlockingSubscription"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running for ever in a daemon thread, and a blocking way to run coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="syncstream-client", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None
        except BaseException:  # KeyboardInterrupt: the coroutine must not run on unseen
            future.cancel()
            raise

    def call(self, function: Callable[[], T], timeout: float | None = None) -> T:
        """Run a plain function in the loop's thread (where the client's state changes)."""

        async def call() -> T:
            return function()

        return self.run(call(), timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class BlockingSubscription(Generic[T]):
    """A followed stream as a blocking iterator (and context manager, which closes the connection)."""

    def __init__(self, loop: _LoopThread, subscription: Subscription[T], timeout: float | None) -> None:
        self._loop = loop
        self._subscription = subscription
        self._timeout = timeout

    @property
    def cursor(self) -> str | None:
        return self._subscription.cursor

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            return self._loop.run(self._subscription.__anext__(), self._timeout)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._loop.run(self._subscription.aclose())

    def __enter__(self) -> BlockingSubscription[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.run(self._subscription.__aexit__(exc_type, exc, tb))


class BlockingCollection:
    """A :class:`~syncstream.client.LiveCollection` read from another thread: each read is a consistent
    copy taken in the client's thread, where the collection changes."""

    def __init__(self, loop: _LoopThread, collection: LiveCollection) -> None:
        self._loop = loop
        self.collection = collection

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every entity, by ID, as it stands now."""
        return self._loop.call(self.collection.snapshot)

    def get(self, entity_id: str) -> dict[str, Any] | None:
        value = self._loop.call(lambda: self.collection.get(entity_id))
        return dict(value) if value is not None else None

    def __len__(self) -> int:
        return self._loop.call(lambda: len(self.collection))

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """See :meth:`LiveCollection.on_change`; ``callback`` runs in the client's thread."""
        return self._loop.call(lambda: self.collection.on_change(callback))

    def on_reset(self, callback: ResetCallback) -> Callable[[], None]:
        return self._loop.call(lambda: self.collection.on_reset(callback))

    def wait_for(
        self, predicate: Callable[[LiveCollection], bool], timeout: float | None = None
    ) -> BlockingCollection:
        """Block until ``predicate(collection)`` holds (evaluated in the client's thread)."""
        self._loop.run(self.collection.wait_for(predicate), timeout)
        return self

    def close(self) -> None:
        self._loop.run(self.collection.aclose())

    def __enter__(self) -> BlockingCollection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlockingClient:
    """:class:`~syncstream.client.SyncClient`, blocking. Takes the same arguments, plus ``timeout``: the
    default bound (seconds) of every blocking call except reading a stream, which waits for ever unless
    given its own."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0, **options: Any):
        self.timeout = timeout
        self._loop = _LoopThread()

        async def make() -> SyncClient:
            return SyncClient(base_url, token, **options)

        #: The async client underneath (use it only through the loop's thread).
        self.client = self._loop.run(make(), timeout)

    @property
    def token(self) -> str | None:
        return self.client.token

    @property
    def source_id(self) -> str:
        return self.client.source_id

    def close(self) -> None:
        """Close the connections and stop the client's thread."""
        try:
            self._loop.run(self.client.aclose(), self.timeout)
        finally:
            self._loop.stop()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- accounts and writes ----------------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        return self._loop.run(self.client.sign_in(email, password), self.timeout)

    def sign_up(self, email: str, password: str, name: str) -> dict[str, Any]:
        return self._loop.run(self.client.sign_up(email, password, name), self.timeout)

    def sign_out(self) -> None:
        self._loop.run(self.client.sign_out(), self.timeout)

    def create(self, path: str, fields: dict[str, Any], *, tx: TxInfo | None = None) -> dict[str, Any]:
        return self._loop.run(self.client.create(path, fields, tx=tx), self.timeout)

    def update(
        self, path: str, fields: dict[str, Any], *, changed_field: str | None = None, tx: TxInfo | None = None
    ) -> dict[str, Any]:
        return self._loop.run(
            self.client.update(path, fields, changed_field=changed_field, tx=tx), self.timeout
        )

    def delete(self, path: str) -> None:
        self._loop.run(self.client.delete(path), self.timeout)

    def is_own(self, message: StreamMessage) -> bool:
        return self.client.is_own(message)

    # -- streams and collections ------------------------------------------------------------------------

    def org_stream(
        self,
        org: str,
        *,
        entity_types: Iterable[str] | None = None,
        offset: str | int | None = None,
        timeout: float | None = None,
    ) -> BlockingSubscription[StreamMessage]:
        """Every change of the organization the caller may read, blocking; ``timeout`` bounds each wait
        for the next one (default: none)."""
        subscription = self._loop.call(
            lambda: self.client.org_stream(org, entity_types=entity_types, offset=offset)
        )
        return BlockingSubscription(self._loop, subscription, timeout)

    def pages_stream(
        self, *, offset: str | int | None = None, timeout: float | None = None
    ) -> BlockingSubscription[StreamMessage]:
        subscription = self._loop.call(lambda: self.client.pages_stream(offset=offset))
        return BlockingSubscription(self._loop, subscription, timeout)

    def org_collection(
        self, org: str, *, entity_types: Iterable[str] | None = None, timeout: float | None = None
    ) -> BlockingCollection:
        """The organization's entities, live, returned once the history has been read (within
        ``timeout``, default the client's)."""
        return self._started(lambda: self.client.org_collection(org, entity_types=entity_types), timeout)

    def pages_collection(self, *, timeout: float | None = None) -> BlockingCollection:
        return self._started(self.client.pages_collection, timeout)

    def _started(self, make: Callable[[], LiveCollection], timeout: float | None) -> BlockingCollection:
        async def start() -> LiveCollection:
            collection = make()
            collection.start()
            try:
                return await collection.ready()
            except BaseException:
                await collection.aclose()
                raise

        collection = self._loop.run(start(), timeout if timeout is not None else self.timeout)
        return BlockingCollection(self._loop, collection)
