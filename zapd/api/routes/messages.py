"""/api/v1/messages: agents (and scripts) writing to customers, through the outbox.

`POST` answers 201 with the queued message (or stored note); repeating a request with
the same `Idempotency-Key` answers 200 with that same message, `Idempotent-Replayed:
true`, and queues nothing; the same key with another request answers 422
ERR_IDEMPOTENCY_MISMATCH. `GET /{id}/status-history` pages through its delivery statuses.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response
from sqlalchemy.exc import IntegrityError

from shared.errors import ErrorCode
from shared.protocol.common import Page
from shared.protocol.messages import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_MAX,
    REPLAYED_HEADER,
    MessageOut,
    MessageSend,
)
from shared.protocol.tickets import StatusChangeOut
from zapd.api.deps import ActorDep, Auth, DaemonDep, KernelDep, PageDep
from zapd.errors import Conflict
from zapd.services.conversations import messages
from zapd.services.tickets import queries as tickets

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


@router.post("", response_model=MessageOut, status_code=201)
async def send_message(
    body: MessageSend,
    actor: ActorDep,
    kernel: KernelDep,
    daemon: DaemonDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX,
            description="repeat a request safely: the same key answers the same message",
        ),
    ] = None,
) -> MessageOut:
    """Send a message to a ticket's customer, or to a phone on a session (SUPERVISOR+)."""
    for attempt in range(2):
        try:
            async with kernel.tx() as db:
                sent = await messages.send(db, actor, body, idempotency_key)
                out = MessageOut.model_validate(sent.message)
            break
        except Conflict as exc:
            if exc.code != ErrorCode.WINDOW_CLOSED:
                raise
            names = await daemon.cloud.known_templates(exc.details["session_id"])
            listed = ", ".join(names) if names else "none approved, or the list is unavailable"
            raise Conflict(f"{exc.message}; templates: {listed}", code=exc.code) from None
        except IntegrityError:
            # A concurrent request with the same key (or creating the same client)
            # committed first: the second try finds what it made.
            if attempt == 1:
                raise Conflict("a concurrent request collided; try again") from None
    if not sent.created:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    return out


@router.get("/{message_id}/status-history", response_model=Page[StatusChangeOut])
async def message_status_history(
    message_id: uuid.UUID, principal: Auth, kernel: KernelDep, page: PageDep
) -> Page[StatusChangeOut]:
    """Page through the delivery statuses a message reached (who may see its ticket)."""
    async with kernel.read() as db:
        rows, cursor = await tickets.status_history(db, principal, message_id, page)
        return Page[StatusChangeOut](
            items=[StatusChangeOut.model_validate(r) for r in rows], next_cursor=cursor
        )
