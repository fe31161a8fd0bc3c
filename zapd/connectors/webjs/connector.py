"""The webjs connector: one WhatsApp Web session in its own Chromium, wa-js injected.

Life of a session (a supervisor task per connector):

    launch browser on the profile ─► open WhatsApp Web ─► inject wa-js + bridge
      ─► linked?  no: WAITING_QR, QR codes followed (N unscanned → ERROR, browser closed)
                  yes: AUTHENTICATING ─► SYNCING ─► CONNECTED ─► catch-up since cursor
      ─► watch: page crash, browser gone, heartbeat failing, offline too long, memory
         over the limit ─► browser closed, restarted with backoff on the same profile
         (no new QR); a logout from the phone wipes the profile and ends the session.

Invariants:
- Status integers are the spec's; every change goes out as a StatusEvent (the session
  manager writes it to session_logs) and to the log.
- An inbound message goes to the sink once per connector (ids seen are remembered;
  wa-js may fire `chat.new_message` twice, first still `ciphertext`); the pipeline
  dedupes on the id across restarts. The cursor (newest message time handed to the
  sink) only moves after the sink returned; when the connection is lost its value is
  kept as the gap's start (persisted with it), and the next catch-up reads from there
  (minus a slack), so live messages arriving first never make it skip older ones.
- Sends are idempotent: the message id is derived from the outbox idempotency key and
  given to wa-js (`messageId`); a repeat finds the message already in the chat and
  returns its id. Echoes of our own sends (`from_me` with our id mark) are not emitted:
  the outbox records them, so they are never stored twice.
- Acks map wa-js's enum (negative failure, 0 clock, 1 sent, 2 received, 3 read,
  4 played); 0 is not a status change; the pipeline keeps status forward-only.
- A customer's typing comes from wa-js `chat.presence_change` (state `typing` or
  `recording_audio`; the bridge subscribes the presence of every customer who writes)
  and goes out as a `TypingEvent` only when it changes: started, stopped (another
  state, a message from them, or `TYPING_TTL` seconds without a new typing state, since
  WhatsApp lets a chat state lapse without telling).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import mimetypes
import random
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from shared.enums import Engine, MessageStatus, MessageType, SessionStatus
from shared.phone import InvalidPhone, normalize_phone
from zapd.config import ZapdSettings
from zapd.connectors.base import (
    EventSink,
    OutboundMessage,
    PairingCode,
    PairingError,
    SendError,
)
from zapd.connectors.events import (
    AckEvent,
    ContactEvent,
    MessageEvent,
    QrEvent,
    StatusEvent,
    TypingEvent,
)
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.driver import Browser, WebjsDriver

log = logging.getLogger("zapd.webjs")

QR_TTL = timedelta(seconds=20)
PAIRING_TTL = timedelta(minutes=3)
SEEN_IDS = 5000  # message ids remembered against wa-js's double events
CATCHUP_SLACK = 120  # seconds before the cursor looked at again (clock skew)
OFFLINE_HEARTBEATS = 6  # heartbeats offline before the page is restarted
EVAL_TIMEOUT = 15.0
SEND_TIMEOUT = 60.0
STOP_GRACE = 8.0  # seconds the session's tasks get to finish what they are doing
ID_PREFIX = "3EB0"
_STOP = "\0stop"  # queued after the last event: the consumer ends there
TYPING_TTL = 25.0  # seconds a typing state lasts without being repeated
TYPING_STATES = {"typing": False, "recording_audio": True}  # wa-js state -> recording?
_LAPSED = "\0lapsed"  # a presence state the connector makes up when typing lapses

Heartbeat = Callable[[], Awaitable[None]]

WA_TYPES: dict[str, MessageType] = {
    "chat": MessageType.TEXT,
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
    "ptt": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
    "sticker": MessageType.STICKER,
    "location": MessageType.LOCATION,
    "vcard": MessageType.CONTACT,
    "multi_vcard": MessageType.CONTACT,
    "reaction": MessageType.REACTION,
}
MEDIA_TYPES = {
    MessageType.IMAGE,
    MessageType.VIDEO,
    MessageType.AUDIO,
    MessageType.DOCUMENT,
    MessageType.STICKER,
}
SEND_FILE_TYPES = {
    MessageType.IMAGE: "image",
    MessageType.VIDEO: "video",
    MessageType.AUDIO: "audio",
    MessageType.DOCUMENT: "document",
    MessageType.STICKER: "sticker",
}
# Skipped entirely: not content (notifications, protocol, revoked, still encrypted).
IGNORED_TYPES = {
    "ciphertext",
    "e2e_notification",
    "notification_template",
    "gp2",
    "protocol",
    "revoked",
    "call_log",
    "notification",
    "unknown",
}


def ack_status(ack: int) -> MessageStatus | None:
    """Map wa-js's ack enum to zap's status (None: CLOCK, nothing to record)."""
    if ack < 0:
        return MessageStatus.FAILED
    return {
        1: MessageStatus.SENT,
        2: MessageStatus.DELIVERED,
        3: MessageStatus.READ,
        4: MessageStatus.PLAYED,
    }.get(ack)


def to_wa(jid: str) -> str:
    """Return the wa-js chat id of a zap JID (`@s.whatsapp.net` is `@c.us` there)."""
    return jid.replace("@s.whatsapp.net", "@c.us")


def from_wa(jid: str | None) -> str | None:
    """Return zap's form of a wa-js id (`@c.us` becomes `@s.whatsapp.net`)."""
    return jid.replace("@c.us", "@s.whatsapp.net") if jid else jid


