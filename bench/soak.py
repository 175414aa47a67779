"""The soak: a server held under steady load for minutes, with churn, checked for leaks and loss.

    python -m bench.soak [--minutes 10] [--subscribers 2000] [--rate 50] [--churn 10]
                         [--workers 2] [--database-url URL] [--sample-seconds 10] [--out FILE]

It starts its own ``syncstream serve`` on 127.0.0.1 (SQLite in a temporary directory unless
``--database-url`` names another database), signs up an organization's owner and members,
and opens ``--subscribers`` SSE streams on the organization's sync stream, spread over
``--workers`` child processes (raw asyncio protocols, de-chunked, with ``bytes.find``
parsing: the load generator must not be the bottleneck). Then, for ``--minutes``:

- one writer creates attachments at ``--rate`` per second (paced by a schedule, a bounded
  number in flight); each name carries its send time, so every delivery yields a latency;
- ``--churn`` percent of the subscribers per minute drop their connection (RST) and at
  once resume with ``Last-Event-ID``, as a client on a flaky network does;
- every ``--sample-seconds`` the server's RSS (``/proc``), its ``/health`` subscriber count
  and the machine's load average are sampled (the machine may be shared: the load says how
  much of it the soak had).

At the end the writer stops, every subscriber must reach the newest activity, and each
subscriber's whole history (across all its reconnections) must be strictly ascending with
no duplicate, and have no gap that the log does not explain: every ID jump is checked
against the activity log (JSON mode from ``-1``). The report prints, per minute, writes,
deliveries, delivery latency p50/p99/max, write latency p50/p99, reconnects, RSS and load,
then the verdict; ``--out`` (default ``bench/results/soak.json``) keeps all of it.

``python -m bench.soak --hostile`` is another run: the server attacked while ordinary clients use
it (see :mod:`bench.hostile`).

Everything is bounded: a fixed number of connections, a fixed rate and a fixed duration, all
on loopback. Exit status 0 when nothing was lost and no stream misbehaved, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx

PASSWORD = "soak-password-1"
NAME_MARK = b'"name":"soak-'
ID_MARK = b"id: "
OFFSET_MARK = b"event: offset"
ERROR_MARK = b"event: error"

# -- latency histograms: log buckets, ~2.3% wide, merged across processes ----------------------

_BUCKETS_PER_DOUBLING = 30


def bucket_of(milliseconds: float) -> int:
    return max(0, int(math.log2(max(milliseconds, 0.01) * 100) * _BUCKETS_PER_DOUBLING))


def bucket_value(bucket: int) -> float:
    return float(2 ** ((bucket + 0.5) / _BUCKETS_PER_DOUBLING) / 100)


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(total * fraction))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_value(bucket), 2)
    return None


def merge(into: dict[int, int], other: dict[int, int]) -> None:
    for bucket, count in other.items():
        into[int(bucket)] = into.get(int(bucket), 0) + count


# -- one SSE subscriber (in a worker process) ---------------------------------------------------


class Subscriber(asyncio.Protocol):
    """One stream; its history survives reconnections (only the transport is replaced)."""

    def __init__(self, worker: Worker, index: int, token: str) -> None:
        self.worker = worker
        self.index = index
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.last_id = 0
        #: Where the first connection started (its first ``offset`` frame's cursor): the
        #: subscriber must receive every activity after it, across all its reconnections.
        self.start: int | None = None
        self.received = 0
        self.duplicates = 0
        self.jumps: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.reconnects = 0
        self.opened = asyncio.get_running_loop().create_future()
        self._reset_connection()

    def _reset_connection(self) -> None:
        self.head = b""
        self.head_done = False
        self.buffer = b""
        self.chunk_left = 0
        self.skip_crlf = False
        self.tail = b""
        self.live = False

    def request(self) -> bytes:
        lines = [
            f"GET {self.worker.path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.worker.port}",
            "Accept: text/event-stream",
            f"Authorization: Bearer {self.token}",
        ]
        if self.last_id:
            lines.append(f"Last-Event-ID: {self.last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes: duck-typed.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.live:  # a stream that was up went away: resume it
            self.worker.lost(self)
        elif not self.opened.done():  # while opening: the opener retries
            self.opened.set_exception(ConnectionError("closed before its offset frame"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.head_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(self.head[9:12])
            data, self.head_done = self.head[end + 4 :], True
            if status != 200:
                self.errors.append(f"status {status}: {data[:200]!r}")
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(f"status {status}"))
                if self.transport is not None:
                    self.transport.close()
                return
        body = self.tail + self._dechunk(data)
        end = body.rfind(b"\n\n")
        if end < 0:
            self.tail = body
            return
        self.tail = body[end + 2 :]
        self._frames(body, end, now)

    def _dechunk(self, data: bytes) -> bytes:
        out = []
        buf = self.buffer + data if self.buffer else data
        while True:
            if self.skip_crlf:
                if len(buf) < 2:
                    break
                buf, self.skip_crlf = buf[2:], False
            if self.chunk_left == 0:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    break
                self.chunk_left = int(buf[:eol], 16)
                buf = buf[eol + 2 :]
                if self.chunk_left == 0:
                    break
            taken = buf[: self.chunk_left]
            if not taken:
                break
            out.append(taken)
            buf = buf[len(taken) :]
            self.chunk_left -= len(taken)
            if self.chunk_left == 0:
                self.skip_crlf = True
        self.buffer = buf
        return b"".join(out)

    def _frames(self, body: bytes, end: int, now: int) -> None:
        find = body.find
        if self.start is None:
            # The first connection opens at offset=now: its offset frame comes first, and
            # names where this subscriber's history begins (and where it resumes from if it
            # drops before any change arrives).
            mark = find(OFFSET_MARK, 0, end)
            if mark < 0:
                return
            cursor = body[find(b'"cursor":', mark) + 9 : find(b"}", mark)]
            self.start = self.last_id = 0 if cursor == b"null" else int(cursor.strip(b'"'))
        pos = find(ID_MARK, 0, end)
        while pos >= 0:
            eol = find(b"\n", pos)
            activity_id = int(body[pos + 4 : eol])
            frame_end = find(b"\n\n", eol)
            if activity_id <= self.last_id:
                self.duplicates += 1
            else:
                if activity_id != self.last_id + 1:
                    self.jumps.append((self.last_id, activity_id))
                self.last_id = activity_id
                self.received += 1
                if activity_id >= self.worker.target:
                    self.worker.reached(self)
                if self.live:
                    mark = find(NAME_MARK, eol, frame_end)
                    if mark >= 0:
                        start = mark + len(NAME_MARK)
                        sent = int(body[start : find(b'"', start)])
                        self.worker.record((now - sent) / 1e6, now)
            pos = find(ID_MARK, frame_end, end)
        if not self.live and find(OFFSET_MARK, 0, end) >= 0:
            self.live = True
            if not self.opened.done():
                self.opened.set_result(None)
        if find(ERROR_MARK, 0, end) >= 0:
            start = find(ERROR_MARK, 0, end)
            self.errors.append(body[start : start + 300].decode(errors="replace"))

    def drop(self) -> None:
        """Leave abruptly (RST); the worker reconnects it with Last-Event-ID."""
        if self.transport is not None:
            self.transport.abort()


@dataclass
class Worker:
    """A child process holding a share of the subscribers."""

    port: int
    path: str
    t0_ns: int = 0
    minute_histograms: dict[int, dict[int, int]] = field(default_factory=dict)
    minute_deliveries: dict[int, int] = field(default_factory=dict)
    minute_reconnects: dict[int, int] = field(default_factory=dict)
    reconnect_failures: int = 0
    subscribers: list[Subscriber] = field(default_factory=list)
    stopping: bool = False
    #: At the end: the newest activity, which every subscriber must reach.
    target: int = 2**63
    waiting: set[Subscriber] = field(default_factory=set)
    all_reached: asyncio.Event = field(default_factory=asyncio.Event)

    def reached(self, sub: Subscriber) -> None:
        self.waiting.discard(sub)
        if not self.waiting:
            self.all_reached.set()

    async def finish(self, newest: int, within: float) -> None:
        """Wait (on the subscribers' own progress) until every one has received ``newest``."""
        self.target = newest
        self.waiting = {s for s in self.subscribers if s.last_id < newest}
        if not self.waiting:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_reached.wait(), within)

    def minute(self, now_ns: int) -> int:
        return max(0, (now_ns - self.t0_ns) // 60_000_000_000) if self.t0_ns else -1

    def record(self, latency_ms: float, now_ns: int) -> None:
        minute = self.minute(now_ns)
        histogram = self.minute_histograms.setdefault(minute, {})
        bucket = bucket_of(latency_ms)
        histogram[bucket] = histogram.get(bucket, 0) + 1
        self.minute_deliveries[minute] = self.minute_deliveries.get(minute, 0) + 1

    async def connect(self, sub: Subscriber) -> None:
        loop = asyncio.get_running_loop()
        sub._reset_connection()
        sub.opened = loop.create_future()
        await loop.create_connection(lambda: sub, "127.0.0.1", self.port)
        await asyncio.wait_for(sub.opened, 120)

    def lost(self, sub: Subscriber) -> None:
        if not self.stopping:
            asyncio.get_running_loop().create_task(self.reconnect(sub))

    async def reconnect(self, sub: Subscriber) -> None:
        sub.reconnects += 1
        minute = self.minute(time.monotonic_ns())
        self.minute_reconnects[minute] = self.minute_reconnects.get(minute, 0) + 1
        for attempt in range(20):
            try:
                await self.connect(sub)
                return
            except (OSError, ConnectionError, TimeoutError):
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt) * random.random())
        self.reconnect_failures += 1


