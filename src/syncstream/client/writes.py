"""Signing in and writing through the REST API, with ``tx`` so the client recognises its own changes.

Every :class:`~syncstream.client.SyncClient` has a ``source_id`` (random, one per client object, like a
browser tab's); each write it makes carries ``tx = {transactionId: <new UUID>, sourceId: source_id}``,
which the server echoes in the write's stream message. :meth:`WritesMixin.is_own` then tells the
application that a change it receives is the echo of its own write (already applied optimistically, say).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from syncstream.client.rest import send_json
from syncstream.stream.messages import StreamMessage, TxInfo

__all__ = ["WritesMixin", "new_source_id"]


def new_source_id() -> str:
    """A fresh source ID: unique per client object (a process may run several)."""
    return f"py-{uuid.uuid4().hex[:16]}"


class WritesMixin:
    """Sign-in, sign-up, sign-out and create/update/delete for :class:`~syncstream.client.SyncClient`."""

    http: httpx.AsyncClient
    token: str | None
    source_id: str
    url: Callable[[str], httpx.URL]
    headers: Callable[[], dict[str, str]]

    # -- accounts --------------------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str) -> dict[str, Any]:
        """``POST /auth/sign-in``; the client uses the token from now on. Returns ``{"user", "token"}``.

        Raises :class:`~syncstream.client.Unauthorized` for wrong credentials, and
        :class:`~syncstream.client.ProblemError` with status 429 when sign-ins are rate limited.
        """
        return await self._authenticate("auth/sign-in", {"email": email, "password": password})

    async def sign_up(self, email: str, password: str, name: str) -> dict[str, Any]:
        """``POST /auth/sign-up``; the client uses the new account's token from now on."""
        return await self._authenticate("auth/sign-up", {"email": email, "password": password, "name": name})

    async def sign_out(self) -> None:
        """``POST /auth/sign-out``: the token stops working at once (its open streams end); forgotten here."""
        await send_json(self.http, "POST", self.url("auth/sign-out"), self.headers())
        self.token = None

    async def _authenticate(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await send_json(self.http, "POST", self.url(path), self.headers(), body)
        assert answer is not None, "sign-in and sign-up answer with a body"
        self.token = str(answer["token"])
        return answer

    # -- writes ---------------------------------------------------------------------------------------

    def new_tx(self, changed_field: str | None = None) -> TxInfo:
        """A ``tx`` for one write: a new transaction ID and this client's ``source_id``."""
        return TxInfo(transaction_id=uuid.uuid4().hex, source_id=self.source_id, changed_field=changed_field)

    def is_own(self, message: StreamMessage) -> bool:
        """Whether ``message`` is the echo of a write made by this client (its ``tx.sourceId``)."""
        return message.tx is not None and message.tx.source_id == self.source_id

    async def create(
        self, path: str, fields: Mapping[str, Any], *, tx: TxInfo | None = None
    ) -> dict[str, Any]:
        """``POST path`` (e.g. ``organizations/acme/attachments``, ``pages``) with ``tx``; the entity.

        Pass the same ``tx`` again to retry a create whose answer was lost: the server returns the first
        one's entity instead of writing a second.
        """
        return await self._write("POST", path, fields, tx or self.new_tx())

    async def update(
        self,
        path: str,
        fields: Mapping[str, Any],
        *,
        changed_field: str | None = None,
        tx: TxInfo | None = None,
    ) -> dict[str, Any]:
        """``PATCH path`` (e.g. ``organizations/acme/attachments/at_1``) with ``tx``; the entity.
        ``changed_field`` defaults to the field's name when ``fields`` holds exactly one."""
        if changed_field is None and len(fields) == 1:
            changed_field = next(iter(fields))
        return await self._write("PATCH", path, fields, tx or self.new_tx(changed_field))

    async def delete(self, path: str) -> None:
        """``DELETE path`` (e.g. ``organizations/acme/attachments/at_1``). The contract takes no ``tx`` on a
        delete, so its stream message is not recognisable by :meth:`is_own`."""
        await send_json(self.http, "DELETE", self.url(path), self.headers())

    async def _write(self, method: str, path: str, fields: Mapping[str, Any], tx: TxInfo) -> dict[str, Any]:
        body = {**fields, "tx": tx.to_wire()}
        answer = await send_json(self.http, method, self.url(path), self.headers(), body)
        assert answer is not None, "creates and updates answer with the entity"
        return answer
