"""Prometheus metrics, one registry per application (so tests can run several apps).

The series and a dashboard built on them are described in docs/operations.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

#: Latency buckets of HTTP requests: a create takes ~1 ms, a stream opens in a few.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, subscriber_count: Callable[[], int]) -> None:
        # A ``_created`` series per counter and histogram doubles what a scrape carries
        # for a timestamp no dashboard reads. (prometheus_client's switch is process-wide.)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = CollectorRegistry()
        # CPU seconds, resident and virtual memory, open and maximum file descriptors, start time.
        ProcessCollector(registry=self.registry)
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

        self.http = HttpStats()
        self.registry.register(self.http)
        self.catchup_activities = Counter(
            "syncstream_catchup_activities",
            "Activities replayed to catching-up clients (SSE catch-up and JSON pages).",
            ["mode"],
            registry=self.registry,
        )
        self.catchup_pages = Counter(
            "syncstream_catchup_pages",
            "Pages of the activity log read for catch-up (SSE catch-up pages and JSON pages).",
            ["mode"],
            registry=self.registry,
        )
        self.catchup_bytes = Counter(
            "syncstream_catchup_bytes",
            "Bytes of catch-up sent: change frames (SSE) or page bodies (JSON).",
            ["mode"],
            registry=self.registry,
        )

    def watch_password_hashing(self, running: Callable[[], int], peak: Callable[[], int]) -> None:
        Gauge(
            "syncstream_password_hashes_running",
            "Password hashes (sign-up, sign-in) being computed in this process.",
            registry=self.registry,
        ).set_function(running)
        Gauge(
            "syncstream_password_hashes_peak",
            "The most password hashes this process ever computed at once (bounded by its concurrency).",
            registry=self.registry,
        ).set_function(peak)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpStats(Collector):
    """``syncstream_http_requests_total`` and ``syncstream_http_request_duration_seconds``
    by method, route template and status.

    Kept as plain numbers and turned into metric families only when scraped: the client
    library's labelled counter and histogram take a lock per update and scan their
    buckets, which made them a few microseconds of every request; this costs well under
    one. Every request is recorded from the event loop's thread, as is every scrape.
    """

    def __init__(self) -> None:
        #: (method, route, status) → [count, sum of seconds, per-bucket counts (+Inf last)]
        self._series: dict[tuple[str, str, str], list[Any]] = {}

    def record(self, method: str, route: str, status: str, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = [0, 0.0, [0] * (len(HTTP_BUCKETS) + 1)]
        series[0] += 1
        series[1] += seconds
        series[2][bisect_left(HTTP_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "syncstream_http_requests",
            "HTTP requests answered, by method, route template and status (a stream counts once, at open).",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "syncstream_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: to open it, before catch-up), "
            "by method, route and status.",
            labels=labels,
        )
        bounds = [*(repr(bound) for bound in HTTP_BUCKETS), "+Inf"]
        for key, (count, total, buckets) in list(self._series.items()):
            requests.add_metric(key, count)
            cumulative, running = [], 0
            for bound, in_bucket in zip(bounds, buckets, strict=True):
                running += in_bucket
                cumulative.append((bound, running))
            duration.add_metric(key, cumulative, total)
        yield requests
        yield duration
