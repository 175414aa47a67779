"""Prometheus metrics, one registry per application (so tests can run several apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, subscriber_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.subscribers = Gauge(
            "syncstream_subscribers", "Open stream subscribers in this process.", registry=self.registry
        )
        self.subscribers.set_function(subscriber_count)
        self.activities_routed = Counter(
            "syncstream_activities_routed", "Activities routed to stream subscribers.", registry=self.registry
        )
        self.messages_sent = Counter(
            "syncstream_messages_sent",
            "Change messages handed to subscribers (live and catch-up).",
            registry=self.registry,
        )
        self.slow_consumer_disconnects = Counter(
            "syncstream_slow_consumer_disconnects",
            "Subscribers cut because their outbox overflowed.",
            registry=self.registry,
        )
        self.connections = Counter(
            "syncstream_stream_connections", "Stream connections opened.", ["stream"], registry=self.registry
        )
        self.routing_seconds = Histogram(
            "syncstream_routing_seconds",
            "Time to route one activity to every matching subscriber's outbox.",
            buckets=(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1),
            registry=self.registry,
        )
        self.commit_to_route_seconds = Histogram(
            "syncstream_commit_to_route_seconds",
            "Delay from an activity's write (its createdAt) to its routing in this process.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
