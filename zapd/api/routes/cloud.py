"""Meta WhatsApp Cloud API: the webhook (`/webhooks/cloud/{session_id}`) and template routes.

The webhook is unauthenticated by bearer token: Meta proves itself with the verify
token (GET) and the X-Hub-Signature-256 of every body (POST). A POST is answered 200
only once its raw body is committed; 401 for a missing or wrong signature (nothing
stored); 503 with Retry-After when the database cannot take it (Meta retries). The
body limit is the daemon's `max_body_bytes` (Meta's bodies are a few KiB).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import DBAPIError, OperationalError

from shared.enums import Engine, Role
from shared.errors import ErrorCode
from shared.protocol.sessions import CloudTemplate
from zapd.api.deps import Auth, DaemonDep, KernelDep
from zapd.api.errors import error_body
from zapd.connectors.cloud.webhook import SIGNATURE_HEADER
from zapd.errors import Conflict
from zapd.services.sessions import records as sessions

log = logging.getLogger("zapd.cloud")

router = APIRouter(tags=["cloud"])
RETRY_AFTER_SECONDS = 5


@router.get("/webhooks/cloud/{session_id}", response_class=PlainTextResponse)
async def verify_webhook(
    session_id: uuid.UUID,
    daemon: DaemonDep,
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=32)] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token", max_length=200)] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=200)] = None,
) -> PlainTextResponse:
    """Meta's subscription check: echo `hub.challenge` when `hub.verify_token` matches."""
    return PlainTextResponse(await daemon.cloud.verify(session_id, mode, token, challenge))


@router.post("/webhooks/cloud/{session_id}", response_model=None)
async def receive_webhook(
    session_id: uuid.UUID, request: Request, daemon: DaemonDep
) -> JSONResponse:
    """Store a signed body, answer 200, then process it (messages, statuses)."""
    body = await request.body()
    try:
        row_id = await daemon.cloud.store_webhook(
            session_id, body, request.headers.get(SIGNATURE_HEADER)
        )
    except (OperationalError, DBAPIError, TimeoutError, OSError) as exc:
        log.warning("cloud webhook for %s not stored: %s", session_id, type(exc).__name__)
        return JSONResponse(
            error_body(ErrorCode.DATABASE_UNAVAILABLE, "cannot store the event now; retry"),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if row_id is not None:
        daemon.cloud.schedule(row_id)
    return JSONResponse({"status": "duplicate" if row_id is None else "stored"})


@router.get("/api/v1/sessions/{session_id}/templates", response_model=list[CloudTemplate])
async def list_templates(
    session_id: uuid.UUID, principal: Auth, kernel: KernelDep, daemon: DaemonDep
) -> list[CloudTemplate]:
    """List the approved message templates of a Cloud API session's WABA (SUPERVISOR+)."""
    async with kernel.read() as db:
        row = await sessions.get(db, principal, session_id)
        principal.require(Role.SUPERVISOR)
        if row.engine != Engine.CLOUD:
            raise Conflict("templates exist only on Cloud API sessions", code=ErrorCode.NOT_CLOUD)
    found = await daemon.cloud.templates(session_id)
    return [CloudTemplate.from_graph(t) for t in found]
