"""The webjs connector against the fake WhatsApp Web, in real Chromium, without a database.

Events are recorded as the session manager would receive them: linking by pairing code,
LID <-> phone contacts, media downloaded, quoted replies, messages typed on the phone,
media sends, a customer's typing, QR codes that nobody scans, a frozen page, and the
memory guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.enums import MessageStatus, MessageType, SessionStatus
from tests.fakes.wajs_page.server import Device, FakeWhatsAppWeb, c_us
from tests.zapd.connectors.webjs.harness import (
    browsers_under,
    eventually,
    webjs_settings,
)
from tests.zapd.connectors.webjs.harness import fake as fake  # the fixture, shared
from zapd.connectors.base import OutboundMessage, PairingError, SupportsPairing
from zapd.connectors.events import (
    AckEvent,
    AnyEngineEvent,
    ContactEvent,
    MessageEvent,
    QrEvent,
    StatusEvent,
    TypingEvent,
)
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.connector import WebjsConnector, ack_status, is_our_id, message_key
from zapd.connectors.webjs.driver import EngineUnavailable, WebjsDriver

PHONE = "+5511940001234"
CUSTOMER = "+5521998765432"


class Recorder:
    def __init__(self) -> None:
        self.events: list[AnyEngineEvent] = []

    async def __call__(self, event: AnyEngineEvent) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def statuses(self) -> list[SessionStatus]:
        return [e.status for e in self.of(StatusEvent)]


@pytest.fixture
async def make(fake: FakeWhatsAppWeb, tmp_path: Path) -> AsyncIterator[Any]:
    drivers: list[WebjsDriver] = []
    conns: list[WebjsConnector] = []

    def _make(**overrides: Any) -> tuple[WebjsConnector, Recorder]:
        driver = WebjsDriver(webjs_settings(tmp_path, fake.url, **overrides))
        rec = Recorder()
        conn = WebjsConnector(uuid.uuid4(), driver, rec)
        drivers.append(driver)
        conns.append(conn)
        return conn, rec

    yield _make
    for conn in conns:
        await conn.stop()
    for driver in drivers:
        await driver.shutdown()
    assert browsers_under(tmp_path) == []


async def linked(fake: FakeWhatsAppWeb, conn: WebjsConnector, rec: Recorder) -> Device:
    await conn.start()
    qr = await eventually(lambda: rec.of(QrEvent))
    device = await fake.scan(qr[0].qr, PHONE)
    await eventually(lambda: conn.connected)
    return device


def test_ack_enum_and_our_ids() -> None:
    assert [ack_status(a) for a in (-7, -1, 0, 1, 2, 3, 4)] == [
        MessageStatus.FAILED,
        MessageStatus.FAILED,
        None,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.PLAYED,
    ]
    key = message_key("5511999990000@s.whatsapp.net", "outbox:1")
    assert key.startswith("true_5511999990000@c.us_3EB0")
    assert key == message_key("5511999990000@s.whatsapp.net", "outbox:1")
    assert is_our_id(key)
    assert not is_our_id("true_5511999990000@c.us_3EB0C767D26A1D5E6A3E")
    assert not is_our_id(key[:-1] + ("0" if key[-1] != "0" else "1"))


def test_stale_lock_removed_only_when_its_owner_is_dead(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    host = socket.gethostname()
    os.symlink(f"{host}-{os.getpid()}", profile / "SingletonLock")  # a live owner: us
    os.symlink("/tmp/whatever", profile / "SingletonSocket")
    assert procs.clear_stale_locks(profile) is False
    assert (profile / "SingletonLock").is_symlink()
    (profile / "SingletonLock").unlink()
    dead = 2**22 + 7  # above the default pid_max: never a live process
    os.symlink(f"{host}-{dead}", profile / "SingletonLock")
    assert procs.clear_stale_locks(profile) is True
    assert not (profile / "SingletonLock").is_symlink()
    assert not (profile / "SingletonSocket").is_symlink()


async def test_pairing_contacts_media_quotes_and_phone_messages(
    fake: FakeWhatsAppWeb, make: Any
) -> None:
    conn, rec = make()
    assert isinstance(conn, SupportsPairing)
    await conn.start()
    await eventually(lambda: rec.of(QrEvent))
    pairing = await conn.request_pairing_code("+55 11 94000-1234")
    assert len(pairing.code) == 8 and pairing.phone == PHONE
    device = await fake.enter_link_code(pairing.code, PHONE)
    await eventually(lambda: conn.connected)
    assert rec.statuses()[-2:] == [SessionStatus.SYNCING, SessionStatus.CONNECTED]
    assert rec.of(StatusEvent)[-1].phone == PHONE
    with pytest.raises(PairingError):
        await conn.request_pairing_code(PHONE)

    # A customer known by LID: the phone behind it is learned and emitted.
    lid = "123456789012345@lid"
    first = await fake.customer_says(device, CUSTOMER, "oi", name="Bia", lid=lid)
    msg = (await eventually(lambda: rec.of(MessageEvent)))[0]
    assert (msg.wa_message_id, msg.chat_jid, msg.sender_lid) == (first["id"], lid, lid)
    assert msg.sender_phone == CUSTOMER and msg.push_name == "Bia"
    (contact,) = rec.of(ContactEvent)
    assert (contact.lid, contact.phone) == (lid, CUSTOMER)

    # Media: downloaded into the session dir, its bytes intact; a quoted reply.
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    await fake.customer_says(
        device, CUSTOMER, "foto", media=(png, "image/png", "image"), quoted=first["id"]
    )
    media = await eventually(
        lambda: [m for m in rec.of(MessageEvent) if m.type is MessageType.IMAGE]
    )
    assert media[0].body == "foto" and media[0].media_mime == "image/png"
    assert media[0].quoted_wa_message_id == first["id"]
    stored = Path(media[0].media_url.removeprefix("file://"))
    assert await asyncio.to_thread(stored.read_bytes) == png
    assert stored.name == hashlib.sha256(png).hexdigest()

    # A media send, with a caption; the echo is not emitted; a repeat sends nothing.
    doc = conn.session_dir / "out.pdf"
    doc.write_bytes(b"%PDF-1.4\n%zap\n")
    out = OutboundMessage(
        conn.session_id,
        lid,
        MessageType.DOCUMENT,
        body="segue",
        media_path=str(doc),
        media_mime="application/pdf",
        media_filename="orcamento.pdf",
        idempotency_key="doc-1",
    )
    wa_id = await conn.send(out)
    assert await conn.send(out) == wa_id
    assert [(m["type"], m["filename"], m["caption"]) for m in device.sent] == [
        ("document", "orcamento.pdf", "segue")
    ]
    # A message typed on the phone itself is emitted as from_me.
    await asyncio.sleep(0.3)
    await fake._push(
        device,
        {
            "op": "msg",
            "msg": {
                "id": f"true_{lid}_3EB0AAAABBBBCCCCDDDD",
                "from": device.me,
                "to": lid,
                "t": 1,
                "type": "chat",
                "body": "digitado no celular",
            },
        },
    )
    phone_msg = await eventually(lambda: [m for m in rec.of(MessageEvent) if m.from_me])
    assert len(phone_msg) == 1 and phone_msg[0].body == "digitado no celular"
    assert phone_msg[0].chat_jid == lid and phone_msg[0].sender_jid == lid
    assert all(m.wa_message_id != wa_id for m in rec.of(MessageEvent))

    # Acks out of order reach the sink mapped; CLOCK is no status.
    for ack in (0, 3, 2, 4):
        await fake.ack(device, wa_id, ack)
    acks = await eventually(lambda: len(rec.of(AckEvent)) >= 3 and rec.of(AckEvent))
    assert [a.status for a in acks] == [
        MessageStatus.READ,
        MessageStatus.DELIVERED,
        MessageStatus.PLAYED,
    ]


async def test_unscanned_qr_codes_stop_the_session(fake: FakeWhatsAppWeb, make: Any) -> None:
    conn, rec = make(webjs_max_qr_rotations=3)
    await conn.start()
    first = await eventually(lambda: rec.of(QrEvent))
    device = fake.device_by_qr(first[0].qr)
    for _ in range(3):
        await fake.rotate_qr(device)
    await eventually(lambda: conn.status == SessionStatus.ERROR)
    assert len(rec.of(QrEvent)) == 3  # the fourth code is not published
    assert "not scanned after 3 codes" in (rec.of(StatusEvent)[-1].reason or "")
    assert conn.browser is None and procs.browsers_of(conn.profile) == []


async def test_frozen_page_and_memory_guard_restart_without_qr(
    fake: FakeWhatsAppWeb, make: Any
) -> None:
    conn, rec = make(webjs_heartbeat_seconds=0.5)
    device = await linked(fake, conn, rec)
    connections = device.connections
    await fake.hang(device)  # the page still exists but answers nothing
    await eventually(lambda: conn.restarts >= 1 and conn.connected, within=60)
    assert conn.driver.restarts.labels("heartbeat")._value.get() == 1
    assert device.connections > connections

    # Memory guard: a limit below what one browser uses recycles it, same profile.
    before = conn.browser.pid if conn.browser else None
    assert conn.memory() > 20 << 20  # PSS of a real browser tree
    conn.settings = conn.settings.model_copy(update={"webjs_memory_limit_mb": 1})
    await eventually(lambda: conn.driver.recycles._value.get() >= 1, within=30)
    conn.settings = conn.settings.model_copy(update={"webjs_memory_limit_mb": 0})
    await eventually(
        lambda: conn.connected and conn.browser and conn.browser.pid != before, within=60
    )
    assert len(rec.of(QrEvent)) == 1  # only the first link ever needed one


def test_engine_refuses_to_run_without_browser_or_pinned_bundle(tmp_path: Path) -> None:
    missing = WebjsDriver(webjs_settings(tmp_path, "http://127.0.0.1:9/", chromium=tmp_path / "no"))
    with pytest.raises(EngineUnavailable, match="is not an executable file"):
        missing.check()
    tampered = tmp_path / "wa.js"
    tampered.write_bytes(b"self.WPP = {};\n")
    driver = WebjsDriver(webjs_settings(tmp_path, "http://127.0.0.1:9/", wajs_path=tampered))
    with pytest.raises(EngineUnavailable, match="the pin wants wa-js"):
        driver.check()
    conn = WebjsConnector(uuid.uuid4(), driver, Recorder())
    with pytest.raises(EngineUnavailable):
        asyncio.run(conn.start())
    assert not conn.alive


async def test_customer_typing_from_presence_changes(
    fake: FakeWhatsAppWeb, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wa-js `chat.presence_change` -> TypingEvent, only when it changes; it stops on
    another state, on a message from the customer, and by itself when it lapses."""
    monkeypatch.setattr("zapd.connectors.webjs.connector.TYPING_TTL", 0.5)
    conn, rec = make()
    device = await linked(fake, conn, rec)
    chat = CUSTOMER.lstrip("+") + "@s.whatsapp.net"

    def typing() -> list[tuple[bool, bool]]:
        return [(e.typing, e.recording) for e in rec.of(TypingEvent) if e.chat_jid == chat]

    # A customer who never wrote is not subscribed: WhatsApp tells the device nothing.
    assert not await fake.customer_typing(device, CUSTOMER)
    await fake.customer_says(device, CUSTOMER, "oi", name="Rita")
    await eventually(lambda: c_us(CUSTOMER) in device.subscribed)  # the bridge subscribed
    assert await fake.customer_typing(device, CUSTOMER, "typing")
    await eventually(lambda: typing() == [(True, False)])
    await fake.customer_typing(device, CUSTOMER, "typing")  # repeated: nothing new
    await fake.customer_typing(device, CUSTOMER, "recording_audio")
    await eventually(lambda: typing() == [(True, False), (True, True)])
    await fake.customer_typing(device, CUSTOMER, "available")
    await eventually(lambda: typing()[-1] == (False, False))
    assert len(typing()) == 3
    await fake.customer_typing(device, CUSTOMER, "typing")
    await eventually(lambda: len(typing()) == 4)
    await fake.customer_says(device, CUSTOMER, "pronto, escrevi")  # their message ends it
    await eventually(lambda: typing()[-1] == (False, False))
    await fake.customer_typing(device, CUSTOMER, "typing")
    await eventually(lambda: len(typing()) == 6)
    await eventually(lambda: len(typing()) == 7, within=5.0)  # lapsed after TYPING_TTL
    assert typing()[-1] == (False, False)
    # The stop after a lapse has nothing left to say.
    await conn.stop()
    assert len(typing()) == 7
