"""The one small interface every WhatsApp engine implements."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared.enums import Engine, MessageType, SessionStatus
from zapd.connectors.events import AnyEngineEvent

EventSink = Callable[[AnyEngineEvent], Awaitable[None]]


@dataclass(frozen=True)
class OutboundMessage:
    """What the outbox hands to an engine."""

    session_id: uuid.UUID
    to_jid: str
    type: MessageType
    body: str | None = None
    media_path: str | None = None
    media_mime: str | None = None
    media_filename: str | None = None
    quoted_wa_message_id: str | None = None
    idempotency_key: str | None = None
    # Structured content engines that have it send natively (Cloud API); others send
    # `body`, which always holds the plain-text form.
    interactive: dict[str, Any] | None = None  # {"buttons": [...]} or {"list": {...}}
    template: dict[str, Any] | None = None  # {"name", "language", "parameters"}
    # A re-claim of a send whose outcome was never recorded (the worker died after
    # handing it over): WhatsApp may have it already. Engines without an idempotency
    # key of their own (the Cloud API) check before sending again.
    in_doubt: bool = False


class SendError(Exception):
    """An engine refused a send; `transient` says whether retrying may help.

    `retry_after` (seconds), when given, is a pause the engine asks for before the next
    try (e.g. pacing per recipient): the outbox waits that long without counting an attempt.
    """

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class PairingError(Exception):
    """An engine cannot give a pairing code now (not waiting to be linked, bad number)."""


@dataclass(frozen=True)
class PairingCode:
    """A code the phone's owner types in WhatsApp to link the session without a QR."""

    code: str  # eight characters, shown as ABCD-EFGH
    phone: str  # E.164 of the number being linked
    expires_at: datetime


@runtime_checkable
class SupportsPairing(Protocol):
    """A connector that can link with a pairing code (WhatsApp's "link with phone number")."""

    async def request_pairing_code(self, phone: str) -> PairingCode:
        """Return a code for `phone` to type; raise PairingError when it cannot."""
        ...


@runtime_checkable
class SupportsHeartbeat(Protocol):
    """A connector that can be asked whether its engine still answers."""

    async def ping(self) -> SessionStatus:
        """Return the engine's current state; a dead engine never returns (callers time out)."""
        ...


class Connector(Protocol):
    """A live session on one engine. Events go out through the sink given at creation."""

    engine: Engine
    session_id: uuid.UUID

    async def start(self) -> None:
        """Connect (emitting QR and status events until linked)."""

    async def stop(self) -> None:
        """Disconnect, keeping the link so a later start resumes without a QR."""

    async def logout(self) -> None:
        """Unlink the number; the next start needs a new QR."""

    async def send(self, message: OutboundMessage) -> str:
        """Send and return WhatsApp's message id; raise SendError on refusal."""
        ...
