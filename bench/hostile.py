"""The hostile soak: a server on its default admission settings, attacked while ordinary clients use it.

    python -m bench.soak --hostile [--seconds 45] [--idle 1000] [--anonymous 200] [--memory-bound-mib 768]

It starts its own ``syncstream serve`` (SQLite in a temporary directory, the default settings: argon2id
at full cost, 20 s head and 60 s body deadlines, 32 streams per user, 64 per address), and for
``--seconds``, all at once:

- **slow and idle connections** (``--idle``, kept at that count, reopened as the server closes them): 40 %
  send nothing, 30 % send a request head a byte every 2 s, 20 % announce a 1,000-byte sign-in body and
  withhold it, 10 % send a stream ``GET`` with ``Content-Length: 5`` and no body (the attack that once
  stopped every stream; refused at once, and sent again a second later);
- **anonymous streams** (``--anonymous``): public pages streams, from four addresses, held throughout;
- **a sign-up flood**: ``--signups`` (8) sign-ups in flight at all times from one address;
- **big-page catch-ups**: a system admin first edits one 500 KiB page ``--big-pages`` times; then two
  (``--catchups``) clients page through the pages stream in JSON (``limit=1000``) and one reads it as SSE
  from ``-1``, over and over (``--signups 0 --catchups 0`` leaves the admission attacks alone);
- **ordinary clients**: ``--subscribers`` members hold their organization's stream for the whole run, and
  ``--openers`` members keep opening it (``offset=now``), wait for its ``offset`` frame (the *stream open*
  time) and close it a second later, while the owner creates attachments at ``--rate`` per second.

Every client but the local ones comes through 127.0.0.1 as a trusted proxy with an ``X-Forwarded-For`` of
its own, so each has the address quotas a real one would. The server's RSS is sampled every half second.

Checks (exit status 1 if one fails): stream open p99 ≤ 1 s; every member holding a stream received every
attachment created, once, in order; the server's peak RSS ≤ ``--memory-bound-mib``. Results go to
``bench/results/hostile.json``. Everything is bounded: fixed counts, ``--seconds`` of load (≤ 90 s in
all with the default), loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.soak import bucket_of, free_port, percentile, rss_mib
from bench.subscribers import Subscriber

PASSWORD = "hostile-password-1"
PAGE_BYTES = 500 * 1024


@dataclass
class Options:
    seconds: float = 45.0
    idle: int = 1000
    anonymous: int = 200
    subscribers: int = 10
    openers: int = 20
    rate: float = 20.0
    big_pages: int = 100
    signups: int = 8
    catchups: int = 2
    memory_bound_mib: float = 768.0
    database_url: str | None = None
    out: Path = Path("bench/results/hostile.json")


@dataclass
class Tally:
    idle_closed_by_server: int = 0
    idle_answers: Counter[str] = field(default_factory=Counter)
    anonymous_held: int = 0
    anonymous_refused: Counter[str] = field(default_factory=Counter)
    signups: Counter[str] = field(default_factory=Counter)
    catchup_pages: int = 0
    catchup_bytes: int = 0
    sse_catchups: int = 0
    opens: dict[int, int] = field(default_factory=dict)  # latency histogram (ms buckets)
    open_failures: Counter[str] = field(default_factory=Counter)
    writes_ok: int = 0
    writes_failed: Counter[str] = field(default_factory=Counter)
    health: dict[int, int] = field(default_factory=dict)
    health_failures: Counter[str] = field(default_factory=Counter)
    rss: list[float] = field(default_factory=list)


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


# -- the server and the setup --------------------------------------------------------------------


def start_server(database_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SYNCSTREAM_KEEPALIVE_SECONDS": "15"}  # every admission setting at its default
    command = [sys.executable, "-m", "syncstream.cli", "serve", "--port", str(port)]
    command += ["--database-url", database_url, "--log-level", "warning"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        time.sleep(0.1)  # a process that is starting: nothing to await
    process.kill()
    raise SystemExit(f"the server did not become healthy; see {log_path}")


def admin_token(database_url: str) -> str:
    email = f"admin-{os.getpid()}-{time.monotonic_ns()}@example.test"
    command = [sys.executable, "-m", "syncstream.cli", "user", "create", email, "--password", PASSWORD]
    out = subprocess.run(
        [*command, "--admin", "--database-url", database_url], check=True, capture_output=True
    )
    return str(json.loads(out.stdout)["token"])


async def sign_up(client: httpx.AsyncClient, n: int) -> tuple[str, str]:
    email = f"h{n}-{os.getpid()}-{time.monotonic_ns()}@example.test"
    response = await client.post(
        "/auth/sign-up",
        json={"email": email, "password": PASSWORD, "name": f"H{n}"},
        headers=forwarded(f"198.18.{n // 200}.{n % 200 + 1}"),
    )
    response.raise_for_status()
    return email, str(response.json()["token"])


async def setup(client: httpx.AsyncClient, options: Options, admin: str) -> tuple[str, str, list[str]]:
    """Big pages (edited by the admin), an organization, its owner and members: (org, owner, members)."""
    auth = {"Authorization": f"Bearer {admin}"}
    page = await client.post("/pages", json={"title": "Big", "content": "a" * PAGE_BYTES}, headers=auth)
    page.raise_for_status()
    for n in range(options.big_pages):
        body = {"content": chr(ord("a") + n % 26) * PAGE_BYTES}
        (await client.patch(f"/pages/{page.json()['id']}", json=body, headers=auth)).raise_for_status()
    people = [await sign_up(client, n) for n in range(1 + options.subscribers + options.openers)]
    owner = {"Authorization": f"Bearer {people[0][1]}"}
    org = await client.post(
        "/organizations", json={"name": "Hostile", "slug": f"h{os.getpid()}"}, headers=owner
    )
    org.raise_for_status()
    org_id = str(org.json()["id"])
    for email, _ in people[1:]:
        body = {"email": email, "role": "member", "projectId": None}
        (
            await client.post(f"/organizations/{org_id}/memberships", json=body, headers=owner)
        ).raise_for_status()
    return org_id, people[0][1], [token for _, token in people[1:]]


async def connect(sub: Subscriber, port: int) -> None:
    await asyncio.get_running_loop().create_connection(lambda: sub, "127.0.0.1", port)


# -- the attackers -----------------------------------------------------------------------------


async def idle_connection(port: int, kind: int, tally: Tally, stop: asyncio.Event) -> None:
    """One slot of the slow-connection flood, reopened whenever the server closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            tally.idle_answers["connect failed"] += 1
            await asyncio.sleep(1)
            continue
        try:
            if kind == 1:  # a head, a byte every 2 s
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            elif kind == 2:  # a body announced and withheld
                writer.write(b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            elif kind == 3:  # the stream request with a body that never comes
                writer.write(b"GET /pages/stream?live=sse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            read = asyncio.create_task(reader.read())
            while not read.done() and not stop.is_set():
                await asyncio.wait([read], timeout=2)
                if kind == 1 and not read.done():
                    writer.write(b"X")
            if read.done():
                answer = read.result()
                tally.idle_closed_by_server += 1
                tally.idle_answers[answer[9:12].decode() if answer else "closed silently"] += 1
                if kind == 3:
                    await asyncio.sleep(1)
            else:
                read.cancel()
        except OSError:
            tally.idle_answers["reset"] += 1
        finally:
            writer.close()


async def anonymous_streams(port: int, count: int, tally: Tally) -> list[Subscriber]:
    loop = asyncio.get_running_loop()
    held = []
    for n in range(count):
        request = (
            f"GET /pages/stream?live=sse&offset=now HTTP/1.1\r\nHost: x\r\n"
            f"X-Forwarded-For: 203.0.113.{n % 4 + 1}\r\n\r\n"
        ).encode()
        sub = Subscriber(request, loop)
        await connect(sub, port)
        try:
            await asyncio.wait_for(sub.ready, 30)
            tally.anonymous_held += 1
            held.append(sub)
        except (ConnectionError, TimeoutError) as exc:
            tally.anonymous_refused[str(exc)[:40]] += 1
    return held


async def signup_flood(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    for n in itertools.count():
        if stop.is_set():
            return
        body = {"email": f"flood{n}-{random.random()}@example.test", "password": PASSWORD, "name": "F"}
        try:
            response = await client.post("/auth/sign-up", json=body, headers=forwarded("203.0.113.200"))
            tally.signups[str(response.status_code)] += 1
            if response.status_code == 429:  # an attacker does not wait: it tries again at once
                await asyncio.sleep(0.05)
        except httpx.HTTPError as exc:
            tally.signups[type(exc).__name__] += 1


async def json_catchups(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event, who: int) -> None:
    while not stop.is_set():
        cursor = "-1"
        while not stop.is_set():
            params = {"offset": cursor, "limit": "1000"}
            async with client.stream(
                "GET", "/pages/stream", params=params, headers=forwarded(f"203.0.113.{100 + who}")
            ) as response:
                body = await response.aread()
            tally.catchup_pages += 1
            tally.catchup_bytes += len(body)
            if response.status_code != 200:
                await asyncio.sleep(0.5)
                break
            page = json.loads(body)
            if not page["hasMore"]:
                break
            cursor = page["cursor"]


async def sse_catchups(port: int, tally: Tally, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        request = (
            b"GET /pages/stream?live=sse&offset=-1 HTTP/1.1\r\nHost: x\r\n"
            b"X-Forwarded-For: 203.0.113.150\r\n\r\n"
        )
        sub = Subscriber(request, loop)
        await connect(sub, port)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(sub.ready, 60)
            tally.sse_catchups += 1
        if sub.transport is not None:
            sub.transport.close()


# -- the ordinary clients ------------------------------------------------------------------------


def org_request(org_id: str, token: str, address: str) -> bytes:
    return (
        f"GET /organizations/{org_id}/sync/stream?live=sse&offset=now HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nX-Forwarded-For: {address}\r\n\r\n"
    ).encode()


async def opener(port: int, org_id: str, token: str, n: int, tally: Tally, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        sub = Subscriber(org_request(org_id, token, f"198.19.0.{n + 1}"), loop)
        started = time.perf_counter()
        try:
            await connect(sub, port)
            await asyncio.wait_for(sub.ready, 30)
            elapsed_ms = (time.perf_counter() - started) * 1000
            bucket = bucket_of(elapsed_ms)
            tally.opens[bucket] = tally.opens.get(bucket, 0) + 1
        except (ConnectionError, TimeoutError, OSError) as exc:
            tally.open_failures[str(exc)[:60]] += 1
        await asyncio.sleep(1)  # holds the stream a second, as a page view does
        if sub.transport is not None:
            sub.transport.close()


async def writer(
    client: httpx.AsyncClient, org_id: str, token: str, options: Options, tally: Tally, stop: asyncio.Event
) -> None:
    auth = {"Authorization": f"Bearer {token}", **forwarded("198.19.1.1")}
    started = time.monotonic()
    in_flight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        body = {"name": f"b{time.monotonic_ns()}", "projectId": None}
        try:
            response = await client.post(f"/organizations/{org_id}/attachments", json=body, headers=auth)
            if response.status_code == 201:
                tally.writes_ok += 1
            else:
                tally.writes_failed[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            tally.writes_failed[type(exc).__name__] += 1

    for n in itertools.count():
        if stop.is_set():
            break
        await asyncio.sleep(max(0.0, started + n / options.rate - time.monotonic()))  # the schedule
        task = asyncio.create_task(one())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)


async def sampler(base: str, pid: int, tally: Tally, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            if (rss := rss_mib(pid)) is not None:
                tally.rss.append(rss)
            started = time.perf_counter()
            try:
                status = str((await client.get("/health")).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status == "200":
                bucket = bucket_of((time.perf_counter() - started) * 1000)
                tally.health[bucket] = tally.health.get(bucket, 0) + 1
            else:
                tally.health_failures[status] += 1
            await asyncio.sleep(0.5)


# -- the run --------------------------------------------------------------------------------------


async def log_ids(client: httpx.AsyncClient, org_id: str, token: str, after: int) -> list[int]:
    ids: list[int] = []
    cursor = str(after)
    while True:
        response = await client.get(
            f"/organizations/{org_id}/sync/stream",
            params={"offset": cursor, "limit": "1000"},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        page = response.json()
        ids += [int(a["activityId"]) for a in page["activities"]]
        if not page["hasMore"]:
            return ids
        cursor = page["cursor"]


async def run(options: Options) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="syncstream-hostile-"))
    database_url = options.database_url or f"sqlite:///{folder / 'hostile.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server(database_url, port, folder / "server.log")
    tally = Tally()
    stop = asyncio.Event()
    try:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            admin = await asyncio.to_thread(admin_token, database_url)
            set_up = time.monotonic()
            org_id, owner, members = await setup(client, options, admin)
            setup_seconds = time.monotonic() - set_up
            idle_before = rss_mib(process.pid)
            loop = asyncio.get_running_loop()
            holders = []
            for n, token in enumerate(members[: options.subscribers]):
                sub = Subscriber(org_request(org_id, token, f"198.19.2.{n + 1}"), loop)
                await connect(sub, port)
                await asyncio.wait_for(sub.ready, 30)
                holders.append(sub)
            start_cursor = (
                await client.get(
                    f"/organizations/{org_id}/sync/stream",
                    params={"offset": "now"},
                    headers={"Authorization": f"Bearer {owner}"},
                )
            ).json()["cursor"]
            started = time.monotonic()
            tasks = [asyncio.create_task(sampler(base, process.pid, tally, stop))]
            tasks += [
                asyncio.create_task(idle_connection(port, kind, tally, stop)) for kind in _kinds(options.idle)
            ]
            anonymous = asyncio.create_task(anonymous_streams(port, options.anonymous, tally))
            tasks += [asyncio.create_task(signup_flood(client, tally, stop)) for _ in range(options.signups)]
            tasks += [
                asyncio.create_task(json_catchups(client, tally, stop, who))
                for who in range(options.catchups)
            ]
            if options.catchups:
                tasks.append(asyncio.create_task(sse_catchups(port, tally, stop)))
            openers = members[options.subscribers :]
            tasks += [
                asyncio.create_task(opener(port, org_id, token, n, tally, stop))
                for n, token in enumerate(openers)
            ]
            writing = asyncio.create_task(writer(client, org_id, owner, options, tally, stop))
            await asyncio.sleep(options.seconds)  # the load runs for a fixed time
            stop.set()
            await writing
            held = await anonymous
            peak_under_load = max(tally.rss, default=0.0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            expected = await log_ids(client, org_id, owner, int(start_cursor or 0))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(  # noqa: ASYNC110 (other processes: no event)
                s.last_id < (expected[-1] if expected else 0) for s in holders
            ):
                await asyncio.sleep(0.2)  # deliveries in flight: nothing to await across processes
            lost = sum(len(set(expected) - set(s.ids)) for s in holders)
            repeated = sum(len(s.ids) - len(set(s.ids)) for s in holders)
            out_of_order = sum(list(s.ids) != sorted(s.ids) for s in holders)
            for sub in [*holders, *held]:
                if sub.transport is not None:
                    sub.transport.close()
            health = await client.get("/health")
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
        if process.poll() is None:
            process.kill()
    p99 = percentile(tally.opens, 0.99)
    result = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "setup_seconds": round(setup_seconds, 1),
        "load_seconds": round(elapsed, 1),
        "server_log": str(folder / "server.log"),
        "stream_open_ms": {
            "count": sum(tally.opens.values()),
            "p50": percentile(tally.opens, 0.5),
            "p99": p99,
            "max": percentile(tally.opens, 1.0),
            "failures": dict(tally.open_failures),
        },
        "health_ms": {
            "p50": percentile(tally.health, 0.5),
            "p99": percentile(tally.health, 0.99),
            "failures": dict(tally.health_failures),
            "after": health.status_code,
        },
        "writes": {"ok": tally.writes_ok, "failed": dict(tally.writes_failed)},
        "delivery": {
            "subscribers": len(holders),
            "activities": len(expected),
            "lost": lost,
            "repeated": repeated,
            "out_of_order": out_of_order,
        },
        "idle_flood": {
            "connections": options.idle,
            "closed_by_server": tally.idle_closed_by_server,
            "answers": dict(tally.idle_answers),
        },
        "anonymous_streams": {"held": tally.anonymous_held, "refused": dict(tally.anonymous_refused)},
        "signup_flood": dict(tally.signups),
        "catch_ups": {
            "json_pages": tally.catchup_pages,
            "json_mib": round(tally.catchup_bytes / 2**20, 1),
            "sse_from_start": tally.sse_catchups,
        },
        "rss_mib": {"after_setup": idle_before, "peak": peak_under_load, "bound": options.memory_bound_mib},
    }
    result["verdict"] = {
        "open_p99_within_1s": p99 is not None and p99 <= 1000,
        "nothing_lost": lost == 0 and repeated == 0 and out_of_order == 0 and tally.writes_ok > 0,
        "memory_within_bound": peak_under_load <= options.memory_bound_mib,
        "health_answered": not tally.health_failures and health.status_code == 200,
    }
    return result


def _kinds(count: int) -> list[int]:
    """40 % silent, 30 % slow head, 20 % withheld body, 10 % stream request with a body."""
    return [0] * (count * 4 // 10) + [1] * (count * 3 // 10) + [2] * (count * 2 // 10) + [3] * (count // 10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak --hostile", description=__doc__.split("\n\n")[0]
    )
    defaults = Options()
    for name in (
        "seconds",
        "idle",
        "anonymous",
        "subscribers",
        "openers",
        "rate",
        "big_pages",
        "signups",
        "catchups",
        "memory_bound_mib",
    ):
        kind = type(getattr(defaults, name))
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(defaults, name))
    parser.add_argument("--database-url")
    parser.add_argument("--out", type=Path, default=defaults.out)
    args = parser.parse_args(argv)
    options = Options(**vars(args))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(options))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["verdict"].values()) else 1