def worker_main(conn: Connection, port: int, path: str, tokens: list[str], count: int, seed: int) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_worker(conn, port, path, tokens, count, seed))


async def _worker(conn: Connection, port: int, path: str, tokens: list[str], count: int, seed: int) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(port, path)
    rng = random.Random(seed)
    gate = asyncio.Semaphore(50)
    failures: list[str] = []

    async def open_one(index: int) -> None:
        sub = Subscriber(worker, index, tokens[index % len(tokens)])
        async with gate:
            try:
                await worker.connect(sub)
            except (OSError, ConnectionError, TimeoutError) as exc:
                failures.append(repr(exc)[:200])
                return
        worker.subscribers.append(sub)

    await asyncio.gather(*(open_one(i) for i in range(count)))
    conn.send({"opened": len(worker.subscribers), "failures": failures[:5]})

    # Commands from the parent, read without blocking the loop.
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    churn_task: asyncio.Task[None] | None = None

    async def churn(per_minute: float) -> None:
        if per_minute <= 0 or not worker.subscribers:
            return
        interval = 60.0 / per_minute
        while True:
            await asyncio.sleep(rng.expovariate(1 / interval))
            rng.choice(worker.subscribers).drop()

    while True:
        command = await commands.get()
        if command["cmd"] == "start":
            worker.t0_ns = command["t0_ns"]
            churn_task = asyncio.create_task(churn(command["churn_per_minute"]))
        elif command["cmd"] == "finish":
            if churn_task is not None:
                churn_task.cancel()
            newest = command["newest"]
            await worker.finish(newest, command["within"])
            worker.stopping = True
            for sub in worker.subscribers:
                if sub.transport is not None:
                    sub.transport.close()
            behind = [(s.index, s.last_id) for s in worker.subscribers if s.last_id < newest]
            conn.send(
                {
                    "histograms": worker.minute_histograms,
                    "deliveries": worker.minute_deliveries,
                    "reconnects": worker.minute_reconnects,
                    "reconnect_failures": worker.reconnect_failures,
                    "behind": behind[:20],
                    "behind_count": len(behind),
                    "duplicates": sum(s.duplicates for s in worker.subscribers),
                    "jumps": sorted({j for s in worker.subscribers for j in s.jumps}),
                    "errors": [e for s in worker.subscribers for e in s.errors][:20],
                    "error_count": sum(len(s.errors) for s in worker.subscribers),
                    "received": sum(s.received for s in worker.subscribers),
                    "histories": [(s.start or 0, s.received) for s in worker.subscribers],
                    "subscribers": len(worker.subscribers),
                }
            )
            loop.remove_reader(conn.fileno())
            return


