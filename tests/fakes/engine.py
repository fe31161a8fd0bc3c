"""A WhatsApp engine seen through zapd's `Connector` contract, recording what it is sent.

It answers `send` the way the engines do: WhatsApp's message id for an accepted send,
the first id again for a repeated idempotency key (the client-chosen message id of
WhatsApp Web), or `SendError` (transient or not) when told to refuse the next sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from shared.enums import Engine
from zapd.connectors.base import OutboundMessage, SendError


@dataclass
class RecordingEngine:
    """One linked session's engine: every accepted send is kept in `sent`."""

    session_id: uuid.UUID
    engine: Engine = Engine.SANDBOX
    connected: bool = True
    sent: list[OutboundMessage] = field(default_factory=list)
    refusals: list[bool] = field(default_factory=list)  # transient flags of the next refusals
    _ids: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        self.connected = True

    async def stop(self) -> None:
        self.connected = False

    async def logout(self) -> None:
        self.connected = False

    def refuse_next(self, n: int, *, transient: bool) -> None:
        """Refuse the next `n` sends."""
        self.refusals.extend([transient] * n)

    async def send(self, message: OutboundMessage) -> str:
        if self.refusals:
            raise SendError("refused by the fake engine", transient=self.refusals.pop(0))
        key = message.idempotency_key
        if key is not None and key in self._ids:
            return self._ids[key]  # the same message: answered, not delivered twice
        wa_id = f"3EB0{uuid.uuid4().hex[:16].upper()}"
        self.sent.append(message)
        if key is not None:
            self._ids[key] = wa_id
        return wa_id
