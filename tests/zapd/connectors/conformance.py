"""The engine conformance suite: what every WhatsApp engine must do, whatever it speaks.

An engine joins by providing one `EngineAdapter` subclass (how to make *its* WhatsApp
link a session, have a customer write, deliver acks, show what a customer received) and
adding it to `ADAPTERS` in test_conformance.py. The checks below then run against it:

- start -> (link) -> CONNECTED with the linked phone; stop -> DISCONNECTED; a new
  connector on the same session resumes CONNECTED without a new QR;
- an inbound message reaches the sink once, with its id, text and sender;
- a send returns the WhatsApp id and reaches the customer; the same idempotency key
  returns the same id and delivers nothing twice; a send while stopped is refused as
  transient;
- acks for a sent message arrive mapped to MessageStatus, and folded forward-only
  they end at READ even when WhatsApp reports them out of order;
- logout -> DISCONNECTED, and the next start needs linking again.

Engines without QR linking (`needs_qr = False`, the Cloud API: a number is linked in
Meta's dashboard and a session is a token) skip the QR checks: no QR expected at the
first start, none after logout.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Any

import pytest

from shared.enums import MessageStatus, MessageType, SessionStatus
from zapd.connectors.base import Connector, OutboundMessage, SendError
from zapd.connectors.events import AckEvent, AnyEngineEvent, MessageEvent, QrEvent, StatusEvent
from zapd.domain.acks import fold_acks

CUSTOMER = "+5511977770001"
CUSTOMER_JID = "5511977770001@s.whatsapp.net"


class Recorder:
    """The sink a connector emits into, keeping everything in order."""

    def __init__(self) -> None:
        self.events: list[AnyEngineEvent] = []

    async def __call__(self, event: AnyEngineEvent) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def last_status(self) -> SessionStatus | None:
        found = self.of(StatusEvent)
        return found[-1].status if found else None


class EngineAdapter(ABC):
    """How the suite drives one engine's WhatsApp. Subclass it; override every method."""

    name = "?"
    needs_qr = True  # whether linking goes through QR events (the Cloud API has none)

    async def setup(self, tmp_path: Any) -> None:  # noqa: B027 - optional hook
        """Start what the engine talks to (a fake server, a simulated network)."""

    async def teardown(self) -> None:  # noqa: B027 - optional hook
        """Stop it all; fail if anything is left behind (processes, tasks)."""

    @abstractmethod
    def connector(self, session_id: uuid.UUID, sink: Recorder) -> Connector:
        """Return a new connector for `session_id` emitting into `sink`."""

    @abstractmethod
    async def link(self, conn: Connector, sink: Recorder) -> str:
        """Link the started session's number (scan its QR...); return its E.164."""

    @abstractmethod
    async def customer_says(self, conn: Connector, phone: str, text: str) -> str:
        """Have a customer write to the session; return the WhatsApp message id."""

    @abstractmethod
    async def deliver_acks(self, conn: Connector, wa_id: str) -> None:
        """Make WhatsApp report SENT, DELIVERED and READ for `wa_id`, out of order."""

    @abstractmethod
    def received(self, conn: Connector, phone: str) -> list[str | None]:
        """Return the texts the customer's phone received from the session."""

    @abstractmethod
    async def wait(self, check: Any, within: float = 30.0) -> Any:
        """Wait until `check()` is truthy (engines answer asynchronously)."""


async def check_lifecycle(adapter: EngineAdapter) -> None:
    sid = uuid.uuid4()
    rec = Recorder()
    conn = adapter.connector(sid, rec)
    await conn.start()
    phone = await adapter.link(conn, rec)
    await adapter.wait(lambda: rec.last_status() == SessionStatus.CONNECTED)
    assert rec.of(StatusEvent)[-1].phone == phone
    qrs = len(rec.of(QrEvent))
    assert qrs >= (1 if adapter.needs_qr else 0)
    await conn.stop()
    await adapter.wait(lambda: rec.last_status() == SessionStatus.DISCONNECTED)
    with pytest.raises(SendError) as refused:
        await conn.send(OutboundMessage(sid, CUSTOMER_JID, MessageType.TEXT, body="x"))
    assert refused.value.transient

    again = adapter.connector(sid, rec)
    await again.start()
    await adapter.wait(lambda: rec.last_status() == SessionStatus.CONNECTED)
    assert len(rec.of(QrEvent)) == qrs  # resumed: no new QR

    await again.logout()
    await adapter.wait(lambda: rec.last_status() == SessionStatus.DISCONNECTED)
    if adapter.needs_qr:
        third = adapter.connector(sid, rec)
        await third.start()
        await adapter.wait(lambda: len(rec.of(QrEvent)) > qrs)  # linking needed again
        await third.stop()


async def check_messages(adapter: EngineAdapter) -> None:
    sid = uuid.uuid4()
    rec = Recorder()
    conn = adapter.connector(sid, rec)
    await conn.start()
    await adapter.link(conn, rec)
    await adapter.wait(lambda: rec.last_status() == SessionStatus.CONNECTED)

    wa_in = await adapter.customer_says(conn, CUSTOMER, "bom dia")
    got = await adapter.wait(lambda: [m for m in rec.of(MessageEvent) if m.wa_message_id == wa_in])
    assert len(got) == 1
    msg = got[0]
    assert (msg.body, msg.from_me, msg.type) == ("bom dia", False, MessageType.TEXT)
    assert msg.chat_jid == CUSTOMER_JID and msg.sender_jid == CUSTOMER_JID

    out = OutboundMessage(
        sid, CUSTOMER_JID, MessageType.TEXT, body="olá, em que posso ajudar?", idempotency_key="c:1"
    )
    wa_out = await conn.send(out)
    assert wa_out and wa_out != wa_in
    await adapter.wait(lambda: "olá, em que posso ajudar?" in adapter.received(conn, CUSTOMER))
    assert await conn.send(out) == wa_out  # a resend after a crash: same id
    assert adapter.received(conn, CUSTOMER).count("olá, em que posso ajudar?") == 1

    await adapter.deliver_acks(conn, wa_out)
    await adapter.wait(
        lambda: (
            MessageStatus.READ in [a.status for a in rec.of(AckEvent) if a.wa_message_id == wa_out]
        )
    )
    statuses = [a.status for a in rec.of(AckEvent) if a.wa_message_id == wa_out]
    assert set(statuses) <= {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}
    taken = fold_acks(MessageStatus.QUEUED, statuses)
    assert taken[-1] is MessageStatus.READ
    assert taken == sorted(taken, key=lambda s: s.rank)  # forward only
    # No echo of our own send comes back as a message.
    assert all(m.wa_message_id != wa_out for m in rec.of(MessageEvent))
    await conn.stop()
