"""Reading the server's refusals: problem documents (from a response or an ``error``
frame) and ``Retry-After``. A proxy in the way may answer with neither, so each falls
back to something the caller can still act on."""

from __future__ import annotations

import email.utils
import time

import httpx
import pydantic

from syncstream.stream.messages import Problem


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds from now, in either of its forms (seconds, HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def problem_from_response(response: httpx.Response) -> Problem:
    """The response's RFC 9457 body, or one made up from its status when it has none (a proxy's page)."""
    try:
        return Problem.model_validate_json(response.content)
    except pydantic.ValidationError:
        text = response.text.strip().replace("\n", " ")[:200]
        return Problem(
            type=f"http_{response.status_code}",
            title=response.reason_phrase,
            status=response.status_code,
            detail=text,
        )


def problem_from_frame(data: str) -> Problem:
    """The problem of an ``event: error`` frame; one made up if the frame is not one."""
    try:
        return Problem.model_validate_json(data)
    except pydantic.ValidationError:
        return Problem(type="unknown_error", title="Error", detail=data[:200])
