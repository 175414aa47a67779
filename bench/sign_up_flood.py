"""``python -m bench.sign_up_flood [--clients 16] [--seconds 20] [--sign-ups-per-address N]``

A sign-up flood at the default argon2id cost (64 MiB, t=3) against a server of its own (SQLite in a
temporary directory): ``--clients`` clients sign up in a loop for ``--seconds`` from one address
while one client signs in every half second. By default the address's sign-up limit is lifted, so
that the bounded hashing pool alone is measured. Prints the server's RSS (idle and peak), the answers
by status and the sign-in latency with and without the flood (docs/reliability.md has the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import procstat
from bench.server import Server

PASSWORD = "correct-horse"


async def flood(clients: int, seconds: float, sign_ups_per_address: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="syncstream-flood-"))
    env = {
        "SYNCSTREAM_PASSWORD_TIME_COST": "3",
        "SYNCSTREAM_PASSWORD_MEMORY_KIB": "65536",
        "SYNCSTREAM_SIGN_UPS_PER_ADDRESS": str(sign_ups_per_address),
    }
    server = await Server(f"sqlite:///{folder / 'flood.db'}", folder / "server.log", env=env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            me = {"email": "me@example.test", "password": PASSWORD}
            await client.post("/auth/sign-up", json={**me, "name": "Me"})

            async def sign_in() -> tuple[float, int]:
                started = time.perf_counter()
                response = await client.post("/auth/sign-in", json=me)
                return (time.perf_counter() - started) * 1000, response.status_code

            quiet = [(await sign_in())[0] for _ in range(6)]
            idle = peak = procstat.rss_bytes(server.pid) / 2**20
            statuses: dict[int, int] = {}
            during: list[tuple[float, int]] = []
            stop = time.monotonic() + seconds

            async def one_flooder() -> None:
                while time.monotonic() < stop:
                    body = {"email": f"{uuid.uuid4().hex}@example.test", "password": PASSWORD, "name": "F"}
                    response = await client.post("/auth/sign-up", json=body)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            async def one_signer() -> None:
                nonlocal peak
                while time.monotonic() < stop:
                    during.append(await sign_in())
                    peak = max(peak, procstat.rss_bytes(server.pid) / 2**20)
                    await asyncio.sleep(0.5)

            await asyncio.gather(one_signer(), *(one_flooder() for _ in range(clients)))
        ok = [ms for ms, status in during if status == 200]
        print(f"server RSS: idle {idle:.0f} MiB, peak {peak:.0f} MiB")
        print(f"sign-ups by status: {dict(sorted(statuses.items()))}")
        print(f"sign-in without the flood: median {statistics.median(quiet):.0f} ms")
        print(
            f"sign-in during the flood: {len(ok)}/{len(during)} answered 200, "
            f"median {statistics.median(ok):.0f} ms, max {max(ok):.0f} ms"
        )
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sign-ups-per-address", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(flood(args.clients, args.seconds, args.sign_ups_per_address))


if __name__ == "__main__":
    main()
