"""Keyset paging of REST lists: ``?cursor=&limit=`` → ``{"items", "nextCursor", "hasMore"}``.

A list is ordered by ``(created_at, id)``, both immutable, so a cursor is the last item's
pair: the next page starts strictly after it, whatever was created or deleted meanwhile
(nothing is skipped or repeated, unlike ``OFFSET``), and each page costs one index range
scan of ``limit + 1`` rows however deep the client is. The cursor is opaque to clients
(base64url of the pair); a malformed one is a 400 naming it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

from syncstream import problems
from syncstream.db.types import iso_ms

#: The most items a page holds, and what a client that does not say gets: the whole list
#: for any list this size or smaller, as before paging existed (a client that knows
#: nothing of ``hasMore`` keeps working), and a bound on what one request reads.
MAX_LIMIT = 1000
DEFAULT_LIMIT = MAX_LIMIT


@dataclass(frozen=True, slots=True)
class PageCursor:
    created_at: datetime
    id: str


def encode_cursor(created_at: datetime, id_: str) -> str:
    raw = f"{iso_ms(created_at)}|{id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None) -> PageCursor | None:
    """The position a ``cursor`` parameter names; None for none; 400 if it is not one of ours."""
    if raw is None:
        return None
    try:
        if len(raw) > 200:
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        stamp, sep, id_ = text.partition("|")
        if not sep or not id_ or not stamp.endswith("Z"):
            raise ValueError("not a cursor")
        created_at = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise problems.bad_request("cursor: not a cursor this list gave out") from exc
    return PageCursor(created_at, id_)


def page_query(
    query: Select[Any],
    created_at: ColumnElement[Any],
    id_: ColumnElement[Any],
    cursor: PageCursor | None,
    limit: int,
) -> Select[Any]:
    """``query`` ordered by ``(created_at, id)``, after ``cursor``, one row more than ``limit``
    (that row only says whether there is more)."""
    if cursor is not None:
        query = query.where(
            or_(created_at > cursor.created_at, and_(created_at == cursor.created_at, id_ > cursor.id))
        )
    return query.order_by(created_at, id_).limit(limit + 1)


def page_json(rows: list[Any], limit: int, render: Any) -> dict[str, Any]:
    """The page of ``rows`` (read by :func:`page_query`): items, and where the next one starts."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if has_more else None
    return {"items": [render(r) for r in rows], "nextCursor": next_cursor, "hasMore": has_more}
