"""The webjs engine end to end: real Chromium, the real daemon parts, the fake WhatsApp Web.

One scenario per backend (SQLite and PostgreSQL), because every step needs the state the
previous one left: three sessions linked by QR at once and isolated; messages deduped
(wa-js's double event, our own echoes); media in the media store, type sniffed; acks out
of order kept forward-only; a message that arrives while the page is offline, and while
the browser is SIGKILLed, stored exactly once after the engine catches up, with no new
QR; a daemon restart restoring every CONNECTED session without a QR; a logout from the
phone wiping the profile; and no Chromium process of the test left at the end.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import MessageDirection, MessageStatus, SessionStatus
from tests.fakes.wajs_page.server import FakeWhatsAppWeb
from tests.zapd.connectors.webjs.harness import (
    Daemon,
    browsers_under,
    eventually,
    webjs_settings,
)
from tests.zapd.connectors.webjs.harness import fake as fake  # the fixture, shared
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.connector import WebjsConnector
from zapd.db.models import Chat, Media, Outbox, SessionLog
from zapd.services.delivery import outbox

PHONES = ["+5511940000001", "+5511940000002", "+5511940000003"]
CUSTOMER = "+5511987650001"


def webjs(daemon: Daemon, session_id: object) -> WebjsConnector:
    conn = daemon.r.engines.connector(session_id)  # type: ignore[arg-type]
    assert isinstance(conn, WebjsConnector)
    return conn


async def test_sessions_survive_everything(
    engine: AsyncEngine, fake: FakeWhatsAppWeb, tmp_path: Path
) -> None:
    settings = webjs_settings(tmp_path, fake.url)
    daemon = Daemon(engine, settings)
    await daemon.open()
    try:
        # --- three sessions at once: QR -> scan -> CONNECTED, each in its own browser
        ids = [await daemon.add_session(f"loja {i}") for i in range(3)]
        for sid in ids:
            await daemon.r.engines.start(sid)
        devices = []
        for sid, phone in zip(ids, PHONES, strict=True):
            qr = await daemon.wait_qr(sid)
            devices.append(await fake.scan(qr, phone))
        for sid, phone in zip(ids, PHONES, strict=True):
            row = await daemon.wait_status(sid, SessionStatus.CONNECTED)
            assert row.phone == phone and row.qr_code is None and row.last_heartbeat_at
        conns = [webjs(daemon, sid) for sid in ids]
        pids = [c.browser.pid for c in conns if c.browser]
        assert len(set(pids)) == 3 and all(pids)
        profiles = {c.profile for c in conns}
        assert len(profiles) == 3 and all(p.is_dir() for p in profiles)
        qr_counts = [d.qr_count for d in devices]

        # --- isolation; wa-js firing chat.new_message twice (ciphertext first) stores once
        dev1 = devices[0]
        raw = await fake.customer_says(
            dev1, CUSTOMER, "oi, quero um orçamento", name="Ana", twice=True, ciphertext_first=True
        )
        found = await eventually(lambda: daemon.messages(ids[0], wa_message_id=raw["id"]))
        assert len(found) == 1 and found[0].body == "oi, quero um orçamento"
        assert await daemon.count_messages(ids[1]) == 0
        assert await daemon.count_messages(ids[2]) == 0

        # --- media downloaded into the media store, its type sniffed; a quoted reply
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(48)
        pic = await fake.customer_says(
            dev1,
            CUSTOMER,
            "a foto",
            media=(png, "application/octet-stream", "image"),
            quoted=raw["id"],
        )
        (stored,) = await eventually(lambda: daemon.messages(ids[0], wa_message_id=pic["id"]))
        assert stored.media_id is not None and stored.quoted_message_id == found[0].id
        async with daemon.r.kernel.read() as db:
            media = await db.get(Media, stored.media_id)
        assert media is not None and media.mime == "image/png" and media.size == len(png)
        assert media.sha256 == hashlib.sha256(png).hexdigest()

        # --- outbound through the outbox: idempotent id, echo not stored twice, acks
        async with daemon.r.kernel.tx() as db:
            chat = await db.scalar(select(Chat).where(Chat.session_id == ids[0]))
            assert chat is not None
            queued = await outbox.enqueue(db, chat, "seu orçamento", idempotency_key="t:quote")
            message_id = queued.message.id
        sent_msg = await eventually(lambda: _sent(daemon, ids[0], message_id), within=30)
        wa_id = sent_msg.wa_message_id
        assert wa_id in {m["id"] for m in dev1.sent}
        assert wa_id.startswith(f"true_{CUSTOMER[1:]}@c.us_3EB0")
        await fake.ack(dev1, wa_id, 3)  # READ before DELIVERED: status stays READ
        await fake.ack(dev1, wa_id, 2)
        await eventually(lambda: _status_is(daemon, ids[0], wa_id, MessageStatus.READ))
        outbound = await daemon.messages(ids[0], direction=MessageDirection.OUTBOUND)
        assert len(outbound) == len(dev1.sent)  # every send stored once, echoes never
        assert all(m.wa_message_id for m in outbound)

        # --- offline with a message in between: stored exactly once after reconnect
        await fake.offline(dev1)
        await eventually(lambda: not conns[0].connected, within=20)
        gap1 = await fake.customer_says(dev1, CUSTOMER, "chegou enquanto offline")
        fake.online(dev1)
        await eventually(lambda: daemon.messages(ids[0], wa_message_id=gap1["id"]), within=30)

        # --- browser SIGKILLed: back by itself, no QR, the message of the gap stored once
        victim = conns[0].browser.pid if conns[0].browser else None
        assert victim
        os.kill(victim, signal.SIGKILL)
        gap2 = await fake.customer_says(dev1, CUSTOMER, "chegou com o navegador morto")
        await eventually(
            lambda: conns[0].connected and conns[0].browser and conns[0].browser.pid != victim,
            within=60,
        )
        await eventually(lambda: daemon.messages(ids[0], wa_message_id=gap2["id"]), within=30)
        for gap in (gap1, gap2, raw):
            assert len(await daemon.messages(ids[0], wa_message_id=gap["id"])) == 1
        assert [d.qr_count for d in devices] == qr_counts
        assert not procs.alive(victim)
        scraped = generate_latest(daemon.r.metrics.registry).decode()
        assert 'zapd_webjs_browser_restarts_total{reason="crash"} 1.0' in scraped

        # --- daemon restart: every CONNECTED session comes back without a QR
        await daemon.close()
        assert browsers_under(tmp_path) == []
        await daemon.open()
        for sid in ids:
            try:
                await eventually(lambda sid=sid: webjs(daemon, sid).connected, within=60)
            except AssertionError:
                story = {d.id: d.log for d in fake.devices.values()}
                pytest.fail(f"{sid} not back without a QR; devices: {story}")
            row = await daemon.wait_status(sid, SessionStatus.CONNECTED)
            assert row.qr_code is None
        assert [d.qr_count for d in devices] == qr_counts

        # --- logout from the phone: the profile is wiped and the log says so
        conn2 = webjs(daemon, ids[1])
        await fake.logout_from_phone(devices[1])
        row = await daemon.wait_status(ids[1], SessionStatus.DISCONNECTED)
        assert "profile wiped" in (row.status_reason or "")
        await eventually(lambda: not conn2.profile.exists(), within=10)
        async with daemon.r.kernel.read() as db:
            logs = (
                await db.scalars(select(SessionLog.message).where(SessionLog.session_id == ids[1]))
            ).all()
        assert any("profile wiped" in line for line in logs)
        assert any(line.startswith("CONNECTED") for line in logs)
    finally:
        await daemon.close()
    # --- nothing left behind: no browser, no lock
    assert browsers_under(tmp_path) == []
    for sid in ids:
        profile = settings.state_dir / "sessions" / str(sid) / "profile"
        assert not (profile / "SingletonLock").is_symlink()


async def _sent(daemon: Daemon, session_id: object, message_id: object) -> object:
    async with daemon.r.kernel.read() as db:
        box = await db.scalar(select(Outbox).where(Outbox.message_id == message_id))
    if box is None or box.sent_at is None:
        return None
    rows = await daemon.messages(session_id, id=message_id)  # type: ignore[arg-type]
    return rows[0] if rows and rows[0].wa_message_id else None


async def _status_is(daemon: Daemon, session_id: object, wa_id: str, status: MessageStatus) -> bool:
    rows = await daemon.messages(session_id, wa_message_id=wa_id)  # type: ignore[arg-type]
    return bool(rows) and rows[0].status == status
