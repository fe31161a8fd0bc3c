"""shared.client against a small real HTTP + WebSocket server on loopback.

The server here speaks zapd's contract (error documents, token refresh, cursor pages,
the event envelope and `?since=` resume) with behaviour each test scripts, so failure
paths a real daemon rarely shows (every status code, non-JSON bodies, dropped sockets,
refused handshakes) are exercised over real sockets. tests/zapd/api/test_client_live.py
runs the same client against the real daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from shared.client import (
    BadRequest,
    BadResponse,
    Conflict,
    DaemonUnreachable,
    Forbidden,
    NotFound,
    RateLimited,
    RequestTimeout,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationError,
    ZapClient,
    ZapError,
    parse_retry_after,
)
from shared.protocol.auth import TokenPair
from shared.protocol.events import EventEnvelope

COMPANY = uuid.uuid4()
OTHER_COMPANY = uuid.uuid4()
Script = Callable[[WebSocket, "int | None"], Awaitable[None]]


def envelope(seq: int | None, type_: str = "ticket.update", company: uuid.UUID = COMPANY) -> str:
    """Return one wire envelope as the daemon sends it."""
    return json.dumps({"seq": seq, "type": type_, "company_id": str(company), "data": {"n": seq}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeZapd:
    """A loopback server speaking zapd's HTTP and WebSocket contract, scripted per test."""

    def __init__(self) -> None:
        self.valid = {"good"}  # access tokens accepted
        self.expired = {"old"}  # access tokens answered ERR_TOKEN_EXPIRED
        self.refresh_pairs = {"r1": ("good", "r2")}  # refresh token -> new pair
        self.refresh_calls = 0
        self.ws_log: list[tuple[str | None, str]] = []  # (since, token) per handshake
        self.me_calls = 0
        self.ws_times: list[float] = []
        self.scripts: list[Script] = []  # one per accepted connection, in order
        self.refuse = 0  # the next N handshakes answer 503
        self.received: list[dict[str, Any]] = []  # frames clients sent
        self.user_queries: list[dict[str, str]] = []
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _auth(self, header: str | None) -> JSONResponse | None:
        token = (header or "").removeprefix("Bearer ")
        if token in self.valid:
            return None
        if token in self.expired:
            body = {"error": "ERR_TOKEN_EXPIRED", "message": "access token expired"}
        else:
            body = {"error": "ERR_TOKEN_REVOKED", "message": "access token revoked"}
        return JSONResponse(body, status_code=401)

    async def status(self, request: Request) -> Response:
        code = int(request.path_params["code"])
        body: dict[str, Any] = {"error": f"ERR_TEST_{code}", "message": f"failed with {code}"}
        if code == 422:
            body["details"] = [{"loc": ["body", "name"], "msg": "too short", "type": "x"}]
        headers = {}
        if "retry_after" in request.query_params:
            headers["Retry-After"] = request.query_params["retry_after"]
        return JSONResponse(body, status_code=code, headers=headers)

    async def plain(self, request: Request) -> Response:
        code = int(request.path_params["code"])
        return PlainTextResponse("<html>upstream exploded</html>", status_code=code)

    async def me(self, request: Request) -> Response:
        if (denied := self._auth(request.headers.get("authorization"))) is not None:
            return denied
        self.me_calls += 1
        root = request.headers.get("authorization") == "Bearer root"
        return JSONResponse(
            {
                "id": None,
                "email": None,
                "name": "API token bot",
                "company_id": None if root else str(COMPANY),
                "role": None if root else 0,
                "is_global_admin": root,
                "via_api_token": True,
                "some_future_field": 1,
            }
        )

    async def refresh(self, request: Request) -> Response:
        self.refresh_calls += 1
        await asyncio.sleep(0.05)  # long enough for concurrent callers to pile up
        token = (await request.json()).get("refresh_token")
        pair = self.refresh_pairs.pop(token, None)
        if pair is None:
            return JSONResponse(
                {"error": "ERR_REFRESH_REUSED", "message": "refresh token already used"},
                status_code=401,
            )
        return JSONResponse({"access_token": pair[0], "refresh_token": pair[1], "expires_in": 900})

    async def users(self, request: Request) -> Response:
        if (denied := self._auth(request.headers.get("authorization"))) is not None:
            return denied
        self.user_queries.append(dict(request.query_params))
        now = datetime.now(UTC).isoformat()
        everyone = [
            {
                "id": str(uuid.UUID(int=i + 1)),
                "company_id": str(COMPANY),
                "email": f"u{i}@acme.com.br",
                "name": f"User {i}",
                "role": 2,
                "active": True,
                "max_concurrent_tickets": 5,
                "presence": 0,
                "presence_at": None,
                "last_login_at": None,
                "password_changed_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(5)
        ]
        start = int(request.query_params.get("cursor") or 0)
        limit = int(request.query_params.get("limit") or 50)
        items = everyone[start : start + limit]
        more = start + limit < len(everyone)
        return JSONResponse({"items": items, "next_cursor": str(start + limit) if more else None})

    async def garbage(self, request: Request) -> Response:
        return JSONResponse({"nothing": "like a department"})

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(3)
        return JSONResponse({})

    async def ws(self, websocket: WebSocket) -> None:
        raw = websocket.query_params.get("since")
        since = int(raw) if raw is not None and raw.isdigit() else None
        token = (websocket.headers.get("authorization") or "").removeprefix("Bearer ")
        self.ws_log.append((raw, token))
        self.ws_times.append(time.monotonic())
        if self.refuse:
            self.refuse -= 1
            body = {"error": "ERR_UNAVAILABLE", "message": "restarting"}
            await websocket.send_denial_response(JSONResponse(body, status_code=503))
            return
        if (denied := self._auth(websocket.headers.get("authorization"))) is not None:
            await websocket.send_denial_response(denied)
            return
        await websocket.accept()
        script = self.scripts.pop(0) if self.scripts else hold_open
        with contextlib.suppress(WebSocketDisconnect):
            await script(websocket, since)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/status/{code:int}", self.status),
                Route("/api/v1/plain/{code:int}", self.plain),
                Route("/api/v1/auth/me", self.me),
                Route("/api/v1/auth/refresh", self.refresh, methods=["POST"]),
                Route("/api/v1/users", self.users),
                Route("/api/v1/departments/{id}", self.garbage),
                Route("/api/v1/slow", self.slow),
                WebSocketRoute("/api/v1/ws", self.ws),
            ]
        )

    async def start(self, port: int = 0) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app(),
                host="127.0.0.1",
                port=port,
                lifespan="off",
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 10)
            self.server = self.task = None