# -- the server, the setup and the writer (parent process) ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(database_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    # Thousands of streams from a few users on 127.0.0.1: the per-user and per-address quotas are lifted.
    env = {**os.environ, "SYNCSTREAM_KEEPALIVE_SECONDS": "15"}
    env |= {"SYNCSTREAM_STREAMS_PER_USER": "1000000", "SYNCSTREAM_STREAMS_PER_ADDRESS": "1000000"}
    command = [sys.executable, "-m", "syncstream.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--database-url", database_url, "--log-level", "warning"]
    log = log_path.open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        time.sleep(0.1)  # polling a process that is starting: there is nothing to await
    process.kill()
    raise SystemExit(f"the server did not become healthy; see {log_path}")


async def setup(client: httpx.AsyncClient, members: int) -> tuple[str, list[str]]:
    """An organization, its owner and some members; returns (org id, their tokens)."""
    tokens = []
    emails = []
    for n in range(members + 1):
        email = f"soak{n}-{os.getpid()}-{time.monotonic_ns()}@example.test"
        response = await client.post(
            "/auth/sign-up", json={"email": email, "password": PASSWORD, "name": f"S{n}"}
        )
        response.raise_for_status()
        tokens.append(response.json()["token"])
        emails.append(email)
    owner = {"Authorization": f"Bearer {tokens[0]}"}
    slug = f"soak-{os.getpid()}-{int(time.time())}"
    org = await client.post("/organizations", json={"name": "Soak", "slug": slug}, headers=owner)
    org.raise_for_status()
    org_id = org.json()["id"]
    for email in emails[1:]:
        body = {"email": email, "role": "member", "projectId": None}
        added = await client.post(f"/organizations/{org_id}/memberships", json=body, headers=owner)
        added.raise_for_status()
    return org_id, tokens


