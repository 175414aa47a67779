"""``syncstream login`` and ``logout``: sign in once, and let later commands (``tail``) use the token."""

from __future__ import annotations

import argparse
import sys

import httpx

from syncstream.client import ProblemError, SyncClient, Unauthorized
from syncstream.commands import CommandError
from syncstream.commands.credentials import forget_token, origin, save_token, stored_token
from syncstream.commands.passwords import read_password

__all__ = ["login", "logout"]


def _server(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CommandError(f"give the server's URL, such as http://127.0.0.1:8000, not {url!r}")
    return origin(url)


async def login(args: argparse.Namespace) -> int:
    server = _server(args.url)
    password = read_password(None, confirm=False, option=None)
    async with SyncClient(server) as client:
        try:
            answer = await client.sign_in(args.email, password)
        except Unauthorized:
            raise CommandError(f"{server} refused the sign-in: wrong email or password", code=1) from None
        except ProblemError as exc:
            raise CommandError(f"{server} refused the sign-in: {exc}", code=1) from None
        except httpx.HTTPError as exc:
            raise CommandError(f"cannot reach {server}: {type(exc).__name__}: {exc}", code=1) from None
    path = save_token(server, str(answer["token"]), args.email)
    print(f"Signed in to {server} as {args.email}; token stored in {path}", file=sys.stderr)
    return 0


async def logout(args: argparse.Namespace) -> int:
    server = _server(args.url)
    token = stored_token(server)
    if token is None:
        print(f"Not signed in to {server}", file=sys.stderr)
        return 0
    async with SyncClient(server, token) as client:
        try:
            await client.sign_out()
        except (ProblemError, httpx.HTTPError) as exc:
            # The token is forgotten either way; an expired one needs no server to end it.
            print(f"syncstream: the server did not end the session ({exc}); forgetting it", file=sys.stderr)
    forget_token(server)
    print(f"Signed out of {server}", file=sys.stderr)
    return 0
