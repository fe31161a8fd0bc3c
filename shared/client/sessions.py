"""zapd client endpoints: WhatsApp sessions (definition, control, logs) and the sandbox.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order, body_of, parse_dict
from shared.client.lazy import protocol
from shared.enums import LogLevel, SessionStatus

if TYPE_CHECKING:
    from shared.protocol import common, sessions
else:
    sessions = protocol("sessions")


class SessionEndpoints(ClientCore):
    """WhatsApp sessions: definition, control, logs, and the sandbox network."""

    # ----------------------------------------------------------------- sessions

    async def list_sessions(
        self, *, status: SessionStatus | None = None, company_id: uuid.UUID | None = None
    ) -> list[sessions.SessionOut]:
        """List WhatsApp sessions with their connection state."""
        return await self._get_list(
            sessions.SessionOut, f"{API}/sessions", status=status, company_id=company_id
        )

    async def get_session(self, session_id: uuid.UUID) -> sessions.SessionOut:
        """Show one session."""
        return await self._get(sessions.SessionOut, f"{API}/sessions/{session_id}")

    async def create_session(self, body: sessions.SessionCreate) -> sessions.SessionWithSecret:
        """Create a session (ADMIN); the webhook secret is shown in this answer only."""
        return await self._send(sessions.SessionWithSecret, "POST", f"{API}/sessions", body)

    async def session_templates(self, session_id: uuid.UUID) -> list[sessions.CloudTemplate]:
        """List the approved message templates of a Cloud API session (SUPERVISOR+)."""
        return await self._get_list(
            sessions.CloudTemplate, f"{API}/sessions/{session_id}/templates"
        )

    async def update_session(
        self, session_id: uuid.UUID, body: sessions.SessionUpdate
    ) -> sessions.SessionWithSecret:
        """Change a session (ADMIN); a rotated webhook secret is shown in this answer only."""
        return await self._send(
            sessions.SessionWithSecret, "PATCH", f"{API}/sessions/{session_id}", body
        )

    async def delete_session(self, session_id: uuid.UUID, *, force: bool = False) -> None:
        """Remove a session (ADMIN); one with message history needs `force`."""
        await self.request(
            "DELETE", f"{API}/sessions/{session_id}", params={"force": force or None}
        )

    async def session_logs(
        self,
        session_id: uuid.UUID,
        *,
        level: LogLevel | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[sessions.SessionLogOut]:
        """List one page of a session's log (ADMIN, SUPERVISOR); `level` is the minimum."""
        return await self._get_page(
            sessions.SessionLogOut,
            f"{API}/sessions/{session_id}/logs",
            level=level,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    # ----------------------------------------------------------------- session control

    async def start_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Start a session's engine (ADMIN); QR codes follow on `session_qr` and the stream."""
        return parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/start"))

    async def stop_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Disconnect a session, keeping its link (ADMIN)."""
        return parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/stop"))

    async def logout_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Unlink the number from a session; the next start needs a new QR (ADMIN)."""
        return parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/logout"))

    async def pair_session(self, session_id: uuid.UUID, phone: str) -> sessions.SessionPairingCode:
        """Ask for a code that links `phone` to a waiting session without a QR (ADMIN)."""
        return await self._send(
            sessions.SessionPairingCode,
            "POST",
            f"{API}/sessions/{session_id}/pair",
            sessions.SessionPair.model_construct(phone=phone),
        )

    async def session_qr(self, session_id: uuid.UUID) -> sessions.SessionQr:
        """Show the QR code of a session waiting to be linked (ADMIN)."""
        return await self._get(sessions.SessionQr, f"{API}/sessions/{session_id}/qr")

    # ----------------------------------------------------------------- sandbox

    async def sandbox_scan(self, session_id: uuid.UUID, phone: str | None = None) -> str:
        """Simulate a phone scanning a sandbox session's QR (ADMIN); return the linked number."""
        body = sessions.SandboxScan(phone=phone) if phone is not None else sessions.SandboxScan()
        response = await self.request(
            "POST", f"{API}/sandbox/{session_id}/scan", json=body_of(body)
        )
        return str(parse_dict(response).get("phone", ""))

    async def sandbox_enter_code(self, session_id: uuid.UUID, code: str) -> str:
        """Simulate the phone typing a sandbox session's pairing code; return the number."""
        body = sessions.SandboxEnterCode.model_construct(code=code)
        response = await self.request(
            "POST", f"{API}/sandbox/{session_id}/pair", json=body_of(body)
        )
        return str(parse_dict(response).get("phone", ""))

    async def sandbox_inbound(
        self, session_id: uuid.UUID, body: sessions.SandboxInbound
    ) -> sessions.SandboxInboundOut:
        """Make a simulated customer send a text to a sandbox session (ADMIN)."""
        return await self._send(
            sessions.SandboxInboundOut, "POST", f"{API}/sandbox/{session_id}/inbound", body
        )

    async def sandbox_inbox(
        self, session_id: uuid.UUID, phone: str
    ) -> list[sessions.SandboxDelivered]:
        """List what a simulated customer's phone received from a sandbox session (ADMIN)."""
        return await self._get_list(
            sessions.SandboxDelivered, f"{API}/sandbox/{session_id}/inbox", phone=phone
        )
