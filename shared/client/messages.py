"""zapd client endpoints: sending messages, media files, and the outbox behind them.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order, body_of, parse
from shared.client.lazy import protocol
from shared.enums import OutboxState

if TYPE_CHECKING:
    from shared.protocol import common, media, messages, tickets
else:
    media = protocol("media")
    messages = protocol("messages")
    tickets = protocol("tickets")


class MessageEndpoints(ClientCore):
    """Sending messages, media files, and the outbox behind them."""

    # ----------------------------------------------------------------- messages, media

    async def send_message(
        self, body: messages.MessageSend, *, idempotency_key: str | None = None
    ) -> tickets.MessageOut:
        """Send a message (or store an internal note) through the outbox.

        With an `idempotency_key`, repeating the call answers the same message and
        queues nothing new: safe to retry after a timeout.
        """
        headers = {messages.IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        response = await self.request(
            "POST", f"{API}/messages", json=body_of(body), headers=headers
        )
        return parse(tickets.MessageOut, response)

    async def upload_media(
        self,
        content: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        company_id: uuid.UUID | None = None,
    ) -> media.MediaOut:
        """Upload a file (its type is detected from the content by the daemon)."""
        response = await self.request(
            "POST",
            f"{API}/media",
            files={media.UPLOAD_FIELD: (filename, content, content_type)},
            params={"company_id": company_id},
        )
        return parse(media.MediaOut, response)

    async def media_meta(self, media_id: uuid.UUID) -> media.MediaOut:
        """Show a file's type, size, digest and name."""
        return await self._get(media.MediaOut, f"{API}/media/{media_id}/meta")

    async def download_media(self, media_id: uuid.UUID) -> bytes:
        """Fetch a file's bytes."""
        return (await self.request("GET", f"{API}/media/{media_id}")).content

    # ----------------------------------------------------------------- outbox

    async def list_outbox(
        self,
        *,
        state: OutboxState | None = None,
        session_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[messages.OutboxOut]:
        """List one page of outbox entries, newest first by default (ADMIN)."""
        return await self._get_page(
            messages.OutboxOut,
            f"{API}/outbox",
            state=state,
            session_id=session_id,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_outbox(self, outbox_id: uuid.UUID) -> messages.OutboxOut:
        """Show one outbox entry (ADMIN)."""
        return await self._get(messages.OutboxOut, f"{API}/outbox/{outbox_id}")

    async def retry_outbox(self, outbox_id: uuid.UUID) -> messages.OutboxOut:
        """Send a DEAD or waiting entry again now, attempts reset (ADMIN)."""
        return await self._send(messages.OutboxOut, "POST", f"{API}/outbox/{outbox_id}/retry")

    async def drop_outbox(self, outbox_id: uuid.UUID) -> messages.OutboxOut:
        """Give up on a PENDING or DEAD entry; its message becomes FAILED (ADMIN)."""
        return await self._send(messages.OutboxOut, "POST", f"{API}/outbox/{outbox_id}/drop")
