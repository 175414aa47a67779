"""A real ``syncstream serve`` in a subprocess, on 127.0.0.1, with its file-descriptor limit raised.

Like ``tests/harness.py``, but for load: the server is started with ``RLIMIT_NOFILE`` raised (in a
``preexec_fn``) so it can hold tens of thousands of streams, its log goes to the results folder, and it
exposes the process IDs whose CPU and memory the scenarios read (the supervisor's children with
``--workers N``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import procstat

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_BENCH_URL = "postgresql://postgres@127.0.0.1:5432/syncstream_bench"
REDIS_BUS_URL = "redis://127.0.0.1:6379/0"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def reset_postgres_database(url: str = POSTGRES_BENCH_URL) -> None:
    """Drop and create the benchmark's own database (never the shared ``test`` one)."""
    import asyncpg

    name = url.rsplit("/", 1)[1]
    if name in ("test", "postgres", "template0", "template1") or not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to reset database {name!r}")
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


#: The load generators are a few users on 127.0.0.1 holding thousands of streams: the per-user and
#: per-address stream quotas (tens, for one person's devices) are lifted for them.
UNLIMITED_QUOTAS = {
    "SYNCSTREAM_STREAMS_PER_USER": "1000000",
    "SYNCSTREAM_STREAMS_PER_ADDRESS": "1000000",
    # The bench signs its users up from one address: sign-up's per-address limit is not what it measures.
    "SYNCSTREAM_SIGN_UPS_PER_ADDRESS": "1000000",
}


def _preexec() -> None:
    procstat.raise_fd_limit()
    os.setsid()  # its own process group, so stopping it reaches every worker


class Server:
    """One running ``syncstream serve``."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        bus_url: str | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        module: str = "syncstream.cli",
    ) -> None:
        self.module = module
        self.database_url = database_url
        self.bus_url = bus_url
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself, or its worker children."""
        if self.workers == 1:
            return [self.pid]
        workers = []
        for pid in procstat.children(self.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline and b"semaphore_tracker" not in cmdline:
                workers.append(pid)
        return workers

    def all_pids(self) -> list[int]:
        return procstat.tree(self.pid)

    async def start(self, within: float = 60.0) -> Server:
        self._spawn()
        await self._wait_ready(within)
        return self

    def _spawn(self) -> None:
        command = [sys.executable, "-m", self.module, "serve", "--host", HOST, "--port", str(self.port)]
        command += ["--database-url", self.database_url, "--workers", str(self.workers)]
        command += ["--log-level", "warning"]
        if self.bus_url:
            command += ["--bus-url", self.bus_url]
        env = {**os.environ, **UNLIMITED_QUOTAS, **self.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_preexec
            )

    async def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited at start; log: {self.log_path}\n{self.log_tail()}")
                try:
                    if (await client.get(self.url + "/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"server not healthy within {within} s; log: {self.log_path}")
        if self.workers > 1:
            await self._wait_workers_settled(deadline)

    async def _wait_workers_settled(self, deadline: float) -> None:
        """With several workers /health answers once one is up: wait for all, and for their start-up
        CPU to stop (imports, migrations), so that it is not counted in a measurement."""
        previous: dict[int, float] = {}
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            now = {pid: procstat.cpu_seconds(pid) for pid in pids}
            settled = previous.keys() == now.keys() and all(now[p] - previous[p] < 0.02 for p in pids)
            if len(pids) >= self.workers and settled:
                return
            previous = now
            await asyncio.sleep(0.3)
        raise RuntimeError(f"{self.workers} workers did not settle; log: {self.log_path}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, within: float = 20.0) -> int | None:
        process = self.process
        if process is None:
            return None
        self.process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, within)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        return process.returncode
