"""How the client reacts to what the server refuses: must_refetch, forbidden, 401, 404, slow consumers."""

from __future__ import annotations

import pytest

from client.support import (
    Org,
    Reader,
    RequestLog,
    ScriptedServer,
    change,
    changes,
    error,
    make_org,
    of_type,
    offset,
    problem,
    sse,
)
from harness import Api
from syncstream.client import (
    Backoff,
    CaughtUp,
    Disconnected,
    Forbidden,
    MemoryCursorStore,
    MustRefetch,
    NotFound,
    RefetchLoopError,
    StreamMessage,
    StreamUnavailable,
    SyncClient,
    Unauthorized,
)

FAST = Backoff(initial=0.02, maximum=0.2)
BEYOND = "999999999999"


async def test_must_refetch_calls_back_once_then_restarts_from_the_beginning(org: Org) -> None:
    for name in ("a", "b"):
        await org.create(name)
    resets: list[MustRefetch] = []
    store = MemoryCursorStore()
    log = RequestLog()
    async with (
        log.client() as http,
        SyncClient(
            org.server_url,
            org.owner.token,
            http=http,
            cursor_store=store,
            on_must_refetch=resets.append,
            backoff=FAST,
        ) as client,
    ):
        subscription = client.org_stream(org.slug)
        # A cursor from another history, as after the server's database was restored from an old backup.
        await store.save(subscription.key, BEYOND)
        async with subscription:
            received = [(await anext(subscription)).activity_id for _ in range(2)]
            # The first message is processed (the second was asked for), the second is not yet.
            assert store.cursors[subscription.key] == received[0]
        # Leaving the block cleanly means the second one was processed too.
        assert store.cursors[subscription.key] == received[1]

    assert received == await org.activity_ids()
    assert len(resets) == 1
    assert resets[0].cursor == BEYOND
    assert resets[0].problem is not None
    assert resets[0].problem.type == "must_refetch"
    first, second = log.streams
    assert first.headers["Last-Event-ID"] == BEYOND
    assert "Last-Event-ID" not in second.headers
    assert second.url.params["offset"] == "-1"


async def test_must_refetch_without_a_callback_raises_and_a_new_stream_starts_over(org: Org) -> None:
    await org.create("a")
    store = MemoryCursorStore()
    async with SyncClient(org.server_url, org.owner.token, cursor_store=store, backoff=FAST) as client:
        subscription = client.org_stream(org.slug)
        await store.save(subscription.key, BEYOND)
        with pytest.raises(MustRefetch) as raised:
            await anext(subscription)
        await subscription.aclose()
        assert raised.value.cursor == BEYOND
        assert subscription.key not in store.cursors  # the useless cursor is gone

        # The application dropped its cache; opening the stream again reads everything.
        async with client.org_stream(org.slug) as again:
            message = await anext(again)
    assert [message.activity_id] == await org.activity_ids()


async def test_a_second_must_refetch_right_after_a_reset_is_an_error_not_a_loop() -> None:
    resets: list[MustRefetch] = []
    script = [problem(409, "must_refetch", "cursor beyond newest"), problem(409, "must_refetch", "again")]
    async with ScriptedServer(script).running() as scripted:
        store = MemoryCursorStore()
        async with SyncClient(
            scripted.url, "t", cursor_store=store, on_must_refetch=resets.append, backoff=FAST
        ) as client:
            subscription = client.org_stream("acme")
            await store.save(subscription.key, "7")
            with pytest.raises(RefetchLoopError) as raised:
                async for _ in subscription:
                    pass
    assert len(resets) == 1
    assert raised.value.problem is not None
    assert raised.value.problem.detail == "again"
    first, second = scripted.requests
    assert first.headers["last-event-id"] == "7"
    assert "last-event-id" not in second.headers
    assert second.url.params["offset"] == "-1"


async def test_must_refetch_for_a_request_from_the_beginning_is_an_error() -> None:
    async with ScriptedServer([problem(409, "must_refetch")]).running() as scripted:
        resets: list[MustRefetch] = []
        async with SyncClient(scripted.url, on_must_refetch=resets.append, backoff=FAST) as client:
            with pytest.raises(RefetchLoopError):
                await anext(client.pages_stream())
    assert resets == []


