"""A contract fake of Meta's Graph API (WhatsApp Cloud API) on a loopback port.

What it answers, shaped as Meta documents it:
- `GET /{v}/{phone-number-id}`: the number (display phone, verified name); bad token → 190.
- `POST /{v}/{phone-number-id}/messages`: validates the body (messaging_product, `to` or
  `recipient`, a known type with its object, Meta's interactive limits), records it and
  answers `{"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid…"}]}`;
  queued failures (`fail_next`) answer Meta's error document instead (131047, 130429,
  131056, 190, 5xx...).
- `POST /{v}/{phone-number-id}/media` (multipart `file`, `messaging_product`) → `{"id"}`.
- `GET /{v}/{media-id}` → `{"url","mime_type","sha256","file_size","id"}`, and the URL
  serves the bytes to a request carrying the token.
- `GET /{v}/{waba-id}/message_templates` → `{"data":[...],"paging":{...}}`.

And the other direction: `webhook(...)` builds Meta's webhook envelope, `deliver` posts
it to zapd signed with the app secret (or forged, or unsigned).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INTERACTIVE_LIMITS = {"buttons": 3, "rows": 10, "row_title": 24, "button_title": 20}
KNOWN_TYPES = {
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "interactive",
    "template",
    "location",
    "contacts",
    "reaction",
}

ERRORS: dict[int, tuple[int, str, str]] = {  # code -> (HTTP status, message, details)
    131047: (
        400,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    130429: (400, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
    131056: (
        400,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
    190: (401, "Error validating access token: Session has expired.", ""),
    131000: (
        500,
        "(#131000) Something went wrong",
        "Message failed to send due to an unknown error.",
    ),
    100: (400, "(#100) Invalid parameter", ""),
}


def error_doc(code: int, message: str | None = None, details: str | None = None) -> dict[str, Any]:
    """Return Meta's error document for `code`."""
    _, default_message, default_details = ERRORS.get(code, (400, f"(#{code}) Error", ""))
    err: dict[str, Any] = {
        "message": message or default_message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    }
    details = default_details if details is None else details
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


@dataclass
class Failure:
    """A queued answer to the next send: Meta's error `code` with HTTP `status`."""

    code: int | None
    status: int


