"""User serialisation and creation, shared by the routes and the CLI."""

from __future__ import annotations

from typing import Any

from syncstream.db.schema import User
from syncstream.db.types import iso_ms


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "createdAt": iso_ms(user.created_at),
    }