def message_key(chat: str, idempotency_key: str) -> str:
    """Return the serialized wa-js MsgKey zap uses for a send with this key.

    The id part is `3EB0` + 16 hex digits of the key's hash + an 8-digit mark of those,
    so an echo of one of our sends is recognisable without any stored state.
    """
    core = hashlib.sha256(f"zap-msgid:{idempotency_key}".encode()).hexdigest()[:16].upper()
    return f"true_{to_wa(chat)}_{ID_PREFIX}{core}{_mark(core)}"


def _mark(core: str) -> str:
    return hashlib.sha256(f"zap-mark:{core}".encode()).hexdigest()[:8].upper()


def is_our_id(serialized: str) -> bool:
    """Return whether a serialized message id was made by `message_key`."""
    msg_id = serialized.rsplit("_", 1)[-1]
    if len(msg_id) != 28 or not msg_id.startswith(ID_PREFIX):
        return False
    core = msg_id[4:20]
    return msg_id[20:] == _mark(core)


def _now() -> datetime:
    return datetime.now(UTC)


class _Trouble(Exception):
    """Why the watched browser must be closed (and maybe restarted)."""

    def __init__(self, reason: str, *, terminal: bool = False, label: str = "error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.terminal = terminal
        self.label = label  # Prometheus label of a restart


class WebjsConnector:
    """A WhatsApp Web session in its own Chromium, driven through wa-js."""

    engine = Engine.WEBJS

    def __init__(
        self,
        session_id: uuid.UUID,
        driver: WebjsDriver,
        sink: EventSink,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.session_id = session_id
        self.driver = driver
        self.sink = sink
        self.heartbeat = heartbeat
        self.settings: ZapdSettings = driver.settings
        self.status: SessionStatus | None = None
        self.status_reason: str | None = None
        self.phone: str | None = None
        self.me: str | None = None  # our wa-js wid
        self.connected = False
        self.browser: Browser | None = None
        self.page: Page | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._trouble: asyncio.Future[_Trouble] | None = None
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        # Chats whose customer is typing now: jid -> (recording, lapse timer).
        self._typing: dict[str, tuple[bool, asyncio.TimerHandle]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._qr_refs: set[str] = set()
        self._offline_beats = 0
        self._pairing: PairingCode | None = None
        self._cursor: float | None = self._load_cursor()
        self._cursor_dirty = False
        # The cursor when the connection was last lost: a catch-up starts there, even if
        # live messages moved the cursor on before the engine noticed it was back.
        self._gap_from: float | None = self._load_cursor(key="gap") or self._cursor
        self._rng = random.Random()  # noqa: S311 - backoff jitter
        self._inject_lock = asyncio.Lock()
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._settled = False
        self._halt = asyncio.Event()
        self._stop_requested = asyncio.Event()

    # ------------------------------------------------------------------ paths

    @property
    def session_dir(self) -> Path:
        return self.driver.session_dir(self.session_id)

    @property
    def profile(self) -> Path:
        return self.driver.profile_dir(self.session_id)

    def _load_cursor(self, key: str = "t") -> float | None:
        try:
            data = json.loads((self.session_dir / "cursor.json").read_text())
            return float(data[key])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_cursor(self) -> None:
        if not self._cursor_dirty or self._cursor is None:
            return
        self.session_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.session_dir / "cursor.json.tmp"
        tmp.write_text(json.dumps({"t": self._cursor, "gap": self._gap_from}))
        tmp.replace(self.session_dir / "cursor.json")
        self._cursor_dirty = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def alive(self) -> bool:
        """Whether the session is still running (False once it ended in ERROR or a logout)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the session's supervisor (returns at once; events follow)."""
        self.driver.check()  # no browser or no verified wa-js: refuse now, clearly
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._stop_requested.clear()
        self._task = asyncio.create_task(self._supervise(), name=f"webjs-{self.session_id}")

    async def stop(self) -> None:
        """Close the browser, keeping the profile (a later start needs no QR)."""
        self._stopping = True
        self._stop_requested.set()
        self._raise(_Trouble("stopped", terminal=True))
        if self._task is not None:
            # Let the supervisor wind down by itself (event handlers finish their database
            # writes); cancel it only if it does not within the grace period.
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE)
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._close_browser()
        await self._forget_typing()
        self._save_cursor()
        if self.status is not None and self.status != SessionStatus.DISCONNECTED:
            await self._set_status(SessionStatus.DISCONNECTED, "stopped")

    async def logout(self) -> None:
        """Unlink the number from WhatsApp, close the browser and wipe the profile."""
        page = self.page
        if page is not None and self.connected:
            try:
                await asyncio.wait_for(page.evaluate("() => window.__zap.logout()"), EVAL_TIMEOUT)
            except Exception as exc:
                log.warning("webjs %s: wa-js logout failed: %s", self.session_id, exc)
        await self.stop()
        await self._wipe("logged out")

    async def _wipe(self, why: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.profile, True)
        (self.session_dir / "cursor.json").unlink(missing_ok=True)
        self._cursor = self._gap_from = None
        self.phone = None
        log.warning("webjs %s: %s; profile %s wiped", self.session_id, why, self.profile)
        await self._set_status(
            SessionStatus.DISCONNECTED, f"{why}: profile wiped, a new QR is needed"
        )

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                trouble = await self._run_once()
            except asyncio.CancelledError:
                raise
            except _Trouble as exc:
                trouble = exc
            except Exception as exc:
                log.warning("webjs %s: %s: %s", self.session_id, type(exc).__name__, exc)
                trouble = _Trouble(f"{type(exc).__name__}: {exc}"[:300], label="start")
            await self._close_browser()
            self._save_cursor()
            if self._stopping:
                return
            if trouble.reason == "logout":
                await self._wipe("logged out from the phone")
                return
            if trouble.terminal:
                await self._set_status(SessionStatus.ERROR, trouble.reason)
                return
            if self.status == SessionStatus.CONNECTED or trouble.label == "memory":
                attempt = 0
            attempt += 1
            self.restarts += 1
            if trouble.label == "memory":
                self.driver.recycles.inc()
            else:
                self.driver.restarts.labels(trouble.label).inc()
            base, cap = (
                self.settings.webjs_restart_backoff_base,
                self.settings.webjs_restart_backoff_cap,
            )
            delay = min(cap, base * 2 ** (attempt - 1))
            delay = delay / 2 + self._rng.uniform(0, delay / 2)
            await self._set_status(
                SessionStatus.DISCONNECTED, f"{trouble.reason}; restarting in {delay:.1f}s"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)

    async def _run_once(self) -> _Trouble:
        loop = asyncio.get_running_loop()
        self._trouble = loop.create_future()
        self._events = asyncio.Queue()
        self._qr_refs.clear()
        self._offline_beats = 0
        linked_before = self.profile.is_dir() and any(self.profile.iterdir())
        if linked_before:
            await self._set_status(SessionStatus.AUTHENTICATING, "starting the browser")
        async with self.driver.starting:  # bounded: a boot does not start every browser at once
            browser = await self.driver.launch(self.session_id)
            self.browser = browser
            await self._open_page(browser)
        self._halt = asyncio.Event()
        consumer = asyncio.create_task(self._consume(), name=f"webjs-events-{self.session_id}")
        beat = asyncio.create_task(self._beat(), name=f"webjs-beat-{self.session_id}")
        try:
            self._settled = False
            await self._settle()
            self._settled = True
            return await self._trouble
        finally:
            # Wind down: the consumer ends after the event in hand, the heartbeat after its
            # probe; whatever does not end within the grace period is cancelled.
            self._halt.set()
            self._events.put_nowait((_STOP, None))
            tasks = {beat, consumer, *self._side_tasks}
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _open_page(self, browser: Browser) -> None:
        """Open WhatsApp Web in the browser's page and inject wa-js and the bridge."""
        browser.context.on(
            "close", lambda _: self._raise(_Trouble("browser closed", label="crash"))
        )
        await browser.context.expose_binding("__zapEmit", self._on_binding)
        page = (
            browser.context.pages[0] if browser.context.pages else await browser.context.new_page()
        )
        self.page = page
        page.on("crash", lambda _: self._raise(_Trouble("page crashed", label="crash")))
        page.on("close", lambda _: self._raise(_Trouble("page closed", label="crash")))
        page.on("load", lambda _: self._spawn_inject())
        await page.goto(
            self.settings.webjs_url,
            wait_until="domcontentloaded",
            timeout=self.settings.webjs_ready_timeout * 1000,
        )
        await self._inject()

    def _raise(self, trouble: _Trouble) -> None:
        if self._trouble is not None and not self._trouble.done():
            self._trouble.set_result(trouble)

    async def _close_browser(self) -> None:
        if self.connected and self._gap_from is None:
            self._gap_from, self._cursor_dirty = self._cursor, True
        self.connected = False
        browser, self.browser, self.page = self.browser, None, None
        if browser is not None:
            await self.driver.close(browser)

    # ------------------------------------------------------------------ injection

    def _spawn_inject(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reinject())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _reinject(self) -> None:
        """A new document (WhatsApp Web reloads itself): inject again and re-read the state."""
        try:
            if await self._inject() and self._settled:
                await self._settle()
        except Exception as exc:
            self._raise(_Trouble(f"page reload: {type(exc).__name__}: {exc}"[:300], label="crash"))

    async def _inject(self) -> bool:
        """Add wa-js then the bridge to the page, once per document; True if it added them."""
        async with self._inject_lock:
            page = self.page
            if page is None:
                return False
            has = await page.evaluate("() => [!!window.WPP, !!window.__zap]")
            if not has[0]:
                await page.add_script_tag(content=self.driver.bundle_source())
            await page.wait_for_function(
                "() => window.WPP && window.WPP.isReady",
                timeout=self.settings.webjs_ready_timeout * 1000,
            )
            if has[1]:
                return False
            await page.add_script_tag(content=self.driver.bridge_source())
            return True

    async def _settle(self) -> None:
        """Read the state wa-js is in after injection and act on it."""
        state = await self._state()
        if state["registered"]:
            await self._set_status(SessionStatus.AUTHENTICATING)
            if state["ready"]:
                await self._on_ready()
            return
        code = await self._eval("() => window.__zap.authCode()")
        await self._set_status(SessionStatus.WAITING_QR, "scan the QR code with WhatsApp")
        if code:
            await self._on_auth_code(code)

    # ------------------------------------------------------------------ events

    async def _on_binding(self, _source: Any, kind: str, data: Any) -> None:
        self._events.put_nowait((kind, data))

    async def _consume(self) -> None:
        while True:
            kind, data = await self._events.get()
            if kind == _STOP:
                return
            try:
                await self._dispatch(kind, data)
            except _Trouble as trouble:
                self._raise(trouble)
            except Exception:
                log.exception("webjs %s: handling %s", self.session_id, kind)

    async def _dispatch(self, kind: str, data: Any) -> None:
        if kind == "auth_code":
            if data:
                await self._on_auth_code(data)
        elif kind == "qrcode_idle":
            raise _Trouble(
                "QR code not scanned: WhatsApp stopped offering new codes; start again",
                terminal=True,
            )
        elif kind == "authenticated":
            self._pairing = None
            await self._set_status(SessionStatus.SYNCING, "linked, syncing")
        elif kind == "main_ready":
            await self._on_ready()
        elif kind in ("logout", "require_auth"):
            if self.connected or kind == "logout":
                raise _Trouble("logout", terminal=True)
        elif kind == "online":
            await self._on_online(bool(data))
        elif kind == "message":
            await self._on_message(data, live=True)
        elif kind == "ack":
            await self._on_ack(data)
        elif kind == "presence" and data:
            await self._on_presence(data)
        elif kind == "link_code" and self._pairing is not None and data:
            self._pairing = PairingCode(
                code=str(data), phone=self._pairing.phone, expires_at=_now() + PAIRING_TTL
            )

    async def _on_auth_code(self, code: dict[str, Any]) -> None:
        ref = str(code.get("ref") or code.get("fullCode"))
        if ref in self._qr_refs:
            return
        self._qr_refs.add(ref)
        limit = self.settings.webjs_max_qr_rotations
        if len(self._qr_refs) > limit:
            raise _Trouble(
                f"QR code not scanned after {limit} codes: start the session again",
                terminal=True,
            )
        now = _now()
        await self.sink(
            QrEvent(
                session_id=self.session_id,
                at=now,
                qr=str(code["fullCode"]),
                expires_at=now + QR_TTL,
            )
        )
        self.status = SessionStatus.WAITING_QR

    async def _on_ready(self) -> None:
        state = await self._state()
        self.me = state.get("me")
        if self.me:
            with contextlib.suppress(InvalidPhone):
                self.phone = normalize_phone(
                    "+" + self.me.split("@")[0].split(":")[0], strict=False
                )
        self.connected = True
        self._offline_beats = 0
        await self._set_status(SessionStatus.CONNECTED)
        if self.heartbeat is not None:
            await self.heartbeat()
        await self._catch_up()

    async def _on_online(self, online: bool) -> None:
        if (
            online
            and not self.connected
            and self.status in (SessionStatus.DISCONNECTED, SessionStatus.CONNECTED)
        ):
            await self._on_ready()
        elif not online and self.connected:
            self.connected = False
            if self._gap_from is None:
                self._gap_from, self._cursor_dirty = self._cursor, True
            await self._set_status(SessionStatus.DISCONNECTED, "WhatsApp Web is offline")

    def _remember(self, msg_id: str) -> bool:
        """Return False when `msg_id` was already handled by this connector."""
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = None
        while len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    async def _on_message(self, m: dict[str, Any], *, live: bool) -> None:
        msg_id = m.get("id")
        wa_type = str(m.get("type") or "unknown")
        if not msg_id or wa_type in IGNORED_TYPES:
            return  # a ciphertext message comes again once decrypted
        from_me = bool(m.get("fromMe"))
        if from_me and is_our_id(msg_id):
            return  # an echo of our own send: the outbox records it
        if not self._remember(msg_id):
            return
        chat = from_wa(m.get("to") if from_me else m.get("from"))
        if not chat or chat.endswith("@broadcast") or chat.endswith("@newsletter"):
            return
        author = from_wa(m.get("author"))
        sender = chat if from_me or not author else author
        contact = m.get("contact") or {}
        lid = contact.get("lid")
        phone_jid = from_wa(contact.get("phone"))
        sender_phone = None
        if phone_jid:
            with contextlib.suppress(InvalidPhone):
                sender_phone = normalize_phone("+" + phone_jid.split("@")[0], strict=False)
        mtype = WA_TYPES.get(wa_type, MessageType.UNKNOWN)
        body = m.get("body") if mtype is MessageType.TEXT else m.get("caption")
        media_url = media_mime = None
        if mtype in MEDIA_TYPES:
            media_url, media_mime = await self._download(msg_id, m.get("mimetype"))
        t = float(m.get("t") or _now().timestamp())
        event = MessageEvent(
            session_id=self.session_id,
            at=_now(),
            wa_message_id=msg_id,
            chat_jid=chat,
            sender_jid=sender,
            sender_lid=lid if lid and sender.endswith("@lid") else None,
            sender_phone=sender_phone if sender.endswith("@lid") else None,
            push_name=None if from_me else (m.get("notifyName") or contact.get("name")),
            from_me=from_me,
            type=mtype,
            body=body,
            media_url=media_url,
            media_mime=media_mime,
            media_filename=m.get("filename"),
            quoted_wa_message_id=m.get("quoted"),
            timestamp=datetime.fromtimestamp(t, UTC),
        )
        if lid and sender_phone and not from_me:
            await self.sink(
                ContactEvent(
                    session_id=self.session_id,
                    at=_now(),
                    jid=sender,
                    lid=lid,
                    phone=sender_phone,
                    name=contact.get("name"),
                )
            )
        await self.sink(event)
        if not from_me and chat in self._typing:  # they sent what they were typing
            self._typing.pop(chat)[1].cancel()
            await self._emit_typing(chat, False, False)
        if self._cursor is None or t > self._cursor:
            self._cursor = t
            self._cursor_dirty = True

    async def _download(self, msg_id: str, mime: str | None) -> tuple[str | None, str | None]:
        """Save a message's media under the session dir; return (file URL, type)."""
        try:
            b64 = await self._eval("(id) => window.__zap.download(id)", msg_id, limit=SEND_TIMEOUT)
        except Exception as exc:
            log.warning("webjs %s: media of %s not downloaded: %s", self.session_id, msg_id, exc)
            return None, mime
        data = base64.b64decode(b64 or "")
        digest = hashlib.sha256(data).hexdigest()
        folder = self.session_dir / "media"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / digest
        await asyncio.to_thread(path.write_bytes, data)
        return path.as_uri(), mime

    async def _on_presence(self, p: dict[str, Any]) -> None:
        """A contact's chat state changed: emit typing when it starts or stops."""
        chat = from_wa(p.get("id"))
        if not chat or not (chat.endswith("@s.whatsapp.net") or chat.endswith("@lid")):
            return
        state = str(p.get("state") or "")
        recording = TYPING_STATES.get(state)
        before = self._typing.pop(chat, None)
        if before is not None:
            before[1].cancel()
        if recording is not None:
            lapsed = ("presence", {"id": p.get("id"), "state": _LAPSED})
            lapse = asyncio.get_running_loop().call_later(
                TYPING_TTL, self._events.put_nowait, lapsed
            )
            self._typing[chat] = (recording, lapse)
            if before is not None and before[0] == recording:
                return  # still typing: nothing new to say
            await self._emit_typing(chat, True, recording)
        elif before is not None:
            await self._emit_typing(chat, False, False)

    async def _emit_typing(self, chat: str, typing: bool, recording: bool) -> None:
        await self.sink(
            TypingEvent(
                session_id=self.session_id,
                at=_now(),
                chat_jid=chat,
                typing=typing,
                recording=recording,
            )
        )

    async def _forget_typing(self) -> None:
        """Stopping: nobody is typing any more as far as the agents can tell."""
        typing, self._typing = self._typing, {}
        for chat, (_, lapse) in typing.items():
            lapse.cancel()
            with contextlib.suppress(Exception):
                await self._emit_typing(chat, False, False)

    async def _on_ack(self, a: dict[str, Any]) -> None:
        status = ack_status(int(a.get("ack", 0)))
        if status is None:
            return
        for msg_id in a.get("ids") or ():
            await self.sink(
                AckEvent(
                    session_id=self.session_id,
                    at=_now(),
                    wa_message_id=str(msg_id),
                    status=status,
                    error=f"wa-js ack {a.get('ack')}" if status is MessageStatus.FAILED else None,
                )
            )

    async def _catch_up(self) -> None:
        """Feed the messages of chats active since the cursor through the pipeline."""
        if self._cursor is None:  # first link: history is not ours to import
            self._cursor, self._gap_from = _now().timestamp(), None
            self._cursor_dirty = True
            self._save_cursor()
            return
        start = self._cursor if self._gap_from is None else min(self._gap_from, self._cursor)
        since = start - CATCHUP_SLACK
        try:
            found = await self._eval(
                "([s, c, n]) => window.__zap.recent(s, c, n)",
                [since, self.settings.webjs_catchup_chats, self.settings.webjs_catchup_messages],
                limit=SEND_TIMEOUT,
            )
        except Exception as exc:
            log.warning("webjs %s: catch-up failed: %s", self.session_id, exc)
            return
        fed = 0
        for m in found or ():
            before = len(self._seen)
            await self._on_message(m, live=False)
            fed += len(self._seen) != before
        log.info(
            "webjs %s: catch-up since %s: %d message(s) looked at, %d new to this run",
            self.session_id,
            datetime.fromtimestamp(since, UTC).isoformat(),
            len(found or ()),
            fed,
        )
        self._gap_from = None  # caught up
        self._cursor_dirty = True
        self._save_cursor()

    # ------------------------------------------------------------------ watching

    async def _state(self) -> dict[str, Any]:
        state = await self._eval("() => window.__zap.state()")
        return dict(state)

    async def _eval(self, script: str, arg: Any = None, *, limit: float = EVAL_TIMEOUT) -> Any:
        page = self.page
        if page is None:
            raise _Trouble("no page", label="crash")
        return await asyncio.wait_for(page.evaluate(script, arg), limit)

    async def _beat(self) -> None:
        interval = self.settings.webjs_heartbeat_seconds
        answer_within = max(1.0, min(EVAL_TIMEOUT, 2 * interval))
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._halt.wait(), interval)
            if self._halt.is_set():
                return
            try:
                state = dict(await self._eval("() => window.__zap.state()", limit=answer_within))
                failures = 0
            except Exception as exc:
                failures += 1
                if failures >= 2:
                    self._raise(_Trouble(f"page not answering: {exc}"[:200], label="heartbeat"))
                    return
                continue
            if self.connected and not state["registered"]:
                self._raise(_Trouble("logout", terminal=True))
                return
            if (
                self.status in (SessionStatus.CONNECTED, SessionStatus.DISCONNECTED)
                and not state["online"]
            ):
                self._offline_beats += 1
                if self._offline_beats >= OFFLINE_HEARTBEATS:
                    self._raise(_Trouble("offline too long", label="offline"))
                    return
            else:
                self._offline_beats = 0
            if self.connected and self.heartbeat is not None:
                try:
                    await self.heartbeat()
                except Exception as exc:
                    log.info("webjs %s: heartbeat not recorded: %s", self.session_id, exc)
            self._save_cursor()
            self._guard_memory()

    def memory(self) -> int:
        """Return the PSS of this session's browser tree, in bytes (0 when not running)."""
        pid = self.browser.pid if self.browser else None
        return procs.tree_pss(pid) if pid else 0

    def _guard_memory(self) -> None:
        limit = self.settings.webjs_memory_limit_mb * 1024 * 1024
        if not limit:
            return
        used = self.memory()
        if used > limit:
            log.warning(
                "webjs %s: browser uses %d MiB PSS, over %d MiB: recycling it",
                self.session_id,
                used >> 20,
                limit >> 20,
            )
            self._raise(_Trouble(f"memory {used >> 20} MiB over the limit", label="memory"))

    # ------------------------------------------------------------------ status

    async def _set_status(self, status: SessionStatus, reason: str | None = None) -> None:
        if status == self.status and (reason is None or reason == self.status_reason):
            return
        log.info(
            "webjs %s: %s -> %s%s",
            self.session_id,
            self.status.name if self.status is not None else "-",
            status.name,
            f" ({reason})" if reason else "",
        )
        self.status, self.status_reason = status, reason
        await self.sink(
            StatusEvent(
                session_id=self.session_id,
                at=_now(),
                status=status,
                reason=reason,
                phone=self.phone,
            )
        )

    # ------------------------------------------------------------------ sending

    async def send(self, message: OutboundMessage) -> str:
        """Send through wa-js and return the message id (idempotent per key)."""
        if not self.connected or self.page is None:
            raise SendError("webjs session is not connected", transient=True)
        chat = to_wa(message.to_jid)
        key = message.idempotency_key or uuid.uuid4().hex
        wanted = message_key(chat, key)
        try:
            found = await self._eval("(id) => window.__zap.find(id)", wanted)
            if found:
                return str(found["id"])  # sent before (a retry after a crash)
            opts: dict[str, Any] = {"messageId": wanted, "waitForAck": False, "createChat": True}
            if message.quoted_wa_message_id:
                opts["quotedMsg"] = message.quoted_wa_message_id
            if message.type is MessageType.TEXT or not message.media_path:
                result = await self._eval(
                    "([c, t, o]) => window.__zap.sendText(c, t, o)",
                    [chat, message.body or "", opts],
                    limit=SEND_TIMEOUT,
                )
            else:
                data = await asyncio.to_thread(Path(message.media_path).read_bytes)
                mime = message.media_mime or mimetypes.guess_type(message.media_filename or "")[0]
                mime = mime or "application/octet-stream"
                opts.update(
                    type=SEND_FILE_TYPES.get(message.type, "auto-detect"),
                    mimetype=mime,
                    filename=message.media_filename,
                    caption=message.body,
                )
                url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
                result = await self._eval(
                    "([c, d, o]) => window.__zap.sendFile(c, d, o)",
                    [chat, url, opts],
                    limit=SEND_TIMEOUT,
                )
        except SendError:
            raise
        except _Trouble as exc:
            raise SendError(f"webjs page unavailable: {exc.reason}", transient=True) from None
        except OSError as exc:
            raise SendError(f"media file unreadable: {exc}", transient=False) from None
        except Exception as exc:
            text = str(exc)
            permanent = any(w in text for w in ("invalid_wid", "InvalidWid"))
            raise SendError(
                f"wa-js refused the send: {text[:300]}", transient=not permanent
            ) from None
        return str(result["id"])

    # ------------------------------------------------------------------ pairing

    async def request_pairing_code(self, phone: str) -> PairingCode:
        """Ask wa-js for a link-device code for `phone` (only while waiting for a QR)."""
        if self.status != SessionStatus.WAITING_QR or self.page is None:
            raise PairingError("the session is not waiting to be linked")
        try:
            e164 = normalize_phone(phone)
        except ValueError as exc:
            raise PairingError(f"invalid phone number {phone!r}: {exc}") from None
        try:
            code = await self._eval(
                "(p) => window.__zap.pair(p)", e164.lstrip("+"), limit=SEND_TIMEOUT
            )
        except Exception as exc:
            raise PairingError(f"WhatsApp refused a pairing code: {str(exc)[:200]}") from None
        clean = "".join(ch for ch in str(code).upper() if ch.isalnum())
        self._pairing = PairingCode(code=clean, phone=e164, expires_at=_now() + PAIRING_TTL)
        return self._pairing