@dataclass
class FakeGraph:
    """The fake server's state; `start()` serves it, `url` is its base URL."""

    phone_number_id: str = "106540352242922"
    display_phone: str = "+55 11 4000-1000"
    waba_id: str = "102290129340398"
    access_token: str = "EAAG-fake-token-" + "x" * 40
    app_secret: str = "fake-app-secret-0123456789abcdef"
    templates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    by_wamid: dict[str, dict[str, Any]] = field(default_factory=dict)  # accepted sends by id
    refused: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)
    next_wamids: list[str] = field(default_factory=list)  # ids the next sends get, in order
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        if not self.templates:
            self.templates = [
                template("boas_vindas", "Olá {{1}}, podemos continuar seu atendimento?"),
                template("pedido_pronto", "Seu pedido {{1}} está pronto."),
                {**template("rascunho", "Não aprovado"), "status": "REJECTED"},
            ]

    # ------------------------------------------------------------------ control

    def fail_next(self, code: int | None, count: int = 1, *, status: int | None = None) -> None:
        """Answer the next `count` sends with Meta's error `code` (None: bare HTTP `status`)."""
        http = status or ERRORS.get(code or 0, (400, "", ""))[0]
        self.failures.extend(Failure(code, http) for _ in range(count))

    def add_media(self, content: bytes, mime: str) -> str:
        """Make a file downloadable as a received media; return its media id."""
        media_id = f"{next(self._ids) + 900000000000000}"
        self.media[media_id] = (content, mime)
        return media_id

    def new_wamid(self) -> str:
        """Return a fresh message id in Meta's shape (or the next one queued)."""
        if self.next_wamids:
            return self.next_wamids.pop(0)
        return f"wamid.HBgNNTUxMTk{next(self._ids):012d}FQIAERgSRkFLRQ=="

    # ------------------------------------------------------------------ serving

    async def start(self) -> FakeGraph:
        """Serve on an ephemeral loopback port."""
        app = Starlette(
            routes=[
                Route("/download/{media_id}", self._download, methods=["GET"]),
                Route("/{version}/{node}/messages", self._messages, methods=["POST"]),
                Route("/{version}/{node}/media", self._upload, methods=["POST"]),
                Route("/{version}/{node}/message_templates", self._templates, methods=["GET"]),
                Route("/{version}/{node}", self._node, methods=["GET"]),
            ]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        )
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(500):
            if self._server.started:
                break
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.access_token}"

    @staticmethod
    def _error(code: int, status: int | None = None) -> JSONResponse:
        http = status or ERRORS.get(code, (400, "", ""))[0]
        return JSONResponse(error_doc(code), status_code=http)

    async def _node(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190)
        node = request.path_params["node"]
        if node == self.phone_number_id:
            return JSONResponse(
                {
                    "display_phone_number": self.display_phone,
                    "verified_name": "Acme Atendimento",
                    "quality_rating": "GREEN",
                    "id": self.phone_number_id,
                }
            )
        if node in self.media:
            content, mime = self.media[node]
            return JSONResponse(
                {
                    "url": f"{self.url}/download/{node}",
                    "mime_type": mime,
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "file_size": len(content),
                    "id": node,
                    "messaging_product": "whatsapp",
                }
            )
        return self._error(100, 400)

    async def _download(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190)
        found = self.media.get(request.path_params["media_id"])
        if found is None:
            return Response(status_code=404)
        return Response(found[0], media_type=found[1])

    async def _templates(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190)
        if request.path_params["node"] != self.waba_id:
            return self._error(100)
        wanted = request.query_params.get("status")
        data = [t for t in self.templates if not wanted or t.get("status") == wanted]
        return JSONResponse(
            {"data": data, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}}
        )

    async def _upload(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190)
        raw = await request.body()
        head = f"Content-Type: {request.headers.get('content-type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (
                part.get_payload(decode=True),
                part.get_content_type(),
                part.get_filename(),
            )
        if "file" not in fields or fields.get("messaging_product", (b"",))[0] != b"whatsapp":
            return self._error(100)
        media_id = f"{next(self._ids) + 800000000000000}"
        content, mime, name = fields["file"]
        self.uploads[media_id] = (content, mime, name or "")
        return JSONResponse({"id": media_id})

    async def _messages(self, request: Request) -> Response:
        self.send_times.append(time.monotonic())
        if not self._authorised(request):
            return self._error(190)
        body = await request.json()
        if self.failures:
            failure = self.failures.pop(0)
            self.refused.append(body)
            if failure.code is None:
                return Response("upstream error", status_code=failure.status)
            return self._error(failure.code, failure.status)
        problem = _check_send(body)
        if problem:
            self.refused.append(body)
            return JSONResponse(error_doc(100, details=problem), status_code=400)
        self.sent.append(body)
        wamid = self.new_wamid()
        self.by_wamid[wamid] = body
        who = body.get("to") or body.get("recipient")
        contact = {"input": who, "wa_id": who} if body.get("to") else {"input": who, "user_id": who}
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": wamid}],
            }
        )

    # ------------------------------------------------------------------ webhooks

    def signed(self, body: bytes, secret: str | None = None) -> str:
        """Return the X-Hub-Signature-256 Meta would send (with `secret`, else ours)."""
        key = (secret or self.app_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    async def deliver(
        self,
        url: str,
        doc: dict[str, Any] | bytes,
        *,
        signature: str | bool | None = True,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """POST a webhook body to zapd: signed (True), forged (a string) or unsigned (None)."""
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        if signature is True:
            headers["X-Hub-Signature-256"] = self.signed(body)
        elif isinstance(signature, str):
            headers["X-Hub-Signature-256"] = signature
        if client is not None:
            return await client.post(url, content=body, headers=headers)
        async with httpx.AsyncClient(timeout=30) as own:
            return await own.post(url, content=body, headers=headers)

    def webhook(
        self,
        *,
        messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
        statuses: list[dict[str, Any]] = (),  # type: ignore[assignment]
        contacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Return Meta's envelope around messages / statuses of our number."""
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_phone.replace("+", "")
                .replace(" ", "")
                .replace("-", ""),
                "phone_number_id": self.phone_number_id,
            },
        }
        if contacts:
            value["contacts"] = list(contacts)
        if messages:
            value["messages"] = list(messages)
        if statuses:
            value["statuses"] = list(statuses)
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.waba_id, "changes": [{"value": value, "field": "messages"}]}],
        }


class ThreadedFakeGraph:
    """A FakeGraph served from its own thread and event loop (for tests that block, e.g.
    running zapctl as a subprocess while zapd, another process, calls the fake)."""

    def __init__(self) -> None:
        self.fake = FakeGraph()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeGraph:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(30)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# --------------------------------------------------------------------------- builders


