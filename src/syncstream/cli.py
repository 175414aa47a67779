"""``syncstream``: run the server and administer it from the command line."""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson

from syncstream.config import Settings
from syncstream.logs import logging_config


def _choose_cross_process_bus() -> str | None:
    """With several workers, every process must hear every other's writes. Without an
    explicit bus, a PostgreSQL database doubles as one (LISTEN/NOTIFY); an explicit
    memory:// bus, or SQLite without a bus, is refused rather than serving each client
    only the writes of its own worker."""
    settings = Settings.from_env()
    bus_given = bool(os.environ.get("SYNCSTREAM_BUS_URL"))
    if bus_given and settings.bus_url.startswith(("postgres", "redis", "nats")):
        return None
    if not bus_given and settings.database_url.startswith(("postgresql", "postgres:")):
        os.environ["SYNCSTREAM_BUS_URL"] = settings.database_url
        return None
    return (
        "--workers needs a bus that crosses processes: memory:// only reaches its own process, so each "
        "worker would serve a partial stream. Give --bus-url postgresql://…, redis://… or nats://… "
        "(with a PostgreSQL database and no --bus-url, the database itself is the bus)."
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Workers are separate processes that build the app from the environment.
    for name, value in (
        ("SYNCSTREAM_DATABASE_URL", args.database_url),
        ("SYNCSTREAM_BUS_URL", args.bus_url),
        *((env, getattr(args, dest)) for dest, env in _ADMISSION_FLAGS.items()),
    ):
        if value:
            os.environ[name] = str(value)
    if args.workers > 1:
        problem = _choose_cross_process_bus()
        if problem:
            print(f"syncstream: {problem}", file=sys.stderr)
            return 2
    log_config = logging_config(copy.deepcopy(uvicorn.config.LOGGING_CONFIG), args.log_level)
    uvicorn.run(
        "syncstream.app:create_app",
        log_config=log_config,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        # uvicorn's protocols with request head and body deadlines (syncstream.protocols).
        http=f"syncstream.protocols:{_PROTOCOLS[args.http]}",
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=10,
    )
    return 0


async def _user_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from syncstream.auth.passwords import configure as configure_passwords
    from syncstream.auth.passwords import hash_password
    from syncstream.auth.sessions import create_session
    from syncstream.db.engine import Database
    from syncstream.db.migrate import upgrade
    from syncstream.db.schema import User
    from syncstream.db.types import new_id, utcnow
    from syncstream.modules.users.service import user_json

    if len(args.password) < 8:
        print("syncstream: the password must have at least 8 characters", file=sys.stderr)
        return 2
    settings = Settings.from_env().with_overrides(database_url=args.database_url)
    configure_passwords(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
    database = Database.connect(settings.database_url)
    try:
        await upgrade(database)
        async with AsyncSession(database.writer, expire_on_commit=False) as session, session.begin():
            email = args.email.lower()
            if await session.scalar(select(User.id).where(User.email == email)) is not None:
                print(f"syncstream: a user with email {email!r} exists already", file=sys.stderr)
                return 1
            user = User(
                id=new_id("usr"),
                email=email,
                name=args.name or email.split("@")[0],
                password_hash=await hash_password(args.password),
                role="admin" if args.admin else "user",
                created_at=utcnow(),
            )
            session.add(user)
            await session.flush()
            token = create_session(session, user.id)
    finally:
        await database.dispose()
    print(orjson.dumps({"user": user_json(user), "token": token}).decode())
    return 0


#: ``serve`` flags (their ``dest``) that only set an environment variable, read by every worker.
_ADMISSION_FLAGS = {
    "head_timeout": "SYNCSTREAM_HEAD_TIMEOUT_SECONDS",
    "body_timeout": "SYNCSTREAM_BODY_TIMEOUT_SECONDS",
    "streams_per_user": "SYNCSTREAM_STREAMS_PER_USER",
    "streams_per_address": "SYNCSTREAM_STREAMS_PER_ADDRESS",
    "max_streams": "SYNCSTREAM_MAX_STREAMS",
}
_PROTOCOLS = {"httptools": "HttpToolsProtocol", "h11": "H11Protocol"}


def _parse_before(raw: str) -> datetime:
    """An ISO 8601 time, or an age such as ``7d``, ``12h``, ``30m``."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    if raw[-1:] in units and raw[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[raw[-1]]: int(raw[:-1])})
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _prune(args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import AsyncSession

    from syncstream.activities import log
    from syncstream.db.engine import Database
    from syncstream.db.migrate import upgrade

    try:
        before = _parse_before(args.before)
    except ValueError:
        print(
            f"syncstream: --before takes an ISO 8601 time or an age like 7d, got {args.before!r}",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env().with_overrides(database_url=args.database_url)
    database = Database.connect(settings.database_url)
    try:
        await upgrade(database)
        async with AsyncSession(database.writer) as session, session.begin():
            deleted, mark = await log.prune(session, before)
    finally:
        await database.dispose()
    print(orjson.dumps({"deleted": deleted, "prunedThrough": str(mark)}).decode())
    return 0


def _tail(args: argparse.Namespace) -> int:
    from syncstream.tail import run

    return run(args.url, token=args.token, offset=args.offset, json_output=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", help="sqlite:///path.db (default ./syncstream.db) or postgresql://…")
    serve.add_argument("--bus-url", help="memory:// (default), postgresql://…, redis://…, nats://…")
    serve.add_argument("--workers", type=int, default=1, help="server processes (needs a cross-process bus)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False)
    serve.add_argument(
        "--http", choices=sorted(_PROTOCOLS), default="httptools", help="HTTP parser (default httptools)"
    )
    limits = serve.add_argument_group("admission (defaults from the environment, see the README)")
    limits.add_argument("--head-timeout", type=float, metavar="S", help="seconds for a request head (20)")
    limits.add_argument("--body-timeout", type=float, metavar="S", help="seconds for a request body (60)")
    limits.add_argument("--streams-per-user", type=int, metavar="N", help="open streams per user (32)")
    limits.add_argument("--streams-per-address", type=int, metavar="N", help="per client address (64)")
    limits.add_argument(
        "--max-streams", type=int, metavar="N", help="per process (open-file limit less a reserve)"
    )
    serve.set_defaults(run=_serve)

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    create = user.add_parser("create", help="create a user and print it with a token")
    create.add_argument("email")
    create.add_argument("--password", required=True)
    create.add_argument("--name")
    create.add_argument("--admin", action="store_true", help="make a system admin")
    create.add_argument("--database-url")
    create.set_defaults(run=lambda a: asyncio.run(_user_create(a)))

    activities = commands.add_parser("activities", help="manage the activity log").add_subparsers(
        dest="activities_command", required=True
    )
    prune = activities.add_parser("prune", help="delete old activities (clients behind get must_refetch)")
    prune.add_argument("--before", required=True, help="ISO 8601 time, or an age such as 30d")
    prune.add_argument("--database-url")
    prune.set_defaults(run=lambda a: asyncio.run(_prune(a)))

    tail = commands.add_parser("tail", help="follow a stream in the terminal, resuming after drops")
    tail.add_argument(
        "url", help="a stream URL: http://…/organizations/ORG/sync/stream or http://…/pages/stream"
    )
    tail.add_argument("--token", help="bearer token (default: $SYNCSTREAM_TOKEN)")
    tail.add_argument(
        "--offset", help="where to start: -1 (all history, the default), now, or an activity ID"
    )
    tail.add_argument("--json", action="store_true", help="print each message as one JSON line, nothing else")
    tail.set_defaults(run=_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
