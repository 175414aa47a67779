"""The public pages stream: every page change, to anyone, with ``tx`` always null."""

from __future__ import annotations

from syncstream.activities.model import Activity, render_message
from syncstream.permissions import PUBLIC_TYPES
from syncstream.stream.helpers import change_frame, write_change
from syncstream.stream.manager import SubscriberManager
from syncstream.stream.subscriber import Subscriber

PAGES_INDEX_KEY = "public:page"


def page_index_key() -> str:
    return PAGES_INDEX_KEY


class PageStreamSubscriber(Subscriber):
    __slots__ = ("entity_types",)

    def __init__(self, *, entity_types: frozenset[str] | None, cursor: int, max_queued: int) -> None:
        super().__init__(index_key=page_index_key(), cursor=cursor, max_queued=max_queued)
        self.entity_types = entity_types if entity_types is not None else PUBLIC_TYPES


def should_receive_page_event(sub: PageStreamSubscriber, activity: Activity) -> bool:
    return activity.entity_type in sub.entity_types


def send_to_page_subscriber(sub: PageStreamSubscriber, activity_id: int, frame: bytes) -> None:
    write_change(sub, activity_id, frame)


def route_to_page_subscribers(manager: SubscriberManager[Subscriber], activity: Activity) -> int:
    candidates = manager.get_by_index(page_index_key())
    if not candidates:
        return 0
    frame = change_frame(activity.id, render_message(activity))
    sent = 0
    for sub in candidates:
        if isinstance(sub, PageStreamSubscriber) and should_receive_page_event(sub, activity):
            send_to_page_subscriber(sub, activity.id, frame)
            sent += 1
    return sent