async def hold_open(ws: WebSocket, since: int | None) -> None:
    """Keep the connection until the client leaves, recording what it sends."""
    while True:
        await ws.receive_text()


def send_range(first: int, last: int, *, replay: int = 0, close: int | None = None) -> Script:
    """Send seqs first..last (after `replay` repeats of older seqs), then close or idle."""

    async def script(ws: WebSocket, since: int | None) -> None:
        for seq in range(max(1, first - replay), last + 1):
            await ws.send_text(envelope(seq))
        if close is None:
            await hold_open(ws, since)
        else:
            await ws.close(close)

    return script


def send_frames(*frames: str, close: int | None = None) -> Script:
    """Send these frames, then close or idle."""

    async def script(ws: WebSocket, since: int | None) -> None:
        for frame in frames:
            await ws.send_text(frame)
        if close is None:
            await hold_open(ws, since)
        else:
            await ws.close(close)

    return script


@pytest.fixture
async def fake() -> AsyncIterator[FakeZapd]:
    server = FakeZapd()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def take(sub: Any, n: int, limit: float = 10) -> list[EventEnvelope]:
    """Read n events from a subscription."""

    async def run() -> list[EventEnvelope]:
        out = []
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
        return out

    return await asyncio.wait_for(run(), limit)


# ------------------------------------------------------------------ import boundary


def test_import_leaves_programs_and_heavy_libraries_out() -> None:
    code = (
        "import json, sys\n"
        "import shared.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('zapd', 'zaptui', 'zapctl', 'sqlalchemy', 'textual'))\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


# ------------------------------------------------------------------ HTTP errors


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, ValidationError),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, Unavailable),
        (418, ZapError),
    ],
)
async def test_each_status_maps_to_its_error(
    fake: FakeZapd, status: int, exc_type: type[ZapError]
) -> None:
    async with ZapClient(fake.url, token="good") as zap:
        with pytest.raises(exc_type) as caught:
            await zap.request("GET", f"/api/v1/status/{status}")
    err = caught.value
    assert type(err) is exc_type
    assert err.status == status
    assert err.code == f"ERR_TEST_{status}"
    assert err.message == f"failed with {status}" == str(err)
    if status == 422:
        assert err.details == [{"loc": ["body", "name"], "msg": "too short", "type": "x"}]
    if status == 429:
        assert isinstance(err, RateLimited) and err.retry_after is None


