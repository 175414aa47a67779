"""The Grafana dashboard (docs/grafana/syncstream.json) asks real questions: every query in it runs,
without error and with data, on a real Prometheus that scraped a real server under some traffic.
(Grafana itself is not installable here; Prometheus is Debian's ``prometheus`` package.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import Api, ServerProcess, Stream, free_port, unique
from services import REQUIRE_VARIABLE, services_required

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "syncstream.json"
DEADLINE_SECONDS = 60.0
#: What Grafana puts in place of its variables when the dashboard shows "All" over the last hour.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$job": ".*", "$instance": ".*"}


def queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """Panel title (and target) → PromQL, Grafana's variables filled in."""
    found: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} [{target['refId']}]"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(SELECTOR, label): the selector must find series
            definition = variable["definition"]
            found[f"variable {variable['name']}"] = definition[len("label_values(") : definition.rindex(",")]
    for name, expr in found.items():
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        found[name] = expr
    return found


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        reason = "Prometheus not found (apt-get install prometheus)"
        if services_required():
            pytest.fail(f"{reason} and {REQUIRE_VARIABLE}=1", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url=f"sqlite:///{tmp_path / 'dash.db'}").start()
    yield server
    server.stop()


class Prometheus:
    def __init__(self, binary: str, target: str, directory: Path) -> None:
        self.port = free_port()
        config = directory / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs: [{{job_name: syncstream, static_configs: [{{targets: ['{target}']}}]}}]\n"
        )
        self.log = (directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> dict[str, Any]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = response.json()
        return body

    def scrapes(self) -> int:
        try:
            result = self.query('count_over_time(up{job="syncstream"}[5m])')["data"]["result"]
        except (httpx.HTTPError, KeyError, ValueError):
            return 0
        return int(float(result[0]["value"][1])) if result else 0

    def wait_for_scrapes(self, count: int) -> None:
        """Until Prometheus has scraped ``count`` times (it is polled: it announces nothing)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while self.scrapes() < count:
            assert self.process.poll() is None, "prometheus exited"
            assert time.monotonic() < deadline, f"prometheus scraped fewer than {count} times"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


async def traffic(server: ServerProcess) -> None:
    """Writes, a live stream that catches up and sees them routed, JSON pages, some 404s."""
    api = Api(server.url)
    owner = await api.sign_up()
    slug = unique("dash")
    await api.ok("POST", "/organizations", 201, json={"name": "Dash", "slug": slug}, token=owner.token)
    path = f"/organizations/{slug}/sync/stream"
    for index in range(3):
        await api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": f"{index}"}, token=owner.token
        )
    async with Stream(api.client, f"{path}?offset=-1&live=sse", api.headers(owner.token)) as stream:
        await stream.until_offset()
        await api.ok(
            "POST", f"/organizations/{slug}/attachments", 201, json={"name": "live"}, token=owner.token
        )
        assert await stream.next() is not None
    await api.ok("GET", path, params={"limit": "2"}, token=owner.token)
    await api.ok("GET", f"/{unique('nowhere')}", 404)
    await api.aclose()


async def test_every_dashboard_query_runs_on_real_prometheus(
    prometheus_binary: str, scraped: ServerProcess, tmp_path: Path
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "syncstream"
    prometheus = Prometheus(prometheus_binary, scraped.url.removeprefix("http://"), tmp_path)
    try:
        prometheus.wait_for_scrapes(2)
        await traffic(scraped)
        before = prometheus.scrapes()
        await traffic(scraped)
        prometheus.wait_for_scrapes(before + 2)  # rates need two samples after the traffic
        failures = []
        for name, expr in queries(dashboard).items():
            answer = prometheus.query(expr)
            if answer.get("status") != "success":
                failures.append(f"{name}: {answer.get('error')} in {expr}")
            elif not answer["data"]["result"]:
                failures.append(f"{name}: no data from {expr}")
    finally:
        prometheus.stop()
    assert len(queries(dashboard)) >= 25
    assert failures == []


def test_the_dashboard_uses_only_series_the_server_has() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = "\n".join(queries(dashboard).values())
    for series in (
        "syncstream_http_requests_total",
        "syncstream_http_request_duration_seconds_bucket",
        "syncstream_catchup_activities_total",
        "syncstream_catchup_pages_total",
        "syncstream_catchup_bytes_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ):
        assert series in text, series
    assert "_created" not in text
