"""Argon2id password hashes, computed off the event loop (each takes tens of ms by design)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verifying against this when the email is unknown makes sign-in take as long for a
# missing account as for a wrong password: no timing oracle for which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def configure(*, time_cost: int, memory_kib: int) -> None:
    """Set the cost of new hashes (existing hashes carry their own parameters and keep
    verifying). The defaults are argon2-cffi's RFC 9106 profile; test suites lower them."""
    global _hasher, _DUMMY_HASH
    if (time_cost, memory_kib) == (_hasher.time_cost, _hasher.memory_cost):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    _DUMMY_HASH = _hasher.hash("not-a-real-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)