def template(name: str, body: str, language: str = "pt_BR") -> dict[str, Any]:
    """Return a message_templates entry as Graph lists it."""
    return {
        "name": name,
        "language": language,
        "status": "APPROVED",
        "category": "UTILITY",
        "id": str(abs(hash(name)) % 10**15),
        "components": [{"type": "BODY", "text": body}],
    }


def contact(
    wa_id: str | None, name: str = "Maria Souza", user_id: str | None = None
) -> dict[str, Any]:
    """Return a `contacts[]` entry (phone and/or business-scoped user id)."""
    out: dict[str, Any] = {"profile": {"name": name}}
    if wa_id is not None:
        out["wa_id"] = wa_id
    if user_id is not None:
        out["user_id"] = user_id
    return out


_wamids = itertools.count(1)


def inbound(
    kind: str,
    content: dict[str, Any] | list[Any] | None,
    *,
    sender: str | None = "5511987654321",
    user_id: str | None = None,
    wamid: str | None = None,
    ts: int | None = None,
    context: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return one `messages[]` entry of type `kind` with its `content` object."""
    msg: dict[str, Any] = {
        "id": wamid or f"wamid.IN{next(_wamids):010d}{int(time.time() * 1000)}",
        "timestamp": str(ts if ts is not None else int(time.time())),
        "type": kind,
    }
    if sender is not None:
        msg["from"] = sender
    if user_id is not None:
        msg["from_user_id"] = user_id
    if content is not None:
        msg[kind] = content
    if context is not None:
        msg["context"] = context
    if errors is not None:
        msg["errors"] = errors
    return msg


def status(
    wamid: str,
    state: str,
    *,
    recipient: str = "5511987654321",
    ts: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    callback: str | None = None,
) -> dict[str, Any]:
    """Return one `statuses[]` entry (`callback`: the send's biz_opaque_callback_data,
    which Meta echoes in every status of that message)."""
    out: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(ts if ts is not None else int(time.time())),
        "recipient_id": recipient,
    }
    if callback is not None:
        out["biz_opaque_callback_data"] = callback
    if state != "failed":
        out["conversation"] = {"id": "c0ffee", "origin": {"type": "service"}}
        out["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors:
        out["errors"] = errors
    return out


def meta_error(code: int) -> dict[str, Any]:
    """Return an error entry as it appears inside a webhook (failed status, unsupported)."""
    _, message, details = ERRORS.get(code, (400, f"(#{code}) Error", ""))
    title = message.split(") ", 1)[-1]
    out: dict[str, Any] = {"code": code, "title": title, "message": title}
    if details:
        out["error_data"] = {"details": details}
    return out


# --------------------------------------------------------------------------- checks


def _check_send(body: dict[str, Any]) -> str | None:
    """Return what Meta would refuse in a send body, or None."""
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not body.get("to") and not body.get("recipient"):
        return "to or recipient is required"
    kind = body.get("type", "text")
    if kind not in KNOWN_TYPES or not isinstance(body.get(kind), dict):
        return f"a {kind} object is required"
    if kind == "text" and not (body["text"].get("body") or "").strip():
        return "text.body is required"
    if kind == "text" and len(body["text"]["body"]) > 4096:
        return "text.body is longer than 4096 characters"
    if kind == "interactive":
        inter = body["interactive"]
        action = inter.get("action") or {}
        if inter.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= INTERACTIVE_LIMITS["buttons"]:
                return "1 to 3 buttons"
            if any(len(b["reply"]["title"]) > INTERACTIVE_LIMITS["button_title"] for b in buttons):
                return "button titles are at most 20 characters"
        elif inter.get("type") == "list":
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            if not 1 <= len(rows) <= INTERACTIVE_LIMITS["rows"]:
                return "1 to 10 rows"
            if any(len(r["title"]) > INTERACTIVE_LIMITS["row_title"] for r in rows):
                return "row titles are at most 24 characters"
            if len(action.get("button") or "") > 20:
                return "the list button is at most 20 characters"
        else:
            return "unknown interactive type"
    if kind in ("image", "audio", "video", "document", "sticker"):
        media = body[kind]
        if "id" not in media and "link" not in media:
            return f"{kind}.id or {kind}.link is required"
    if kind == "template":
        tpl = body["template"]
        if not tpl.get("name") or not (tpl.get("language") or {}).get("code"):
            return "template.name and template.language.code are required"
    return None
