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

from syncstream.commands import CommandError
from syncstream.config import Settings
from syncstream.logs import logging_config

#: Where ``login`` and ``logout`` go without a URL: what ``serve`` listens on by default.
DEFAULT_SERVER = "http://127.0.0.1:8000"


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
    from syncstream.commands.preflight import check_serve

    settings = Settings.from_env()
    check_serve(settings.database_url, settings.bus_url)
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
    from syncstream.commands.users import user_create

    return await user_create(args)


async def _login(args: argparse.Namespace) -> int:
    from syncstream.commands.login import login

    return await login(args)


async def _logout(args: argparse.Namespace) -> int:
    from syncstream.commands.login import logout

    return await logout(args)


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


async def _capture(args: argparse.Namespace) -> int:
    """``capture status``: the types whose triggers are in place; ``capture disable``: drop
    them now (a server started with ``SYNCSTREAM_CAPTURE=on`` installs them again)."""
    from syncstream._capture import installed_types, set_capture
    from syncstream.db.engine import Database

    settings = Settings.from_env().with_overrides(database_url=args.database_url)
    database = Database.connect(settings.database_url)
    try:
        if args.capture_command == "disable":
            await set_capture(database, [])
        async with database.writer.connect() as conn:
            types = await conn.run_sync(installed_types)
    finally:
        await database.dispose()
    print(orjson.dumps({"capture": "on" if types else "off", "entityTypes": types}).decode())
    return 0


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

    return run(
        args.url, token=args.token, offset=args.offset, json_output=args.json, max_retries=args.max_retries
    )


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
    create.add_argument(
        "--password",
        help="at least 8 characters (default: $SYNCSTREAM_PASSWORD, else asked for on the terminal)",
    )
    create.add_argument("--name")
    create.add_argument("--admin", action="store_true", help="make a system admin")
    create.add_argument(
        "--database-url",
        help="the server's database (default: $SYNCSTREAM_DATABASE_URL, else ./syncstream.db)",
    )
    create.set_defaults(run=lambda a: asyncio.run(_user_create(a)))

    activities = commands.add_parser("activities", help="manage the activity log").add_subparsers(
        dest="activities_command", required=True
    )
    prune = activities.add_parser("prune", help="delete old activities (clients behind get must_refetch)")
    prune.add_argument("--before", required=True, help="ISO 8601 time, or an age such as 30d")
    prune.add_argument("--database-url")
    prune.set_defaults(run=lambda a: asyncio.run(_prune(a)))

    capture = commands.add_parser(
        "capture",
        help="change capture in the database (docs/capture.md); enable it with SYNCSTREAM_CAPTURE=on",
    ).add_subparsers(dest="capture_command", required=True)
    for name, text in (("status", "which entity types are captured"), ("disable", "drop the triggers now")):
        command = capture.add_parser(name, help=text)
        command.add_argument("--database-url")
        command.set_defaults(run=lambda a: asyncio.run(_capture(a)))

    tail = commands.add_parser("tail", help="follow a stream in the terminal, resuming after drops")
    tail.add_argument(
        "url", help="a stream URL: http://…/organizations/ORG/sync/stream or http://…/pages/stream"
    )
    tail.add_argument(
        "--token", help="bearer token (default: $SYNCSTREAM_TOKEN, else the one `syncstream login` stored)"
    )
    tail.add_argument(
        "--offset", help="where to start: -1 (all history, the default), now, or an activity ID"
    )
    tail.add_argument("--json", action="store_true", help="print each message as one JSON line, nothing else")
    tail.add_argument(
        "--max-retries",
        type=_non_negative,
        metavar="N",
        help="give up (exit 1) after N consecutive failed reconnection attempts (default: retry for ever)",
    )
    tail.set_defaults(run=_tail)

    login = commands.add_parser("login", help="sign in and store the token for later commands (tail)")
    login.add_argument(
        "url", nargs="?", default=DEFAULT_SERVER, help=f"the server (default {DEFAULT_SERVER})"
    )
    login.add_argument("--email", required=True)
    login.set_defaults(run=lambda a: asyncio.run(_login(a)))
    logout = commands.add_parser("logout", help="end the stored session and forget its token")
    logout.add_argument(
        "url", nargs="?", default=DEFAULT_SERVER, help=f"the server (default {DEFAULT_SERVER})"
    )
    logout.set_defaults(run=lambda a: asyncio.run(_logout(a)))
    return parser


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except CommandError as exc:
        print(f"syncstream: {exc}", file=sys.stderr)
        return exc.code
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
