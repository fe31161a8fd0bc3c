"""A fake WhatsApp Web on loopback: the page (wa-js surface) and the "WhatsApp servers".

`FakeWhatsAppWeb` serves `page.js` at `/` and talks to each page over `/ws`. A page is a
*device* (its id lives in the page's IndexedDB, i.e. in the Chromium profile). Tests
drive WhatsApp's side through methods: `scan` a QR, `rotate_qr`, `customer_says` (with
LIDs, double `chat.new_message`, ciphertext first), `ack` in any order, take a device
`offline` and back, `logout_from_phone`, `hang` the page. Messages for a device that is
not connected are kept and handed over silently (as a history sync) when it connects
again: only the engine's catch-up can find them.

Payloads follow wa-js 4.6.0's declarations: `conn.auth_code_change` gives
`{type, ref, fullCode}`, `chat.msg_ack_change` gives `{ack, chat, ids}`,
`chat.presence_change` gives `{id, isOnline, isGroup, isUser, shortName, state, t,
isContact}`, message ids are serialized MsgKeys `fromMe_remote_id`.

Presence follows WhatsApp: a customer's chat state (`customer_typing`) reaches a device
only when the page subscribed that contact (`WPP.contact.subscribePresence`, or wa-js
itself at main_ready for the chats it knows); the ids are in `Device.subscribed`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PAGE_JS = Path(__file__).with_name("page.js")
HTML = """<!doctype html><html><head><meta charset="utf-8"><title>WhatsApp (fake)</title>
<script>{js}</script></head><body><div id="app">fake WhatsApp Web</div></body></html>"""


def c_us(phone: str) -> str:
    """Return the wa-js user id of an E.164 number."""
    return phone.lstrip("+") + "@c.us"


@dataclass
class Device:
    """One linked (or linking) WhatsApp Web instance, known by its localStorage id."""

    id: str
    phone: str | None = None  # E.164 of the number once linked
    qr: dict[str, str] | None = None
    qr_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # every message of the device
    sent: list[dict[str, Any]] = field(default_factory=list)  # what its customers received
    ws: WebSocket | None = None
    offline: bool = False
    connections: int = 0
    link_code: str | None = None
    log: list[str] = field(default_factory=list)  # what happened to it (diagnostics)
    subscribed: set[str] = field(default_factory=set)  # contacts whose presence it follows

    @property
    def linked(self) -> bool:
        return self.phone is not None

    @property
    def me(self) -> str | None:
        return c_us(self.phone) if self.phone else None


class FakeWhatsAppWeb:
    """The fake's server side; `url` is what ZAP_WEBJS_URL points at."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.lids: dict[str, dict[str, str | None]] = {}  # "…@lid" -> {lid, phone, name}
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""
        self.changed = asyncio.Event()
        # (device id, linked, whether the page had just made the id) per connection
        self.hellos: list[tuple[str, bool, bool]] = []

    # ------------------------------------------------------------------ serving

    def app(self) -> Starlette:
        page = HTML.replace("{js}", PAGE_JS.read_text(encoding="utf-8"))

        async def index(_: Request) -> HTMLResponse:
            return HTMLResponse(page)

        return Starlette(routes=[Route("/", index), WebSocketRoute("/ws", self._ws)])

    async def start(self) -> str:
        """Serve on an ephemeral loopback port; return the page URL."""
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            for device in self.devices.values():
                if device.ws is not None:
                    try:
                        await device.ws.close()
                    except Exception:  # already gone with its browser
                        device.ws = None
            await asyncio.wait_for(self._task, 10)

    async def _ws(self, ws: WebSocket) -> None:
        device_id = ws.query_params.get("device", "")
        device = self.devices.setdefault(device_id, Device(device_id))
        if device.offline:
            await ws.close()
            return
        await ws.accept()
        if device.ws is not None:
            try:
                await device.ws.close()
            except Exception:
                device.ws = None
        device.ws = ws
        device.connections += 1
        hello: dict[str, Any] = {
            "op": "hello",
            "linked": device.linked,
            "me": device.me,
            "lids": self.lids,
            "history": device.history,
        }
        self.hellos.append((device_id, device.linked, ws.query_params.get("fresh") == "1"))
        device.log.append(f"hello linked={device.linked}")
        if not device.linked:
            hello["qr"] = self._new_qr(device)
        await ws.send_text(json.dumps(hello))
        self._touch()
        try:
            while True:
                msg = json.loads(await ws.receive_text())
                await self._from_page(device, ws, msg)
        except WebSocketDisconnect:
            pass
        finally:
            if device.ws is ws:
                device.ws = None
            self._touch()

    async def _from_page(self, device: Device, ws: WebSocket, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        reply: dict[str, Any] = {"op": "reply", "seq": msg.get("seq")}
        if op == "send":
            raw = msg["msg"]
            if any(m["id"] == raw["id"] for m in device.history):
                reply["error"] = "duplicate_message_id"
            else:
                device.history.append(raw)
                device.sent.append(raw)
        elif op == "subscribe":
            device.subscribed.update(str(i) for i in msg.get("ids") or ())
        elif op == "logout":
            device.log.append(f"logout asked by the page (was {device.phone})")
            device.phone = None
            device.history.clear()
            device.subscribed.clear()
        elif op == "link_code":
            device.link_code = "".join(
                secrets.choice("ABCDEFGHJKLMNPQRSTVWXYZ123456789") for _ in range(8)
            )
            reply["data"] = {"code": device.link_code}
            device.qr = {"phone": "+" + str(msg.get("phone", "")).lstrip("+")}  # type: ignore[dict-item]
        await ws.send_text(json.dumps(reply))
        self._touch()

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _push(self, device: Device, payload: dict[str, Any]) -> bool:
        if device.ws is None:
            return False
        try:
            await device.ws.send_text(json.dumps(payload))
        except Exception:
            return False
        return True

    # ------------------------------------------------------------------ linking

    def _new_qr(self, device: Device) -> dict[str, str]:
        device.qr_count += 1
        ref = f"2@{secrets.token_urlsafe(24)}"
        full = f"{ref},{secrets.token_urlsafe(32)},{secrets.token_urlsafe(32)},{device.id}"
        device.qr = {"type": "multidevice", "ref": ref, "fullCode": full}
        return device.qr

    def device_by_qr(self, full_code: str) -> Device:
        """Return the device showing this QR payload."""
        for device in self.devices.values():
            if device.qr and device.qr.get("fullCode") == full_code:
                return device
        raise LookupError("no device shows that QR")

    def device(self, phone: str) -> Device:
        """Return the device linked to a number."""
        for device in self.devices.values():
            if device.phone == phone:
                return device
        raise LookupError(f"no device linked to {phone}")

    async def rotate_qr(self, device: Device) -> dict[str, str]:
        """Show the next QR (WhatsApp rotates them every ~20 s)."""
        qr = self._new_qr(device)
        await self._push(device, {"op": "qr", "qr": qr})
        return qr

    async def scan(self, full_code: str, phone: str) -> Device:
        """The phone of `phone` scans this QR: the device is linked."""
        device = self.device_by_qr(full_code)
        device.log.append(f"QR scanned by {phone}")
        device.phone, device.qr = phone, None
        await self._push(device, {"op": "scanned", "me": device.me})
        return device

    async def enter_link_code(self, code: str, phone: str) -> Device:
        """The phone's owner types a pairing code."""
        for device in self.devices.values():
            if device.link_code and device.link_code == code:
                device.link_code = None
                device.phone, device.qr = phone, None
                await self._push(device, {"op": "scanned", "me": device.me})
                return device
        raise LookupError("no such pairing code")

    async def logout_from_phone(self, device: Device) -> None:
        """The phone's owner removes this linked device."""
        device.log.append(f"removed from the phone {device.phone}")
        device.phone = None
        device.history.clear()
        await self._push(device, {"op": "logout"})

    # ------------------------------------------------------------------ traffic

    def new_id(self) -> str:
        return f"3A{next(self._ids):06d}{secrets.token_hex(6).upper()}"

    async def customer_says(
        self,
        device: Device,
        phone: str,
        text: str | None = None,
        *,
        name: str | None = None,
        lid: str | None = None,
        twice: bool = False,
        ciphertext_first: bool = False,
        media: tuple[bytes, str, str] | None = None,  # (data, mimetype, wa type)
        quoted: str | None = None,
    ) -> dict[str, Any]:
        """A customer writes to the device's number; live if connected, else kept."""
        sender = lid or c_us(phone)
        if lid:
            self.lids[lid] = {"lid": lid, "phone": c_us(phone), "name": name}
            self.lids[c_us(phone)] = self.lids[lid]
        raw: dict[str, Any] = {
            "id": f"false_{sender}_{self.new_id()}",
            "from": sender,
            "to": device.me,
            "t": int(time.time()),
            "type": "chat",
            "body": text,
            "notifyName": name,
            "ack": 1,
        }
        if media is not None:
            data, mime, kind = media
            raw.update(
                type=kind,
                body=None,
                caption=text,
                mimetype=mime,
                data=base64.b64encode(data).decode(),
                filename=f"file.{kind}",
            )
        if quoted is not None:
            fm, remote, qid = quoted.split("_", 2)
            raw.update(quotedStanzaID=qid, quotedRemoteJid=remote, quotedFromMe=fm == "true")
        device.history.append(raw)
        await self._push(
            device,
            {
                "op": "msg",
                "msg": raw,
                "lids": self.lids,
                "twice": twice,
                "ciphertext_first": ciphertext_first,
            },
        )
        return raw

    async def customer_typing(
        self, device: Device, phone: str, state: str = "typing", *, lid: str | None = None
    ) -> bool:
        """A customer's chat state (`typing`, `recording_audio`, `available`...) changes;
        return whether it reached the device (only for a contact it subscribed)."""
        who = lid or c_us(phone)
        if who not in device.subscribed:
            return False
        name = (self.lids.get(who) or {}).get("name")
        return await self._push(
            device, {"op": "presence", "id": who, "state": state, "shortName": name}
        )

    async def ack(self, device: Device, msg_id: str, ack: int) -> None:
        """WhatsApp reports a delivery status (wa-js enum) for a message the device sent."""
        chat = msg_id.split("_", 2)[1]
        for m in device.history:
            if m["id"] == msg_id:
                m["ack"] = ack
        await self._push(device, {"op": "ack", "ack": ack, "chat": chat, "ids": [msg_id]})

    async def offline(self, device: Device) -> None:
        """Cut the device off (its page sees `conn.online` false and keeps retrying)."""
        device.offline = True
        if device.ws is not None:
            ws, device.ws = device.ws, None
            try:
                await ws.close()
            except Exception:
                return

    def online(self, device: Device) -> None:
        """Let the device connect again (it gets what arrived meanwhile, silently)."""
        device.offline = False

    async def hang(self, device: Device) -> None:
        """Freeze the device's page (a dead page that still exists)."""
        await self._push(device, {"op": "hang"})
