"""The command line's parts that are more than argument parsing: checks before serving, reading a
password, the stored credentials of ``syncstream login``, and the user commands. :mod:`syncstream.cli`
parses the arguments and calls these."""

from __future__ import annotations


class CommandError(Exception):
    """A refusal the command line prints as one line (``syncstream: <message>``) with exit code ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