@dataclass
class WriteStats:
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    minute_ok: dict[int, int] = field(default_factory=dict)
    minute_latency: dict[int, dict[int, int]] = field(default_factory=dict)
    lag_max_seconds: float = 0.0


async def write_load(
    client: httpx.AsyncClient,
    org_id: str,
    token: str,
    rate: float,
    until_ns: int,
    t0_ns: int,
    stats: WriteStats,
) -> None:
    """Attachments at ``rate`` per second on a fixed schedule, at most 32 in flight."""
    headers = {"Authorization": f"Bearer {token}"}
    in_flight = asyncio.Semaphore(32)
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        async with in_flight:
            sent = time.monotonic_ns()
            try:
                response = await client.post(
                    f"/organizations/{org_id}/attachments", json={"name": f"soak-{sent}"}, headers=headers
                )
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            now = time.monotonic_ns()
            minute = (now - t0_ns) // 60_000_000_000
            if outcome == "201":
                stats.ok += 1
                stats.minute_ok[minute] = stats.minute_ok.get(minute, 0) + 1
                histogram = stats.minute_latency.setdefault(minute, {})
                bucket = bucket_of((now - sent) / 1e6)
                histogram[bucket] = histogram.get(bucket, 0) + 1
            else:
                stats.failed[outcome] = stats.failed.get(outcome, 0) + 1

    interval_ns = int(1e9 / rate)
    due = time.monotonic_ns()
    while due < until_ns:
        now = time.monotonic_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        else:
            stats.lag_max_seconds = max(stats.lag_max_seconds, (now - due) / 1e9)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        due += interval_ns
    if tasks:
        await asyncio.wait(tasks)


