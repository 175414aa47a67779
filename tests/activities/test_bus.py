"""The in-process activity bus: on / once / off / on_any / emit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from syncstream.activities.bus import ActivityBus, UnknownEventError
from syncstream.activities.model import Activity
from syncstream.app import create_app
from syncstream.config import Settings


def activity(activity_id: int = 1, event: str = "attachment.created") -> Activity:
    entity_type, verb = event.split(".")
    return Activity(
        id=activity_id,
        type=event,
        action={"created": "create", "updated": "update", "deleted": "delete"}.get(verb, "delete"),
        entity_type=entity_type,
        entity_id=f"e{activity_id}",
        organization_id="org_1",
        project_id=None,
        user_id="usr_1",
        changed_keys=None,
        tx=None,
        data=None,
        created_iso="2026-01-01T00:00:00.000Z",
    )


EVENTS = frozenset(
    {f"{t}.{v}" for t in ("attachment", "page", "membership") for v in ("created", "updated", "deleted")}
    | {"organization.deleted", "session.revoked"}
)


def test_the_server_knows_every_declared_change_and_identity_event(tmp_path: Path) -> None:
    bus = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'bus.db'}")).state.runtime.bus
    assert all(bus.knows(event) for event in EVENTS)
    assert not bus.knows("task.created")


def test_handlers_run_in_registration_order_for_their_event_only() -> None:
    bus = ActivityBus(EVENTS)
    calls: list[tuple[str, int]] = []
    bus.on("attachment.created", lambda a: calls.append(("first", a.id)))
    bus.on("attachment.created", lambda a: calls.append(("second", a.id)))
    bus.on("page.created", lambda a: calls.append(("page", a.id)))
    bus.emit("attachment.created", activity(1))
    bus.emit("attachment.created", activity(2))
    assert calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]


def test_on_any_hears_every_event_after_the_named_handlers() -> None:
    bus = ActivityBus(EVENTS)
    calls: list[str] = []
    remove = bus.on_any(lambda a: calls.append(f"any:{a.type}"))
    bus.on("page.updated", lambda a: calls.append("named"))
    bus.emit("page.updated", activity(1, "page.updated"))
    bus.emit("membership.deleted", activity(2, "membership.deleted"))
    assert calls == ["named", "any:page.updated", "any:membership.deleted"]
    remove()
    remove()  # removing twice is harmless
    bus.emit("page.updated", activity(3, "page.updated"))
    assert calls[-1] == "named"
    assert bus.listener_count() == 1


def test_once_runs_a_single_time() -> None:
    bus = ActivityBus(EVENTS)
    seen: list[int] = []
    bus.once("attachment.deleted", lambda a: seen.append(a.id))
    for n in (1, 2, 3):
        bus.emit("attachment.deleted", activity(n, "attachment.deleted"))
    assert seen == [1]
    assert bus.listener_count("attachment.deleted") == 0


def test_off_and_the_returned_remover_detach_a_handler() -> None:
    bus = ActivityBus(EVENTS)
    seen: list[str] = []

    def a(_: Activity) -> None:
        seen.append("a")

    def b(_: Activity) -> None:
        seen.append("b")

    bus.on("attachment.updated", a)
    remove_b = bus.on("attachment.updated", b)
    bus.off("attachment.updated", a)
    bus.emit("attachment.updated", activity(1, "attachment.updated"))
    remove_b()
    bus.emit("attachment.updated", activity(2, "attachment.updated"))
    bus.off("attachment.updated", a)  # not registered: nothing happens
    assert seen == ["b"]
    assert bus.listener_count() == 0


@pytest.mark.parametrize("event", ["attachment.exploded", "", "attachment", "user.created"])
def test_unknown_event_names_are_rejected(event: str) -> None:
    bus = ActivityBus(EVENTS)
    with pytest.raises(UnknownEventError, match="unknown event"):
        bus.on(event, lambda a: None)
    with pytest.raises(UnknownEventError):
        bus.once(event, lambda a: None)
    with pytest.raises(UnknownEventError):
        bus.emit(event, activity())
    assert bus.listener_count() == 0


def test_a_failing_handler_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = ActivityBus(EVENTS)
    seen: list[str] = []

    def broken(_: Activity) -> None:
        raise RuntimeError("boom")

    bus.on("attachment.created", lambda a: seen.append("before"))
    bus.on("attachment.created", broken)
    bus.on("attachment.created", lambda a: seen.append("after"))
    bus.on_any(lambda a: seen.append("any"))
    with caplog.at_level(logging.ERROR, logger="syncstream.bus"):
        bus.emit("attachment.created", activity(7))
    assert seen == ["before", "after", "any"]
    [record] = [r for r in caplog.records if r.name == "syncstream.bus"]
    assert "attachment.created" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_async_handlers_run() -> None:
    bus = ActivityBus(EVENTS)
    done = asyncio.Event()
    seen: list[int] = []

    async def handler(a: Activity) -> None:
        seen.append(a.id)
        done.set()

    bus.on("page.deleted", handler)
    bus.emit("page.deleted", activity(5, "page.deleted"))
    await asyncio.wait_for(done.wait(), 5)
    assert seen == [5]


async def test_a_failing_async_handler_is_logged() -> None:
    """Logged when the task fails, which no sleep could time: a handler tells us."""
    bus = ActivityBus(EVENTS)
    ran = asyncio.Event()
    failed = asyncio.get_running_loop().create_future()

    async def broken(_: Activity) -> None:
        raise ValueError("async boom")

    async def fine(_: Activity) -> None:
        ran.set()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not failed.done():
                failed.set_result(record)

    capture = Capture(logging.ERROR)
    logger = logging.getLogger("syncstream.bus")
    logger.addHandler(capture)
    try:
        bus.on("page.created", broken)
        bus.on("page.created", fine)
        bus.emit("page.created", activity(9, "page.created"))
        record: logging.LogRecord = await asyncio.wait_for(failed, 5)
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        logger.removeHandler(capture)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "#9" in record.getMessage()
