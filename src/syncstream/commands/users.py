"""``syncstream user create``: a user (or a system admin) made straight in the database."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from syncstream.commands import CommandError
from syncstream.commands.passwords import read_password
from syncstream.commands.preflight import check_urls, describe_database, reason
from syncstream.config import Settings
from syncstream.db.engine import Database

__all__ = ["MIN_PASSWORD", "user_create"]

MIN_PASSWORD = 8


def _existing_sqlite_file(database_url: str) -> None:
    """A SQLite URL must name a file that exists: creating one here would leave the user in a database
    no server reads (the usual cause: running the command from another directory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).resolve()
    if not path.is_file():
        raise CommandError(
            f"no database at {path} (from {database_url}): start the server once (syncstream serve) "
            "to create it, or pass --database-url with the server's database",
            code=1,
        )


async def _has_schema(database: Database, database_url: str) -> None:
    try:
        async with database.reader.connect() as connection:
            has_users = await connection.run_sync(lambda sync: inspect(sync).has_table("users"))
    except (DBAPIError, OSError) as exc:
        raise CommandError(
            f"cannot reach the database {describe_database(database_url)}: {reason(exc)}", code=1
        ) from None
    if not has_users:
        raise CommandError(
            f"the database {describe_database(database_url)} has no syncstream schema: start the server "
            "on it once (syncstream serve --database-url …), or pass the server's --database-url",
            code=1,
        )


async def user_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from syncstream.auth.passwords import configure as configure_passwords
    from syncstream.auth.passwords import hash_password
    from syncstream.auth.sessions import create_session
    from syncstream.db.migrate import upgrade
    from syncstream.db.schema import User
    from syncstream.db.types import new_id, utcnow
    from syncstream.modules.users.service import user_json

    settings = Settings.from_env().with_overrides(database_url=args.database_url)
    check_urls(settings.database_url, "memory://")
    _existing_sqlite_file(settings.database_url)
    password = read_password(args.password, confirm=True, minimum=MIN_PASSWORD)
    configure_passwords(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
    database = Database.connect(settings.database_url)
    try:
        await _has_schema(database, settings.database_url)
        await upgrade(database)  # an older schema is brought up to date, as the server would
        async with AsyncSession(database.writer, expire_on_commit=False) as session, session.begin():
            email = args.email.lower()
            if await session.scalar(select(User.id).where(User.email == email)) is not None:
                raise CommandError(f"a user with email {email!r} exists already", code=1)
            user = User(
                id=new_id("usr"),
                email=email,
                name=args.name or email.split("@")[0],
                password_hash=await hash_password(password),
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
