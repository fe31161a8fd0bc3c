"""/api/v1/sandbox: drive the simulated WhatsApp network (demo and tests only).

Everything here acts on sessions whose engine is the sandbox; other sessions answer
409. Customers' messages injected here go through the same inbound pipeline as real
ones.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from shared.enums import Engine, Role
from shared.errors import ErrorCode
from shared.protocol.sessions import (
    SandboxDelivered,
    SandboxEnterCode,
    SandboxInbound,
    SandboxInboundOut,
    SandboxScan,
)
from zapd.api.deps import Auth, DaemonDep
from zapd.connectors.base import PairingError, SendError
from zapd.errors import Conflict, ValidationFailed
from zapd.kernel.context import Kernel
from zapd.kernel.principal import Principal
from zapd.services.sessions import records as sessions

router = APIRouter(prefix="/api/v1/sandbox", tags=["sandbox"])


async def _sandbox_session(kernel: Kernel, principal: Principal, session_id: uuid.UUID) -> None:
    async with kernel.read() as db:
        row = await sessions.get(db, principal, session_id)
        principal.require(Role.ADMIN)
        if row.engine != Engine.SANDBOX:
            raise Conflict("not a sandbox session", code=ErrorCode.NOT_SANDBOX)


@router.post("/{session_id}/scan")
async def scan(
    session_id: uuid.UUID, principal: Auth, daemon: DaemonDep, body: SandboxScan
) -> dict[str, str]:
    """Simulate a phone scanning the session's QR code; returns the linked number."""
    await _sandbox_session(daemon.kernel, principal, session_id)
    try:
        phone = await daemon.sandbox.scan(session_id, body.phone)
    except SendError as exc:
        raise Conflict(str(exc), code=ErrorCode.NO_QR) from None
    except ValueError as exc:
        raise ValidationFailed(f"phone: {exc}") from None
    return {"phone": phone}


@router.post("/{session_id}/pair")
async def enter_code(
    session_id: uuid.UUID, principal: Auth, daemon: DaemonDep, body: SandboxEnterCode
) -> dict[str, str]:
    """Simulate the phone's owner typing the session's pairing code; returns the number."""
    await _sandbox_session(daemon.kernel, principal, session_id)
    try:
        phone = await daemon.sandbox.enter_code(session_id, body.code)
    except PairingError as exc:
        raise Conflict(str(exc), code=ErrorCode.PAIRING_REFUSED) from None
    return {"phone": phone}


@router.post("/{session_id}/inbound", response_model=SandboxInboundOut, status_code=201)
async def inbound(
    session_id: uuid.UUID, body: SandboxInbound, principal: Auth, daemon: DaemonDep
) -> SandboxInboundOut:
    """Make a simulated customer send a text to the session."""
    await _sandbox_session(daemon.kernel, principal, session_id)
    try:
        event = await daemon.sandbox.customer_says(
            session_id,
            body.phone,
            body.text,
            name=body.name,
            wa_message_id=body.wa_message_id,
            lid=body.lid,
        )
    except SendError as exc:
        raise Conflict(str(exc), code=ErrorCode.SESSION_NOT_CONNECTED) from None
    except ValueError as exc:
        raise ValidationFailed(f"from: {exc}") from None
    return SandboxInboundOut(wa_message_id=event.wa_message_id, event_id=None)


@router.get("/{session_id}/inbox", response_model=list[SandboxDelivered])
async def inbox(
    session_id: uuid.UUID,
    principal: Auth,
    daemon: DaemonDep,
    phone: str = Query(min_length=3, max_length=32),
) -> list[SandboxDelivered]:
    """List what a simulated customer's phone received from the session."""
    await _sandbox_session(daemon.kernel, principal, session_id)
    try:
        got = daemon.sandbox.inbox(session_id, phone)
    except ValueError as exc:
        raise ValidationFailed(f"phone: {exc}") from None
    return [SandboxDelivered.model_validate(d) for d in got]