async def sample_loop(
    client: httpx.AsyncClient,
    pid: int,
    every: float,
    until_ns: int,
    t0_ns: int,
    samples: list[dict[str, Any]],
) -> None:
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    while time.monotonic_ns() < until_ns:
        await asyncio.sleep(every)
        try:
            health = (await client.get("/health")).json()
        except (httpx.HTTPError, ValueError):
            health = {}
        cpu_now, wall_now = cpu_seconds(pid), time.monotonic()
        samples.append(
            {
                "t": round((time.monotonic_ns() - t0_ns) / 1e9, 1),
                "rss_mib": rss_mib(pid),
                "server_cpu": round((cpu_now - cpu_before) / (wall_now - wall_before), 2),
                "subscribers": health.get("subscribers"),
                "load1": round(os.getloadavg()[0], 2),
            }
        )
        cpu_before, wall_before = cpu_now, wall_now


async def read_log_ids(client: httpx.AsyncClient, org_id: str, token: str) -> list[int]:
    """Every activity of the org stream, from -1 (the truth the streams are checked with)."""
    ids: list[int] = []
    cursor = "-1"
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        response = await client.get(
            f"/organizations/{org_id}/sync/stream",
            params={"offset": cursor, "limit": "1000"},
            headers=headers,
        )
        response.raise_for_status()
        page = response.json()
        ids.extend(int(m["activityId"]) for m in page["activities"])
        if not page["hasMore"]:
            return ids
        cursor = page["cursor"]


def unexplained_jumps(jumps: list[tuple[int, int]], log_ids: list[int]) -> list[tuple[int, int]]:
    """Jumps over an activity the log has (a real gap); jumps over nothing are fine."""
    bad = []
    for before, after in jumps:
        i = bisect.bisect_right(log_ids, before)
        if i < len(log_ids) and log_ids[i] < after:
            bad.append((before, after))
    return bad


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Options:
    minutes: float
    subscribers: int
    rate: float
    churn: float
    workers: int
    database_url: str | None
    sample_seconds: float
    members: int
    out: Path