async def test_non_json_error_bodies_still_give_typed_errors(fake: FakeZapd) -> None:
    async with ZapClient(fake.url) as zap:
        with pytest.raises(ServerError) as caught:
            await zap.request("GET", "/api/v1/plain/502")
        assert caught.value.status == 502 and caught.value.code == "ERR_HTTP_502"
        assert "upstream exploded" in caught.value.message
        with pytest.raises(NotFound) as nf:
            await zap.request("GET", "/api/v1/plain/404")
        assert nf.value.code == "ERR_HTTP_404"
        # A route the server does not have: Starlette's own plain-text 404.
        with pytest.raises(NotFound):
            await zap.request("GET", "/api/v1/no-such-route")


async def test_retry_after_seconds_and_http_date(fake: FakeZapd) -> None:
    async with ZapClient(fake.url) as zap:
        with pytest.raises(RateLimited) as caught:
            await zap.request("GET", "/api/v1/status/429", params={"retry_after": "17"})
        assert caught.value.retry_after == 17.0
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
        with pytest.raises(RateLimited) as caught:
            await zap.request("GET", "/api/v1/status/429", params={"retry_after": when})
        assert caught.value.retry_after is not None and 110 <= caught.value.retry_after <= 120
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


async def test_requests_stay_under_the_daemons_url() -> None:
    # Plain-HTTP clients skip TLS set-up; an absolute URL could otherwise go elsewhere.
    async with ZapClient(f"http://127.0.0.1:{free_port()}") as zap:
        for bad in ("https://example.com/api/v1/auth/me", "api/v1/auth/me", "//evil/x"):
            with pytest.raises(ValueError, match="not a path under the daemon's URL"):
                await zap.request("GET", bad)


async def test_connection_refused_is_daemon_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with ZapClient(url, token="good") as zap:
        with pytest.raises(DaemonUnreachable) as caught:
            await zap.me()
        assert str(caught.value) == f"cannot reach zapd at {url} — is it running?"
        assert caught.value.message == f"cannot reach zapd at {url} — is it running?"
        with pytest.raises(DaemonUnreachable):
            await zap.healthz()
        # The event stream says the same on its first connect.
        with pytest.raises(DaemonUnreachable) as ws_caught:
            async with zap.subscribe():
                pass
        assert ws_caught.value.message == caught.value.message
    # What people type (no scheme) works and is reported as a URL.
    async with ZapClient(url.removeprefix("http://")) as zap:
        with pytest.raises(DaemonUnreachable) as caught:
            await zap.healthz()
        assert str(caught.value) == f"cannot reach zapd at {url} — is it running?"


async def test_slow_answer_is_a_timeout_and_bad_answer_is_bad_response(fake: FakeZapd) -> None:
    async with ZapClient(fake.url, token="good", timeout=0.3) as zap:
        with pytest.raises(RequestTimeout) as caught:
            await zap.request("GET", "/api/v1/slow")
        assert "did not answer within 0.3s" in caught.value.message
        with pytest.raises(BadResponse) as bad:
            await zap.get_department(uuid.uuid4())
        assert "/api/v1/departments/" in bad.value.message and bad.value.status == 200


async def test_responses_parse_into_protocol_models(fake: FakeZapd) -> None:
    async with ZapClient(fake.url, token="good") as zap:
        me = await zap.me()
    assert me.company_id == COMPANY and me.via_api_token is True and me.role == 0


# ------------------------------------------------------------------ token refresh


async def test_expired_token_is_refreshed_once_and_retried(fake: FakeZapd) -> None:
    seen: list[TokenPair] = []
    zap = ZapClient(fake.url, token="old", refresh_token="r1", on_tokens=seen.append)
    async with zap:
        results = await asyncio.gather(*(zap.me() for _ in range(5)))
    assert all(m.name == "API token bot" for m in results)
    # Five requests saw the expiry at once, yet the refresh token was spent only once.
    assert fake.refresh_calls == 1
    assert [p.access_token for p in seen] == ["good"]
    assert (zap.access_token, zap.refresh_token) == ("good", "r2")


async def test_async_on_tokens_is_awaited(fake: FakeZapd) -> None:
    seen: list[str] = []

    async def persist(pair: TokenPair) -> None:
        await asyncio.sleep(0)
        seen.append(pair.refresh_token)

    async with ZapClient(fake.url, token="old", refresh_token="r1", on_tokens=persist) as zap:
        await zap.me()
    assert seen == ["r2"]