async def test_a_forbidden_frame_stops_the_stream(org: Org) -> None:
    await org.create("a")
    api = Api(org.server_url)
    member = await api.sign_up()
    owner = org.owner.api()
    membership = await owner.ok(
        "POST", f"/organizations/{org.slug}/memberships", 201, json={"email": member.email, "role": "member"}
    )
    async with SyncClient(org.server_url, member.token, backoff=FAST) as client:
        subscription = client.follow(client.org_stream_url(org.slug))
        async with Reader(subscription) as reader:
            await reader.until(of_type(CaughtUp))
            await owner.ok("DELETE", f"/organizations/{org.slug}/memberships/{membership['id']}", 204)
            ended = await reader.until(lambda item: isinstance(item, Exception))
    await owner.aclose()
    await api.aclose()
    failure = ended[-1]
    assert isinstance(failure, Forbidden)
    assert failure.problem is not None
    assert failure.problem.type == "forbidden"
    assert not any(isinstance(item, Disconnected) for item in ended), "a forbidden stream must not resume"


async def test_signing_out_ends_the_stream_with_forbidden(org: Org) -> None:
    async with SyncClient(org.server_url, org.owner.token, backoff=FAST) as client:
        subscription = client.follow(client.org_stream_url(org.slug))
        async with Reader(subscription) as reader:
            await reader.until(of_type(CaughtUp))
            api = org.owner.api()
            await api.ok("POST", "/auth/sign-out", 204)
            await api.aclose()
            ended = await reader.until(lambda item: isinstance(item, Exception))
    assert isinstance(ended[-1], Forbidden)


async def test_a_bad_token_raises_unauthorized_without_retrying(org: Org) -> None:
    log = RequestLog()
    async with (
        log.client() as http,
        SyncClient(org.server_url, "not-a-token", http=http, backoff=FAST) as client,
    ):
        with pytest.raises(Unauthorized) as raised:
            await anext(client.org_stream(org.slug))
    assert raised.value.status == 401
    assert len(log.requests) == 1


async def test_a_non_member_gets_not_found(org: Org) -> None:
    stranger = await make_org(org.server_url)
    async with SyncClient(org.server_url, stranger.owner.token, backoff=FAST) as client:
        with pytest.raises(NotFound):
            await anext(client.org_stream(org.slug))


async def test_slow_consumer_resumes_after_the_last_change_and_drops_replays() -> None:
    script = [
        sse("retry: 10\n\n", change(1), change(2), error("slow_consumer", 409, "read faster")),
        # The resumed stream replays 2 (as a misbehaving proxy could): the client must not repeat it.
        sse("retry: 10\n\n", change(2), change(3), offset(3)),
    ]
    async with (
        ScriptedServer(script).running() as scripted,
        SyncClient(scripted.url, "t", backoff=FAST) as client,
        Reader(client.follow(client.org_stream_url("acme"))) as reader,
    ):
        events = await reader.until(of_type(CaughtUp))
    assert changes(events) == ["1", "2", "3"]
    disconnected = [e for e in events if isinstance(e, Disconnected)]
    assert [d.reason for d in disconnected] == ["slow_consumer"]
    assert disconnected[0].problem is not None
    assert disconnected[0].problem.detail == "read faster"
    assert scripted.requests[1].headers["last-event-id"] == "2"


async def test_unavailable_waits_what_retry_after_asks() -> None:
    script = [
        problem(503, "unavailable", "database down", headers={"retry-after": "3"}),
        sse(change(1), offset(1)),
    ]
    async with (
        ScriptedServer(script).running() as scripted,
        SyncClient(scripted.url, backoff=Backoff(initial=0.01, maximum=10)) as client,
        Reader(client.follow(client.pages_stream_url())) as reader,
    ):
        disconnected = (await reader.until(of_type(Disconnected)))[-1]
        # Asked to wait 3 s; skip the wait rather than spend it (reconnect() cuts any backoff).
        reader.subscription.reconnect()
        events = await reader.until(of_type(CaughtUp))
    assert disconnected.retry_in == 3.0
    assert disconnected.problem is not None
    assert disconnected.problem.type == "unavailable"
    assert changes(events) == ["1"]


async def test_gives_up_after_max_attempts() -> None:
    script = [problem(503, "unavailable"), problem(502, "bad_gateway")]
    async with ScriptedServer(script).running() as scripted:
        backoff = Backoff(initial=0.001, maximum=0.01, max_attempts=1)
        async with SyncClient(scripted.url, backoff=backoff) as client:
            with pytest.raises(StreamUnavailable):
                async for _ in client.pages_stream():
                    pass
    assert len(scripted.requests) == 2


async def test_unknown_events_are_skipped() -> None:
    script = [sse("event: something-new\ndata: {}\n\n", change(5), offset(5))]
    async with (
        ScriptedServer(script).running() as scripted,
        SyncClient(scripted.url, backoff=FAST) as client,
        client.pages_stream() as stream,
    ):
        message: StreamMessage = await anext(stream)
    assert message.activity_id == "5"
