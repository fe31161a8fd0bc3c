"""The sandbox engine behaves like a WhatsApp network: QR, linking, messages, acks, failures."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.enums import MessageStatus, MessageType, SessionStatus
from zapd.connectors.base import OutboundMessage, PairingError, SendError, SupportsPairing
from zapd.connectors.events import (
    AckEvent,
    AnyEngineEvent,
    MessageEvent,
    QrEvent,
    StatusEvent,
    dump_event,
    load_event,
)
from zapd.connectors.sandbox import (
    PAIRING_ALPHABET,
    AckTiming,
    SandboxConnector,
    SandboxNetwork,
)

FAST = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[AnyEngineEvent] = []

    async def __call__(self, event: AnyEngineEvent) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


async def linked(net: SandboxNetwork) -> tuple[SandboxConnector, Recorder]:
    rec = Recorder()
    conn = SandboxConnector(uuid.uuid4(), net, rec)
    await conn.start()
    await asyncio.sleep(0)
    await net.scan(conn.session_id, "+55 11 3000-0001")
    return conn, rec


async def test_qr_then_scan_links_and_connects() -> None:
    net = SandboxNetwork(FAST)
    rec = Recorder()
    conn = SandboxConnector(uuid.uuid4(), net, rec)
    await conn.start()
    await asyncio.sleep(0.01)
    (qr,) = rec.of(QrEvent)
    assert qr.qr.startswith(f"zap-sandbox:{conn.session_id}:")
    assert qr.expires_at > qr.at
    phone = await net.scan(conn.session_id)
    statuses = [e.status for e in rec.of(StatusEvent)]
    assert statuses == [
        SessionStatus.WAITING_QR,
        SessionStatus.AUTHENTICATING,
        SessionStatus.SYNCING,
        SessionStatus.CONNECTED,
    ]
    assert rec.of(StatusEvent)[-1].phone == phone and "SANDBOX" in rec.of(StatusEvent)[-1].reason
    # Restarting a linked session needs no QR.
    await conn.stop()
    await conn.start()
    assert rec.of(StatusEvent)[-1].status is SessionStatus.CONNECTED
    assert len(rec.of(QrEvent)) == 1
    await net.close()


async def test_scan_without_qr_is_refused() -> None:
    with pytest.raises(SendError):
        await SandboxNetwork().scan(uuid.uuid4())


async def test_customer_message_and_reply_with_acks() -> None:
    net = SandboxNetwork(FAST)
    conn, rec = await linked(net)
    ev = await net.customer_says(conn.session_id, "11 91234-5678", "Oi!", name="Maria")
    assert ev in rec.of(MessageEvent)
    assert ev.sender_jid == "5511912345678@s.whatsapp.net" and ev.push_name == "Maria"
    wa_id = await conn.send(OutboundMessage(conn.session_id, ev.chat_jid, MessageType.TEXT, "Olá"))
    assert [d.body for d in net.inbox(conn.session_id, "+5511912345678")] == ["Olá"]
    await asyncio.sleep(0.2)
    acks = [a.status for a in rec.of(AckEvent) if a.wa_message_id == wa_id]
    assert acks == [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
    await net.close()


async def test_shuffled_acks_arrive_out_of_order_but_all_arrive() -> None:
    net = SandboxNetwork(AckTiming(jitter=0.005, shuffle=True), seed=3)
    conn, rec = await linked(net)
    ids = [
        await conn.send(
            OutboundMessage(
                conn.session_id, "5511912345678@s.whatsapp.net", MessageType.TEXT, f"m{i}"
            )
        )
        for i in range(10)
    ]
    await asyncio.sleep(0.3)
    orders = {tuple(a.status for a in rec.of(AckEvent) if a.wa_message_id == i) for i in ids}
    assert all(
        sorted(o) == [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
        for o in orders
    )
    assert len(orders) > 1  # some arrived in another order
    await net.close()


async def test_injected_failures_and_disconnect() -> None:
    net = SandboxNetwork(FAST)
    conn, rec = await linked(net)
    msg = OutboundMessage(conn.session_id, "5511912345678@s.whatsapp.net", MessageType.TEXT, "x")
    net.fail_next_sends(conn.session_id, 2, transient=True)
    net.fail_next_sends(conn.session_id, 1, transient=False)
    outcomes = []
    for _ in range(4):
        try:
            await conn.send(msg)
            outcomes.append("ok")
        except SendError as exc:
            outcomes.append("transient" if exc.transient else "permanent")
    assert outcomes == ["transient", "transient", "permanent", "ok"]
    await net.drop_connection(conn.session_id)
    assert rec.of(StatusEvent)[-1].status is SessionStatus.DISCONNECTED
    with pytest.raises(SendError) as err:
        await conn.send(msg)
    assert err.value.transient
    with pytest.raises(SendError):
        await net.customer_says(conn.session_id, "+5511912345678", "hello?")
    await net.close()


async def test_logout_unlinks() -> None:
    net = SandboxNetwork(FAST)
    conn, rec = await linked(net)
    await conn.logout()
    await conn.start()
    await asyncio.sleep(0.01)
    assert rec.of(StatusEvent)[-1].status is SessionStatus.WAITING_QR
    assert len(rec.of(QrEvent)) == 2
    await conn.stop()
    await net.close()


async def test_pairing_code_links_the_number_it_was_asked_for() -> None:
    net = SandboxNetwork(FAST)
    rec = Recorder()
    conn = SandboxConnector(uuid.uuid4(), net, rec)
    assert isinstance(conn, SupportsPairing)
    with pytest.raises(PairingError, match="not waiting"):
        await conn.request_pairing_code("+5511912345678")  # not started
    await conn.start()
    with pytest.raises(PairingError, match="no pairing code"):
        await net.enter_code(conn.session_id, "ABCDEFGH")
    with pytest.raises(PairingError, match="invalid phone"):
        await conn.request_pairing_code("12")
    first = await conn.request_pairing_code("(11) 91234-5678")
    assert first.phone == "+5511912345678"
    assert len(first.code) == 8 and set(first.code) <= set(PAIRING_ALPHABET)
    assert first.expires_at > rec.of(StatusEvent)[0].at
    second = await conn.request_pairing_code("+55 11 91234-5678")  # a new code replaces it
    with pytest.raises(PairingError, match="wrong pairing code"):
        await net.enter_code(conn.session_id, first.code if first.code != second.code else "1")
    # Typed as WhatsApp shows it, in lower case, with the dash: still the code.
    shown = f"{second.code[:4]}-{second.code[4:]}".lower()
    assert await net.enter_code(conn.session_id, shown) == "+5511912345678"
    statuses = [e.status for e in rec.of(StatusEvent)]
    assert statuses[-3:] == [
        SessionStatus.AUTHENTICATING,
        SessionStatus.SYNCING,
        SessionStatus.CONNECTED,
    ]
    assert rec.of(StatusEvent)[-1].phone == "+5511912345678"
    with pytest.raises(PairingError, match="not waiting"):
        await conn.request_pairing_code("+5511912345678")  # linked now
    with pytest.raises(PairingError, match="no pairing code"):
        await net.enter_code(conn.session_id, second.code)  # used once
    await conn.stop()
    await net.close()


async def test_an_expired_pairing_code_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import zapd.connectors.sandbox as sandbox

    net = SandboxNetwork(FAST)
    conn = SandboxConnector(uuid.uuid4(), net, Recorder())
    await conn.start()
    got = await conn.request_pairing_code("+5511912345678")
    later = got.expires_at
    monkeypatch.setattr(sandbox, "_now", lambda: later)
    with pytest.raises(PairingError, match="expired"):
        await net.enter_code(conn.session_id, got.code)
    assert not net.session(conn.session_id).linked
    await conn.stop()
    await net.close()


async def test_lid_sender_carries_the_phone() -> None:
    net = SandboxNetwork(FAST)
    conn, _ = await linked(net)
    ev = await net.customer_says(conn.session_id, "+5511912345678", "oi", lid="123456789@lid")
    assert ev.sender_jid == "123456789@lid" and ev.sender_phone == "+5511912345678"
    await net.close()


async def test_events_round_trip_through_storage_form() -> None:
    net = SandboxNetwork(FAST)
    conn, rec = await linked(net)
    await net.customer_says(conn.session_id, "+5511912345678", "oi")
    for ev in rec.events:
        assert load_event(dump_event(ev)) == ev
    await net.close()


async def test_stopping_a_session_waiting_for_its_qr_says_so() -> None:
    net = SandboxNetwork(FAST)
    rec = Recorder()
    conn = SandboxConnector(uuid.uuid4(), net, rec)
    await conn.start()
    await asyncio.sleep(0.01)
    assert [e.status for e in rec.of(StatusEvent)] == [SessionStatus.WAITING_QR]
    await conn.stop()
    statuses = rec.of(StatusEvent)
    assert [e.status for e in statuses] == [SessionStatus.WAITING_QR, SessionStatus.DISCONNECTED]
    assert statuses[-1].reason == "stopped"
    assert await conn.ping() == SessionStatus.DISCONNECTED
    await asyncio.sleep(0.02)
    assert len(rec.of(QrEvent)) == 1  # no QR rotates after the stop