async def soak(options: Options) -> dict[str, Any]:
    limit = raise_fd_limit(options.subscribers * 2 + 1024)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="syncstream-soak-"))
    database_url = options.database_url or f"sqlite:///{directory / 'soak.db'}"
    log_path = options.out.with_suffix(".server.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"soak: server on 127.0.0.1:{port}, {database_url.split('@')[-1]}, fd limit {limit}", flush=True)
    server = start_server(database_url, port, log_path)
    context = multiprocessing.get_context("spawn")
    children: list[tuple[Any, Connection]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            org_id, tokens = await setup(client, options.members)
            path = f"/organizations/{org_id}/sync/stream?offset=now&live=sse"
            baseline_rss = rss_mib(server.pid)
            share = [options.subscribers // options.workers] * options.workers
            share[0] += options.subscribers - sum(share)
            started = time.monotonic()
            for n, count in enumerate(share):
                parent, child = context.Pipe()
                process = context.Process(
                    target=worker_main, args=(child, port, path, tokens, count, n), daemon=True
                )
                process.start()
                children.append((process, parent))
            opened = [await asyncio.to_thread(parent.recv) for _, parent in children]
            open_seconds = time.monotonic() - started
            total_open = sum(o["opened"] for o in opened)
            print(f"soak: {total_open} subscribers open in {open_seconds:.1f} s", flush=True)
            if total_open < options.subscribers:
                print(f"soak: could not open them all: {[o['failures'] for o in opened]}", flush=True)

            t0_ns = time.monotonic_ns()
            until_ns = t0_ns + int(options.minutes * 60e9)
            churn_each = options.subscribers * options.churn / 100 / options.workers
            for _, parent in children:
                parent.send({"cmd": "start", "t0_ns": t0_ns, "churn_per_minute": churn_each})
            stats = WriteStats()
            samples: list[dict[str, Any]] = []
            loaded_rss = rss_mib(server.pid)
            print(
                f"soak: writing {options.rate:g}/s for {options.minutes:g} min, churn {options.churn:g}%/min",
                flush=True,
            )
            await asyncio.gather(
                write_load(client, org_id, tokens[0], options.rate, until_ns, t0_ns, stats),
                sample_loop(client, server.pid, options.sample_seconds, until_ns, t0_ns, samples),
            )
            newest = await read_log_ids(client, org_id, tokens[0])
            newest_id = newest[-1] if newest else 0
            for _, parent in children:
                parent.send({"cmd": "finish", "newest": newest_id, "within": 120})
            results = [await asyncio.to_thread(parent.recv) for _, parent in children]
            for process, _ in children:
                process.join(30)
            health_after = (await client.get("/health")).json()
            deadline = time.monotonic() + 30
            while health_after.get("subscribers") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)  # polling the server's own count: no event to await
                health_after = (await client.get("/health")).json()
            rss_after = rss_mib(server.pid)
    finally:
        for process, _ in children:
            if process.is_alive():
                process.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(directory, ignore_errors=True)

    return report(
        options,
        results,
        stats,
        samples,
        newest,
        baseline_rss,
        loaded_rss,
        rss_after,
        health_after,
        total_open,
    )


def report(
    options: Options,
    results: list[dict[str, Any]],
    stats: WriteStats,
    samples: list[dict[str, Any]],
    log_ids: list[int],
    baseline_rss: float | None,
    loaded_rss: float | None,
    rss_after: float | None,
    health_after: dict[str, Any],
    opened: int,
) -> dict[str, Any]:
    histograms: dict[int, dict[int, int]] = {}
    deliveries: dict[int, int] = {}
    reconnects: dict[int, int] = {}
    for result in results:
        for minute, histogram in result["histograms"].items():
            merge(histograms.setdefault(int(minute), {}), histogram)
        for minute, count in result["deliveries"].items():
            deliveries[int(minute)] = deliveries.get(int(minute), 0) + count
        for minute, count in result["reconnects"].items():
            reconnects[int(minute)] = reconnects.get(int(minute), 0) + count
    jumps = sorted({tuple(j) for r in results for j in r["jumps"]})
    bad_jumps = unexplained_jumps([(int(a), int(b)) for a, b in jumps], log_ids)
    # Complete: each subscriber received as many activities as the log has after its start.
    short = [
        (start, received)
        for r in results
        for start, received in r["histories"]
        if received != len(log_ids) - bisect.bisect_right(log_ids, start)
    ]
    minutes = []
    # The writes scheduled in the window may finish after it when the server falls behind:
    # the minutes in which they drain are shown too.
    last = max([math.ceil(options.minutes) - 1, *stats.minute_ok, *deliveries])
    for minute in range(last + 1):
        in_minute = [s for s in samples if minute * 60 <= s["t"] < (minute + 1) * 60]
        rss = [s["rss_mib"] for s in in_minute if s["rss_mib"] is not None]
        minutes.append(
            {
                "minute": minute + 1,
                "writes": stats.minute_ok.get(minute, 0),
                "write_p50_ms": percentile(stats.minute_latency.get(minute, {}), 0.5),
                "write_p99_ms": percentile(stats.minute_latency.get(minute, {}), 0.99),
                "deliveries": deliveries.get(minute, 0),
                "p50_ms": percentile(histograms.get(minute, {}), 0.5),
                "p99_ms": percentile(histograms.get(minute, {}), 0.99),
                "max_ms": percentile(histograms.get(minute, {}), 1.0),
                "reconnects": reconnects.get(minute, 0),
                "rss_mib": max(rss) if rss else None,
                "server_cpu": round(sum(s["server_cpu"] for s in in_minute) / len(in_minute), 2)
                if in_minute
                else None,
                "load1": max(s["load1"] for s in in_minute) if in_minute else None,
            }
        )
    rss_values = [s["rss_mib"] for s in samples if s["rss_mib"] is not None]
    verdict = {
        "writes_ok": stats.ok,
        "writes_failed": stats.failed,
        "writer_lag_max_s": round(stats.lag_max_seconds, 3),
        "received": sum(r["received"] for r in results),
        "subscribers": sum(r["subscribers"] for r in results),
        "duplicates_or_out_of_order": sum(r["duplicates"] for r in results),
        "unexplained_gaps": len(bad_jumps),
        "incomplete_histories": len(short),
        "incomplete_examples": short[:5],
        "gap_examples": bad_jumps[:5],
        "behind_at_end": sum(r["behind_count"] for r in results),
        "stream_errors": sum(r["error_count"] for r in results),
        "error_examples": [e for r in results for e in r["errors"]][:5],
        "reconnect_failures": sum(r["reconnect_failures"] for r in results),
        "reconnects": sum(reconnects.values()),
        "rss_mib": {
            "before_subscribers": baseline_rss,
            "with_subscribers": loaded_rss,
            "min": min(rss_values) if rss_values else None,
            "max": max(rss_values) if rss_values else None,
            "first_sample": rss_values[0] if rss_values else None,
            "last_sample": rss_values[-1] if rss_values else None,
            "after_all_left": rss_after,
        },
        "subscribers_after_all_left": health_after.get("subscribers"),
    }
    verdict["opened"] = opened
    ok = (
        opened == options.subscribers
        and not stats.failed
        and verdict["duplicates_or_out_of_order"] == 0
        and verdict["unexplained_gaps"] == 0
        and verdict["incomplete_histories"] == 0
        and verdict["behind_at_end"] == 0
        and verdict["stream_errors"] == 0
        and verdict["reconnect_failures"] == 0
        and verdict["subscribers_after_all_left"] == 0
    )
    return {
        "command": " ".join(["python -m bench.soak", *sys.argv[1:]]),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "machine": {"cpus": os.cpu_count(), "load_at_end": [round(x, 2) for x in os.getloadavg()]},
        "minutes": minutes,
        "samples": samples,
        "verdict": verdict,
        "ok": ok,
    }


def print_report(result: dict[str, Any]) -> None:
    columns = [
        ("minute", "min"),
        ("writes", "writes"),
        ("write_p50_ms", "w p50"),
        ("write_p99_ms", "w p99"),
        ("deliveries", "deliveries"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("reconnects", "reconn"),
        ("rss_mib", "RSS MiB"),
        ("server_cpu", "srv cpu"),
        ("load1", "load1"),
    ]
    print(" ".join(f"{title:>10}" for _, title in columns))
    for row in result["minutes"]:
        print(" ".join(f"{'-' if row[key] is None else row[key]!s:>10}" for key, _ in columns))
    print(json.dumps(result["verdict"], indent=2))
    print(
        "soak:", "OK: nothing lost, nothing duplicated, no leak of subscribers" if result["ok"] else "FAILED"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--hostile" in argv:  # the hostile soak: bench/hostile.py
        from bench import hostile

        return hostile.main([a for a in argv if a != "--hostile"])
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="attachments written per second")
    parser.add_argument(
        "--churn", type=float, default=10.0, help="percent of subscribers reconnecting per minute"
    )
    parser.add_argument("--workers", type=int, default=2, help="client processes holding the subscribers")
    parser.add_argument("--members", type=int, default=4, help="org members whose tokens the streams use")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak.json"))
    args = parser.parse_args(argv)
    if not (0 < args.minutes <= 120 and 0 < args.subscribers <= 20000 and 0 < args.rate <= 1000):
        parser.error("bounded runs only: minutes ≤ 120, subscribers ≤ 20000, rate ≤ 1000")
    options = Options(
        minutes=args.minutes,
        subscribers=args.subscribers,
        rate=args.rate,
        churn=args.churn,
        workers=max(1, args.workers),
        database_url=args.database_url,
        sample_seconds=args.sample_seconds,
        members=max(1, args.members),
        out=args.out,
    )
    result = asyncio.run(soak(options))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2))
    print_report(result)
    print(f"soak: results in {options.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
