"""``/metrics`` of a real server: HTTP requests and latency by route template and status (a stream
once, at open), process metrics, catch-up counters, no ``_created`` series, the old names kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import Api, ServerProcess, Stream, unique
from syncstream.metrics import Metrics

ATTACHMENTS = "/organizations/{org}/attachments"


@pytest.fixture
async def metrics_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(database_url=f"sqlite:///{tmp_path / 'metrics.db'}")
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await api.request("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_http_requests_by_route_template_and_status(metrics_server: ServerProcess) -> None:
    api = Api(metrics_server.url)
    owner = await api.sign_up()
    slug = unique("m")
    await api.ok("POST", "/organizations", 201, json={"name": "M", "slug": slug}, token=owner.token)
    for index in range(3):
        await api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": f"{index}"}, token=owner.token
        )
    await api.ok("GET", f"/organizations/{slug}/attachments/{unique('nope')}", 404, token=owner.token)
    for _ in range(2):  # raw paths that must not become series of their own
        await api.ok("GET", f"/{unique('no-such-path')}", 404)
    await api.ok("PUT", "/pages", 405)
    samples = await scrape(api)
    await api.aclose()

    created = {"method": "POST", "route": ATTACHMENTS, "status": "201"}
    assert value(samples, "syncstream_http_requests_total", **created) == 3
    assert value(samples, "syncstream_http_request_duration_seconds_count", **created) == 3
    assert value(samples, "syncstream_http_request_duration_seconds_sum", **created) > 0
    missing = {"method": "GET", "route": ATTACHMENTS + "/{attachment_id}", "status": "404"}
    assert value(samples, "syncstream_http_requests_total", **missing) == 1
    assert (
        value(samples, "syncstream_http_requests_total", method="GET", route="unmatched", status="404") == 2
    )
    assert value(samples, "syncstream_http_requests_total", method="PUT", route="/pages", status="405") == 1
    routes = {
        dict(labels).get("route") for name, labels in samples if name == "syncstream_http_requests_total"
    }
    assert not any(route and ("no-such-path" in route or slug in route) for route in routes), routes


async def test_a_stream_counts_once_at_open_and_catch_up_is_measured(metrics_server: ServerProcess) -> None:
    admin_api = Api(metrics_server.url)
    owner = await admin_api.sign_up()
    slug = unique("c")
    await admin_api.ok("POST", "/organizations", 201, json={"name": "C", "slug": slug}, token=owner.token)
    for index in range(5):
        await admin_api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": f"{index}"}, token=owner.token
        )
    before = await scrape(admin_api)
    path = f"/organizations/{slug}/sync/stream"
    async with Stream(
        admin_api.client, f"{path}?offset=-1&live=sse", admin_api.headers(owner.token)
    ) as stream:
        replayed, _ = await stream.until_offset()
        during = await scrape(admin_api)  # the stream is still open: it was counted when it opened
    page = await admin_api.ok("GET", path, params={"limit": "2"}, token=owner.token)
    after = await scrape(admin_api)
    await admin_api.aclose()

    assert len(replayed) == 5
    opened = {"method": "GET", "route": "/organizations/{org}/sync/stream", "status": "200"}
    assert value(during, "syncstream_http_requests_total", **opened) == 1
    assert value(after, "syncstream_http_requests_total", **opened) == 2  # and the JSON page

    def grew(name: str, mode: str) -> float:
        return value(after, name, mode=mode) - value(before, name, mode=mode)

    assert grew("syncstream_catchup_activities_total", "sse") == 5
    assert grew("syncstream_catchup_pages_total", "sse") >= 1
    assert grew("syncstream_catchup_bytes_total", "sse") > 5 * 100
    assert grew("syncstream_catchup_activities_total", "json") == len(page["activities"]) == 2
    assert grew("syncstream_catchup_pages_total", "json") == 1
    assert grew("syncstream_catchup_bytes_total", "json") > 2 * 100


async def test_process_metrics_no_created_series_and_the_old_names(metrics_server: ServerProcess) -> None:
    api = Api(metrics_server.url)
    text = (await api.request("GET", "/metrics")).text
    samples = await scrape(api)
    await api.aclose()
    names = {name for name, _ in samples}
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "syncstream_subscribers",
        "syncstream_activities_routed_total",
        "syncstream_messages_sent_total",
        "syncstream_slow_consumer_disconnects_total",
    ):
        assert name in names, name
    assert value(samples, "process_open_fds") > 0
    assert value(samples, "process_resident_memory_bytes") > 10 * 1024 * 1024
    assert "_created" not in text


def test_http_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = Metrics(lambda: 0)
    for seconds in (0.0005, 0.0006, 0.003, 20.0):  # on a bound, between bounds, beyond the last
        metrics.http.record("GET", "/x", "200", seconds)
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name.startswith("syncstream_http_request")
    }
    bucket = "syncstream_http_request_duration_seconds_bucket"
    assert samples[(bucket, "0.0005")] == 1
    assert samples[(bucket, "0.001")] == 2
    assert samples[(bucket, "0.005")] == 3
    assert samples[(bucket, "10.0")] == 3
    assert samples[(bucket, "+Inf")] == 4
    assert samples[("syncstream_http_request_duration_seconds_count", None)] == 4
    assert samples[("syncstream_http_requests_total", None)] == 4
    assert samples[("syncstream_http_request_duration_seconds_sum", None)] == pytest.approx(20.0041)