async def test_no_refresh_without_refresh_token_or_for_other_401s(fake: FakeZapd) -> None:
    async with ZapClient(fake.url, token="old") as zap:
        with pytest.raises(Unauthorized) as caught:
            await zap.me()
        assert caught.value.code == "ERR_TOKEN_EXPIRED"
    async with ZapClient(fake.url, token="revoked", refresh_token="r1") as zap:
        with pytest.raises(Unauthorized) as caught:
            await zap.me()
        assert caught.value.code == "ERR_TOKEN_REVOKED"
    assert fake.refresh_calls == 0


async def test_failed_refresh_surfaces_as_unauthorized(fake: FakeZapd) -> None:
    async with ZapClient(fake.url, token="old", refresh_token="spent-token") as zap:
        with pytest.raises(Unauthorized) as caught:
            await zap.me()
    assert caught.value.code == "ERR_REFRESH_REUSED"
    assert fake.refresh_calls == 1


# ------------------------------------------------------------------ pagination


async def test_iterate_walks_every_page_with_filters(fake: FakeZapd) -> None:
    async with ZapClient(fake.url, token="good") as zap:
        page = await zap.list_users(limit=2)
        assert len(page.items) == 2 and page.next_cursor == "2"
        names = [u.name async for u in zap.iterate(zap.list_users, q="user", limit=2)]
    assert names == [f"User {i}" for i in range(5)]
    assert fake.user_queries[1:] == [
        {"q": "user", "limit": "2"},
        {"q": "user", "limit": "2", "cursor": "2"},
        {"q": "user", "limit": "2", "cursor": "4"},
    ]


# ------------------------------------------------------------------ WebSocket


async def test_resume_after_drops_yields_each_event_once_in_order(fake: FakeZapd) -> None:
    fake.scripts = [
        send_range(1, 3, close=1012),  # service restart
        send_range(4, 5, replay=2, close=4008),  # slow consumer; replays 2..3 first
        send_range(6, 7, replay=3, close=1001),  # going away
        send_range(8, 9, replay=1),
    ]
    async with (
        ZapClient(fake.url, token="good") as zap,
        zap.subscribe(backoff_initial=0.01) as sub,
    ):
        events = await take(sub, 9)
        assert [e.seq for e in events] == list(range(1, 10))
        assert all(e.company_id == COMPANY and e.data == {"n": e.seq} for e in events)
        assert sub.last_seq == 9 and sub.connects == 4
    assert [since for since, _ in fake.ws_log] == [None, "3", "5", "7"]


async def test_network_loss_and_server_restart_resume_with_backoff(fake: FakeZapd) -> None:
    fake.scripts = [send_range(1, 2)]
    async with ZapClient(fake.url, token="good") as zap:
        sub = zap.subscribe(backoff_initial=0.05, backoff_max=0.4)
        async with sub:
            assert [e.seq for e in await take(sub, 2)] == [1, 2]
            # The daemon goes away for a while: reconnects fail (connection refused) and
            # back off; when it is back on the same port the stream resumes after seq 2.
            port = fake.port
            await fake.stop()
            reader = asyncio.create_task(take(sub, 3, limit=20))
            await asyncio.sleep(1.5)
            assert not reader.done()
            assert isinstance(sub.last_error, DaemonUnreachable)
            fake.scripts = [send_range(3, 5, replay=2)]
            await fake.start(port)
            events = await reader
            assert [e.seq for e in events] == [3, 4, 5]
            assert fake.ws_log[-1][0] == "2"
            # Exponential with jitter: each sleep in [d/2, d], d doubling up to the cap.
            delays = sub.delays
            assert len(delays) >= 4
            for i, delay in enumerate(delays):
                d = min(0.4, 0.05 * 2**i)
                assert d / 2 <= delay <= d, (i, delays)
            # A successful connect resets the backoff: the next loss waits ~initial again.
            before = len(sub.delays)
            assert sub._ws is not None
            sub._ws.transport.abort()  # the network drops under the client
            fake.scripts = [send_range(6, 6, replay=1)]
            assert [e.seq for e in await take(sub, 1)] == [6]
            assert len(sub.delays) == before + 1 and sub.delays[-1] <= 0.05


