"""The stream contract as the client sees it on the wire: a stream's identity, cursor order, the request
for a position, and what a refusal means.

Kept apart from :mod:`syncstream.client.follow` (which decides *when* to connect) so that both the
follower and one-off requests (:meth:`SyncClient.fetch_page`) read answers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

from syncstream.client.errors import BadRequest, Forbidden, NotFound, ProblemError, Unauthorized
from syncstream.client.refusals import problem_from_response, retry_after_seconds
from syncstream.stream.messages import Problem

__all__ = ["Transient", "is_newer", "raise_for_refusal", "stream_key"]

#: Query parameters the follower owns; they are not part of a stream's identity.
_POSITION_PARAMS: Final = frozenset({"offset", "live", "limit"})
#: Statuses worth retrying: the server (or a proxy) is busy, restarting or briefly unable.
_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_FATAL: Final[dict[int, type[ProblemError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


def stream_key(url: httpx.URL) -> str:
    """The identity of a stream for cursor storage: the URL without the position parameters (``offset``,
    ``live``, ``limit``), with the rest sorted, so that SSE and JSON mode of one stream share a cursor
    and two filters (``entityTypes``) do not."""
    params = sorted((k, v) for k, v in url.params.multi_items() if k not in _POSITION_PARAMS)
    return str(url.copy_with(params=params, fragment=None))


def is_newer(candidate: str, cursor: str | None) -> bool:
    """Activity IDs are decimal integers in commit order: compared as integers, never as strings."""
    return cursor is None or int(candidate) > int(cursor)


@dataclass
class Transient(Exception):
    """Internal: a refusal worth retrying (429/5xx), with the server's ``Retry-After`` in seconds."""

    problem: Problem
    retry_after: float | None

    def __str__(self) -> str:
        return str(self.problem)


def raise_for_refusal(response: httpx.Response) -> Problem:
    """Classify a non-200 answer: raise :class:`Transient` for what is worth retrying, the matching
    :class:`~syncstream.client.ProblemError` for what is not, and return the problem of a 409
    ``must_refetch`` (the caller decides how to start over)."""
    problem = problem_from_response(response)
    status = response.status_code
    if status == 409 and problem.type == "must_refetch":
        return problem
    if status in _TRANSIENT_STATUSES:
        raise Transient(problem, retry_after_seconds(response.headers.get("retry-after")))
    error_type = _FATAL.get(status, ProblemError)
    raise error_type(str(problem), problem=problem, url=str(response.request.url))
