"""``syncstream serve --workers N``: several processes behind one port, one stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson

from harness import Api, ServerProcess, Stream, unique


def test_workers_refuse_a_bus_that_cannot_cross_processes(tmp_path: Path) -> None:
    for bus in ([], ["--bus-url", "memory://"]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "syncstream.cli",
                "serve",
                "--workers",
                "2",
                "--port",
                "1",
                "--database-url",
                f"sqlite:///{tmp_path / 'w.db'}",
                *bus,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "--workers needs a bus that crosses processes" in result.stderr


async def test_two_workers_on_postgres_serve_one_stream(postgres_database: str) -> None:
    server = ServerProcess(database_url=postgres_database, workers=2)
    await asyncio.to_thread(server.start)
    try:
        api = Api(server.url)
        owner = (await api.sign_up()).api()
        org = await owner.ok("POST", "/organizations", 201, json={"name": "W", "slug": unique("w")})
        url = f"/organizations/{org['id']}/sync/stream?offset=now&live=sse"
        # Many connections: the kernel spreads them over both workers.
        streams = [Stream(owner.client, url, owner.headers()) for _ in range(8)]
        for stream in streams:
            await stream.__aenter__()
            await stream.until_offset()
        created = [
            (await owner.ok("POST", f"/organizations/{org['id']}/attachments", 201, json={"name": f"n{i}"}))[
                "id"
            ]
            for i in range(10)
        ]
        for stream in streams:
            got = []
            while len(got) < len(created):
                event = await stream.next(wait_seconds=30)
                assert event is not None
                got.append(orjson.loads(event.data)["entityId"])
            assert got == created
            await stream.close()
        await owner.aclose()
        await api.aclose()
    finally:
        await asyncio.to_thread(server.stop)