async def test_refused_handshakes_back_off_then_connect(fake: FakeZapd) -> None:
    fake.scripts = [send_range(1, 1, close=1013), send_range(2, 3)]
    async with (
        ZapClient(fake.url, token="good") as zap,
        zap.subscribe(backoff_initial=0.05, backoff_max=1.0) as sub,
    ):
        fake.refuse = 4  # the next four handshakes get 503
        events = await take(sub, 3)
        assert [e.seq for e in events] == [1, 2, 3]
        assert isinstance(sub.last_error, Unavailable)
    gaps = [b - a for a, b in zip(fake.ws_times[1:], fake.ws_times[2:], strict=False)]
    assert len(gaps) == 4
    # Attempt k waits at least 0.05 * 2**k / 2: the waits grow.
    for k, gap in enumerate(gaps, start=1):
        assert gap >= 0.05 * 2**k / 2 - 0.01, gaps
    assert [since for since, _ in fake.ws_log] == [None, "1", "1", "1", "1", "1"]


async def test_ephemeral_events_pass_and_typing_is_sent(
    fake: FakeZapd, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = uuid.uuid4()
    got_typing = asyncio.Event()

    async def script(ws: WebSocket, since: int | None) -> None:
        await ws.send_text(envelope(1))
        await ws.send_text(envelope(None, "typing"))
        await ws.send_text("not json at all")
        await ws.send_text(json.dumps({"type": "pong"}))  # not an envelope: skipped
        await ws.send_text(
            json.dumps({"type": "error", "error": "ERR_BAD_FRAME", "message": "nope"})
        )
        await ws.send_text(envelope(1))  # duplicate
        await ws.send_text(envelope(None, "typing"))
        await ws.send_text(envelope(1, company=OTHER_COMPANY))  # another company's seq 1
        fake.received.append(json.loads(await ws.receive_text()))
        got_typing.set()
        await hold_open(ws, since)

    fake.scripts = [script]
    async with ZapClient(fake.url, token="good") as zap, zap.subscribe() as sub:
        events = await take(sub, 4)
        assert [(e.seq, e.type) for e in events] == [
            (1, "ticket.update"),
            (None, "typing"),
            (None, "typing"),
            (1, "ticket.update"),
        ]
        assert events[3].company_id == OTHER_COMPANY
        assert await sub.send_typing(ticket, typing=False) is True
        await asyncio.wait_for(got_typing.wait(), 5)
    assert fake.received == [{"type": "typing", "ticket_id": str(ticket), "typing": False}]
    refused = [r for r in caplog.records if r.name == "zap.client" and r.levelname == "WARNING"]
    assert [r.getMessage() for r in refused] == ["zapd refused a frame: ERR_BAD_FRAME nope"]
    assert await sub.send_typing(ticket) is False  # closed stream: nothing sent


async def test_since_is_sent_and_older_events_dropped(fake: FakeZapd) -> None:
    fake.scripts = [send_range(40, 42, replay=3)]
    async with ZapClient(fake.url, token="good") as zap, zap.subscribe(since=39) as sub:
        assert [e.seq for e in await take(sub, 3)] == [40, 41, 42]
    assert fake.ws_log == [("39", "good")]


async def test_close_4001_refreshes_once_and_resumes(fake: FakeZapd) -> None:
    fake.valid = {"first", "good"}
    seen: list[TokenPair] = []
    fake.scripts = [send_range(1, 2, close=4001), send_range(3, 4, replay=1)]
    async with (
        ZapClient(fake.url, token="first", refresh_token="r1", on_tokens=seen.append) as zap,
        zap.subscribe(backoff_initial=5) as sub,
    ):
        started = time.monotonic()
        assert [e.seq for e in await take(sub, 4)] == [1, 2, 3, 4]
        assert time.monotonic() - started < 4  # no backoff after a successful refresh
    assert fake.ws_log == [(None, "first"), ("2", "good")]
    assert fake.refresh_calls == 1 and [p.access_token for p in seen] == ["good"]


async def test_handshake_401_refreshes_then_gives_up(fake: FakeZapd) -> None:
    fake.scripts = [send_range(1, 1)]
    async with ZapClient(fake.url, token="old", refresh_token="r1") as zap:
        async with zap.subscribe() as sub:
            assert [e.seq for e in await take(sub, 1)] == [1]
        assert fake.ws_log == [(None, "old"), (None, "good")]
    # The refresh itself fails: Unauthorized, no loop.
    async with ZapClient(fake.url, token="old", refresh_token="spent") as zap:
        with pytest.raises(Unauthorized) as caught:
            async with zap.subscribe():
                pass
        assert "token refresh failed" in caught.value.message
    # The refreshed token is refused too: one refresh only, then Unauthorized.
    fake.refresh_pairs["r9"] = ("still-bad", "r10")
    async with ZapClient(fake.url, token="old", refresh_token="r9") as zap:
        with pytest.raises(Unauthorized):
            async with zap.subscribe():
                pass
    assert fake.refresh_calls == 3
    # No refresh token at all.
    async with ZapClient(fake.url, token="old") as zap:
        with pytest.raises(Unauthorized):
            async with zap.subscribe():
                pass
    assert fake.refresh_calls == 3


async def test_4001_again_right_after_refresh_raises(fake: FakeZapd) -> None:
    fake.valid = {"first", "good"}
    fake.scripts = [send_range(1, 1, close=4001), send_range(2, 1, close=4001)]
    async with (
        ZapClient(fake.url, token="first", refresh_token="r1") as zap,
        zap.subscribe(backoff_initial=0.01) as sub,
    ):
        with pytest.raises(Unauthorized):
            await take(sub, 5)
    assert fake.refresh_calls == 1 and len(fake.ws_log) == 2


async def test_other_close_codes_end_the_stream(fake: FakeZapd) -> None:
    fake.scripts = [send_range(1, 1, close=1008)]
    async with ZapClient(fake.url, token="good") as zap, zap.subscribe() as sub:
        with pytest.raises(ZapError) as caught:
            await take(sub, 2)
    assert caught.value.code == "ERR_WS_CLOSED" and "1008" in caught.value.message
    assert len(fake.ws_log) == 1


async def test_global_admin_resumes_per_company(fake: FakeZapd) -> None:
    fake.valid = {"root"}
    a, b = COMPANY, OTHER_COMPANY
    fake.scripts = [
        send_frames(
            envelope(5, company=a), envelope(2, company=b), envelope(6, company=a), close=1012
        ),
        send_frames(
            envelope(6, company=a),  # replayed: dropped
            envelope(2, company=b),  # replayed: dropped
            envelope(3, company=b),
            close=1012,
        ),
        send_frames(envelope(7, company=a)),
    ]
    async with ZapClient(fake.url, token="root") as zap, zap.subscribe(backoff_initial=0.01) as sub:
        got = [(e.company_id, e.seq) for e in await take(sub, 5)]
        assert got == [(a, 5), (b, 2), (a, 6), (b, 3), (a, 7)]
        assert sub.positions == {a: 7, b: 3} and sub.last_seq == 7
    # Two companies seen: no need to ask who the caller is.
    assert fake.me_calls == 0
    assert [since for since, _ in fake.ws_log] == [None, f"{a}:6,{b}:2", f"{a}:6,{b}:3"]


async def test_one_company_seen_asks_once_whether_caller_is_global(fake: FakeZapd) -> None:
    for token, expected in (("root", f"{COMPANY}:4"), ("good", "4")):
        fake.valid = {token}
        fake.ws_log.clear()
        fake.me_calls = 0
        fake.scripts = [
            send_range(4, 4, close=1012),
            send_range(5, 5, close=1012),
            send_range(6, 6),
        ]
        async with (
            ZapClient(fake.url, token=token) as zap,
            zap.subscribe(backoff_initial=0.01) as sub,
        ):
            assert [e.seq for e in await take(sub, 3)] == [4, 5, 6]
        assert fake.me_calls == 1
        assert [since for since, _ in fake.ws_log][:2] == [None, expected]


async def test_global_admin_may_start_from_positions(fake: FakeZapd) -> None:
    fake.valid = {"root"}
    fake.scripts = [send_frames(envelope(9, company=COMPANY), envelope(10, company=COMPANY))]
    async with (
        ZapClient(fake.url, token="root") as zap,
        zap.subscribe(since={COMPANY: 9}) as sub,
    ):
        assert [e.seq for e in await take(sub, 1)] == [10]
    assert fake.ws_log == [(f"{COMPANY}:9", "root")]


async def test_leaving_with_unread_events_closes_at_once(fake: FakeZapd) -> None:
    # websockets stops reading once 16 frames wait unread; the close must still be quick.
    fake.scripts = [send_range(1, 200)]
    async with ZapClient(fake.url, token="good") as zap:
        sub = zap.subscribe()
        async with sub:
            assert [e.seq for e in await take(sub, 1)] == [1]
            await asyncio.sleep(0.3)  # the rest piles up unread
            started = time.monotonic()
        assert time.monotonic() - started < 2
        assert not sub.connected
        with pytest.raises(StopAsyncIteration):
            await anext(sub)
