"""/api/v1/sessions: the company's WhatsApp numbers, and their engine control."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.enums import Engine, LogLevel, Role, SessionStatus
from shared.protocol.common import Page
from shared.protocol.sessions import (
    SessionCreate,
    SessionLogOut,
    SessionOut,
    SessionPair,
    SessionPairingCode,
    SessionQr,
    SessionUpdate,
    SessionWithSecret,
)
from zapd.api.deps import ActorDep, Auth, DaemonDep, KernelDep, PageDep
from zapd.kernel import audit
from zapd.services.sessions import records as sessions

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    principal: Auth,
    kernel: KernelDep,
    status: Annotated[SessionStatus | None, Query()] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> list[SessionOut]:
    """List sessions with their connection state."""
    async with kernel.read() as db:
        rows = await sessions.list_(db, principal, company_id, status)
        return [SessionOut.model_validate(r) for r in rows]


@router.post("", response_model=SessionWithSecret, status_code=201)
async def create_session(
    body: SessionCreate, actor: ActorDep, kernel: KernelDep, daemon: DaemonDep
) -> SessionWithSecret:
    """Create a session (ADMIN); the webhook secret is shown in this answer only."""
    async with kernel.tx() as db:
        row, secret = await sessions.create(db, actor, body, daemon.secret_box)
        out = SessionOut.model_validate(row)
    return SessionWithSecret(**out.model_dump(), webhook_secret=secret)


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> SessionOut:
    """Show one session."""
    async with kernel.read() as db:
        return SessionOut.model_validate(await sessions.get(db, principal, session_id))


@router.patch("/{session_id}", response_model=SessionWithSecret)
async def update_session(
    session_id: uuid.UUID,
    body: SessionUpdate,
    actor: ActorDep,
    kernel: KernelDep,
    daemon: DaemonDep,
) -> SessionWithSecret:
    """Change a session (ADMIN); a newly minted webhook secret is shown in this answer only."""
    async with kernel.tx() as db:
        row, secret = await sessions.update(db, actor, session_id, body, daemon.secret_box)
        out = SessionOut.model_validate(row)
    daemon.cloud.forget(session_id)
    return SessionWithSecret(**out.model_dump(), webhook_secret=secret)


@router.delete("/{session_id}", status_code=204)
async def delete_session(
    session_id: uuid.UUID,
    actor: ActorDep,
    kernel: KernelDep,
    force: Annotated[bool, Query(description="also delete its chats and messages")] = False,
) -> None:
    """Remove a session (ADMIN); one with message history needs `force=true`."""
    async with kernel.tx() as db:
        await sessions.delete(db, actor, session_id, force=force)


@router.get("/{session_id}/logs", response_model=Page[SessionLogOut])
async def session_logs(
    session_id: uuid.UUID,
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    level: Annotated[LogLevel | None, Query(description="minimum level: 10, 20, 30, 40")] = None,
) -> Page[SessionLogOut]:
    """Page through a session's log (ADMIN, SUPERVISOR), newest first by default."""
    async with kernel.read() as db:
        rows, cursor = await sessions.logs(db, principal, session_id, page, level)
        return Page[SessionLogOut](
            items=[SessionLogOut.model_validate(r) for r in rows], next_cursor=cursor
        )


async def _controlled(
    kernel: KernelDep, actor: ActorDep, session_id: uuid.UUID, action: str
) -> None:
    """Check the caller may control this session (404 first, then ADMIN) and audit it."""
    async with kernel.tx() as db:
        row = await sessions.get(db, actor.principal, session_id)
        actor.principal.require(Role.ADMIN)
        audit.record(db, actor, f"session.{action}", "session", row.id, company_id=row.company_id)


@router.post("/{session_id}/start", status_code=202)
async def start_session(
    session_id: uuid.UUID, actor: ActorDep, daemon: DaemonDep
) -> dict[str, str]:
    """Start the session's engine; QR codes follow (GET /qr or the realtime stream)."""
    await _controlled(daemon.kernel, actor, session_id, "start")
    await daemon.engines.start(session_id)
    return {"status": "starting"}


@router.post("/{session_id}/stop", status_code=202)
async def stop_session(session_id: uuid.UUID, actor: ActorDep, daemon: DaemonDep) -> dict[str, str]:
    """Disconnect the session, keeping its link (start resumes without a QR)."""
    await _controlled(daemon.kernel, actor, session_id, "stop")
    await daemon.engines.stop(session_id)
    return {"status": "stopped"}


@router.post("/{session_id}/logout", status_code=202)
async def logout_session(
    session_id: uuid.UUID, actor: ActorDep, daemon: DaemonDep
) -> dict[str, str]:
    """Unlink the number from the session (the next start needs a new QR)."""
    await _controlled(daemon.kernel, actor, session_id, "logout")
    await daemon.engines.logout(session_id)
    return {"status": "logged_out"}


@router.post("/{session_id}/pair", response_model=SessionPairingCode)
async def pair_session(
    session_id: uuid.UUID, body: SessionPair, actor: ActorDep, daemon: DaemonDep
) -> SessionPairingCode:
    """Ask for a pairing code that links `phone` without a QR (the session must be waiting)."""
    await _controlled(daemon.kernel, actor, session_id, "pair")
    got = await daemon.engines.pairing_code(session_id, body.phone)
    async with daemon.kernel.read() as db:
        row = await sessions.get(db, actor.principal, session_id)
        sandbox = row.engine == Engine.SANDBOX
    return SessionPairingCode(
        session_id=session_id,
        phone=got.phone,
        code=got.code,
        expires_at=got.expires_at,
        sandbox=sandbox,
    )


@router.get("/{session_id}/qr", response_model=SessionQr)
async def session_qr(session_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> SessionQr:
    """Show the current QR code of a session waiting to be linked (ADMIN)."""
    async with kernel.read() as db:
        row = await sessions.get(db, principal, session_id)
        principal.require(Role.ADMIN)
        return SessionQr(
            session_id=row.id,
            status=row.status,
            qr=row.qr_code if row.status == SessionStatus.WAITING_QR else None,
            expires_at=row.qr_expires_at if row.status == SessionStatus.WAITING_QR else None,
            sandbox=row.engine == Engine.SANDBOX,
        )
