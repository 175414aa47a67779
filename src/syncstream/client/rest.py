"""The client's plain requests (sign-in, writes): one JSON request, its answer, or a typed error.

Writes are not retried by themselves: a create is safe to repeat only with the same ``tx.transactionId``
(the server then answers with the first one's entity), which the caller controls by passing the same
:class:`~syncstream.client.TxInfo` again.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import orjson

from syncstream.client.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ProblemError,
    ProtocolError,
    Unauthorized,
)
from syncstream.client.refusals import problem_from_response

__all__ = ["send_json"]

_ERRORS: Final[dict[int, type[ProblemError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


async def send_json(
    http: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Send one request; the JSON object answered (None for 204), or the server's problem raised as a
    :class:`~syncstream.client.ProblemError` (its subclass for 400/401/403/404)."""
    content = orjson.dumps(body) if body is not None else None
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    response = await http.request(method, url, content=content, headers=headers)
    if response.status_code >= 400:
        problem = problem_from_response(response)
        error = _ERRORS.get(response.status_code, ProblemError)
        raise error(str(problem), problem=problem, url=str(url))
    if response.status_code == 204 or not response.content:
        return None
    try:
        value = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the answer is not JSON: {exc}", url=str(url)) from exc
    if not isinstance(value, dict):
        raise ProtocolError("the answer is not a JSON object", url=str(url))
    return value
