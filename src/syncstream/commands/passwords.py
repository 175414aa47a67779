"""Where a command gets a password: the command line, the environment, or a prompt on the terminal."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Final

from syncstream.commands import CommandError

__all__ = ["PASSWORD_VARIABLE", "read_password"]

#: Read when ``--password`` is absent: keeps the password out of shell history and ``ps``.
PASSWORD_VARIABLE: Final = "SYNCSTREAM_PASSWORD"


def read_password(
    given: str | None, *, confirm: bool, minimum: int = 0, option: str | None = "--password"
) -> str:
    """``given`` (``--password``) if set, else ``$SYNCSTREAM_PASSWORD``, else a prompt (twice with
    ``confirm``) when stdin is a terminal; otherwise a :class:`CommandError` saying how to give one
    (``option`` names the command's own flag, if it has one)."""
    password = given if given is not None else os.environ.get(PASSWORD_VARIABLE) or None
    if password is None:
        if not sys.stdin.isatty():
            give = f"give {option}, " if option else ""
            raise CommandError(
                f"no password: {give}set {PASSWORD_VARIABLE}, or run in a terminal to be asked"
            )
        try:
            password = getpass.getpass("Password: ")
            if confirm and getpass.getpass("Password (again): ") != password:
                raise CommandError("the two passwords differ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            raise CommandError("no password given", code=130) from None
    if len(password) < minimum:
        raise CommandError(f"the password must have at least {minimum} characters")
    return password
