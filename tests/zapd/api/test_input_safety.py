"""The HTTP edge refuses what it must: oversized bodies, non-JSON bodies, unknown routes
and methods, bad parameters, unexpected crashes — always in the error shape, never
with a traceback, and always with the request id echoed back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.zapd.api.conftest import Live, serving
from tests.zapd.api.conftest import test_settings as make_settings
from zapd.api.app import create_app
from zapd.daemon import open_daemon
from zapd.db.models import Department

LIMIT = 4096  # a small body limit makes the tests cheap; the default is 1 MiB


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check the contract's error shape, the request id, and that nothing leaked."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert r.headers.get("x-request-id")
    return dict(body)


@pytest.fixture
async def small(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[Live]:
    """A zapd whose body limit is LIMIT bytes, with a logged-in global admin."""
    settings = make_settings(tmp_path, max_body_bytes=LIMIT)
    async with serving(engine, backend, settings, root=True) as lv:
        yield lv


async def department_count(live: Live) -> int:
    async with live.kernel.read() as db:
        return int(await db.scalar(select(func.count()).select_from(Department)) or 0)


async def raw_exchange(url: str, request: bytes, read_timeout: float = 10) -> bytes:
    """Send raw bytes on a new connection; return everything the server answers."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()


def parse_raw(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


async def test_announced_oversized_body_is_refused_before_it_is_read(small: Live) -> None:
    t = await small.tenant()
    before = await department_count(small)
    token = t.admin.headers["authorization"]
    # Content-Length says 50 MB; only a few bytes follow. The answer must come at once,
    # without zapd waiting for (or buffering) the body.
    raw = await raw_exchange(
        small.url,
        b"POST /api/v1/departments HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: {token}\r\n".encode()
        + b'Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{"name": ',
        read_timeout=5,
    )
    status, headers, body = parse_raw(raw)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert headers.get("x-request-id")
    doc = json.loads(body)
    assert doc["error"] == "ERR_PAYLOAD_TOO_LARGE" and str(LIMIT) in doc["message"]
    assert await department_count(small) == before

    # Same through a client, with a real body one byte over the limit.
    r = await t.admin.post(
        "/api/v1/departments",
        content=b'{"name": "' + b"x" * LIMIT + b'"}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")
    assert await department_count(small) == before


async def test_streamed_oversized_body_is_cut_off_while_reading(small: Live) -> None:
    t = await small.tenant()
    before = await department_count(small)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "'
        for _ in range(8):  # 8 KiB in total: twice the limit, no Content-Length
            sent += 1024
            yield b"y" * 1024
        yield b'"}'

    r = await t.admin.post(
        "/api/v1/departments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers  # really chunked
    assert r.request.headers["transfer-encoding"] == "chunked"
    body = assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")
    assert str(LIMIT) in body["message"]
    assert await department_count(small) == before

    # A chunked body under the limit goes through as usual.
    async def small_chunks() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"Chunked"}'

    r = await t.admin.post(
        "/api/v1/departments", content=small_chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    assert await department_count(small) == before + 1


async def test_media_uploads_have_their_own_ceiling(small: Live) -> None:
    t = await small.tenant()
    # Twice the JSON limit is fine on the media path (whatever the route makes of it)...
    r = await t.admin.post(
        "/api/v1/media",
        content=b"\x89PNG" + b"\0" * (2 * LIMIT),
        headers={"content-type": "image/png"},
    )
    assert r.status_code != 413, r.text
    assert "Traceback" not in r.text
    # ...but not on a JSON path that merely starts with the same letters.
    r = await t.admin.post("/api/v1/media-x", content=b"\0" * (2 * LIMIT))
    assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")
    # And the media ceiling exists: 200 MB announced is refused before it is read.
    raw = await raw_exchange(
        small.url,
        b"POST /api/v1/media HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: 200000000\r\n\r\n\x89PNG",
        read_timeout=5,
    )
    status, _, body = parse_raw(raw)
    assert status == 413 and json.loads(body)["error"] == "ERR_PAYLOAD_TOO_LARGE"


async def test_body_at_the_limit_is_accepted(small: Live) -> None:
    t = await small.tenant()
    padding = LIMIT - len(json.dumps({"name": "Exato", "greeting": ""}).encode())
    doc = json.dumps({"name": "Exato", "greeting": " " * padding}).encode()
    assert len(doc) == LIMIT
    r = await t.admin.post(
        "/api/v1/departments", content=doc, headers={"content-type": "application/json"}
    )
    assert r.status_code != 413, r.text  # validation may refuse it; the size check must not


async def test_default_limit_is_one_mebibyte(live: Live) -> None:
    assert live.kernel.settings.max_body_bytes == 1 << 20
    t = await live.tenant()
    r = await t.admin.post(
        "/api/v1/departments",
        content=b'{"name": "' + b"z" * (1 << 20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")


async def test_non_json_bodies_are_refused_and_change_nothing(live: Live) -> None:
    t = await live.tenant()
    before = await department_count(live)
    payload = json.dumps({"name": "Sem tipo"}).encode()
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ):
        headers = {"content-type": content_type} if content_type else {}
        r = await t.admin.post("/api/v1/departments", content=payload, headers=headers)
        assert r.status_code in (415, 422), (content_type, r.text)
        assert_error(r, r.status_code, r.json()["error"])
        assert r.json()["error"] in ("ERR_VALIDATION", "ERR_UNSUPPORTED_MEDIA_TYPE")
    for bad in (b"{not json", b"\xff\xfe\x00", b"[1, 2", b'"just a string"', b"null"):
        r = await t.admin.post(
            "/api/v1/departments", content=bad, headers={"content-type": "application/json"}
        )
        assert r.status_code in (400, 422), (bad, r.text)  # 400: not even UTF-8
        assert_error(
            r, r.status_code, "ERR_VALIDATION" if r.status_code == 422 else "ERR_BAD_REQUEST"
        )
    assert await department_count(live) == before


async def test_404_405_422_use_the_error_shape(live: Live) -> None:
    anon = live.client()
    assert_error(await anon.get("/nope"), 404, "ERR_NOT_FOUND")
    assert_error(await anon.get("/api/v1/not-a-resource"), 404, "ERR_NOT_FOUND")
    assert_error(await live.root.get(f"/api/v1/departments/{uuid.uuid4()}"), 404, "ERR_NOT_FOUND")
    r = await anon.delete("/healthz")
    assert_error(r, 405, "ERR_METHOD_NOT_ALLOWED")
    assert r.headers["allow"] == "GET"
    assert_error(await live.root.get("/api/v1/departments/not-a-uuid"), 422, "ERR_VALIDATION")
    assert_error(
        await live.root.get("/api/v1/departments", params={"company_id": "x" * 5000}),
        422,
        "ERR_VALIDATION",
    )
    assert_error(await anon.get("/api/v1/departments"), 401, "ERR_UNAUTHORIZED")


async def test_request_id_is_honoured_or_generated(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    anon = live.client()
    caplog.set_level(logging.INFO, logger="zapd.access")
    r = await anon.get("/healthz", headers={"X-Request-ID": "abc-123.def"})
    assert r.headers["x-request-id"] == "abc-123.def"
    generated = (await anon.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    # Ids that could forge log lines or headers are replaced, not echoed.
    for evil in ("a b", "x" * 200, "id\twith\ttabs", "é-accent".encode(), "<script>", ""):
        got = (await anon.get("/healthz", headers={"X-Request-ID": evil})).headers
        assert got["x-request-id"] != evil and len(got["x-request-id"]) == 32
    ours = [
        rec
        for rec in caplog.records
        if rec.name == "zapd.access" and getattr(rec, "request_id", None) == "abc-123.def"
    ]
    assert len(ours) == 1
    rec: Any = ours[0]
    assert (rec.method, rec.path, rec.route, rec.status) == ("GET", "/healthz", "/healthz", 200)
    assert rec.duration_ms >= 0


async def test_access_log_never_holds_credentials_or_bodies(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = await live.tenant()
    token = t.admin.headers["authorization"].split()[1]
    secret_body = "segredo-do-corpo-" + uuid.uuid4().hex
    r = await t.admin.post(
        "/api/v1/departments?x=query-secret", json={"name": "Dept", "greeting": secret_body}
    )
    assert r.status_code == 201, r.text
    r = await live.client().post(
        "/api/v1/auth/login", json={"email": t.emails["admin"], "password": "wrong-pw-xyz"}
    )
    assert r.status_code in (401, 429)
    access = [rec for rec in caplog.records if rec.name == "zapd.access"]
    assert any(getattr(rec, "route", None) == "/api/v1/departments" for rec in access)
    daemon = [rec for rec in caplog.records if rec.name.startswith(("zapd", "uvicorn.error"))]
    assert len(daemon) >= len(access)
    for rec in daemon:  # (the test's own httpx client logs its URLs; that is not zapd)
        text = rec.getMessage() + " " + repr(vars(rec))
        assert token not in text
        assert secret_body not in text
        assert "wrong-pw-xyz" not in text
        assert "query-secret" not in text  # query strings stay out too


async def test_unexpected_exception_is_a_shaped_500_without_traceback(
    engine: AsyncEngine,
    backend: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ZAP_DEBUG", "1")  # even in debug mode nothing leaks
    settings = make_settings(tmp_path)
    daemon = await open_daemon(settings, engine=engine)
    app = create_app(settings, daemon)

    async def boom() -> None:
        raise RuntimeError("secret-internal-detail at /srv/zap/db.py")

    async def boom_while_reading(request: Request) -> None:
        await request.body()
        raise KeyError("another-secret")

    # Test-only routes, added to this test's app instance (never in product code).
    app.add_api_route("/test-only/boom", boom, methods=["GET"])
    app.add_api_route("/test-only/boom-body", boom_while_reading, methods=["POST"])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        caplog.set_level(logging.INFO)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            r = await c.get("/test-only/boom", headers={"X-Request-ID": "req-500"})
            body = assert_error(r, 500, "ERR_INTERNAL")
            assert r.headers["x-request-id"] == "req-500"
            assert "secret-internal-detail" not in r.text and "RuntimeError" not in r.text
            assert set(body) == {"error", "message"}
            r = await c.post("/test-only/boom-body", content=b"x" * 100)
            assert_error(r, 500, "ERR_INTERNAL")
            assert "another-secret" not in r.text and "KeyError" not in r.text
            # The daemon stays up and counts the failures.
            assert (await c.get("/healthz")).status_code == 200
            scrape = {"Authorization": f"Bearer {daemon.metrics_token}"}
            metrics = (await c.get("/metrics", headers=scrape)).text
            assert (
                'zapd_http_requests_total{method="GET",route="/test-only/boom",status="500"} 1.0'
                in metrics
            )
        # The log, not the response, has the details — tied to the request id.
        errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert any(
            rec.exc_info and "secret-internal-detail" in str(rec.exc_info[1]) for rec in errors
        )
        access = [
            rec
            for rec in caplog.records
            if rec.name == "zapd.access" and getattr(rec, "request_id", None) == "req-500"
        ]
        assert [getattr(rec, "status", None) for rec in access] == [500]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_websocket_handshakes_get_a_request_id_and_an_access_line(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    caplog.set_level(logging.INFO, logger="zapd.access")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            live.ws_url, additional_headers={"Authorization": "Bearer nope", "X-Request-ID": "ws-1"}
        ):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "ws-1"
    assert b"Traceback" not in response.body

    token = live.root.headers["authorization"].split()[1]
    async with connect(
        live.ws_url, additional_headers={"Authorization": f"Bearer {token}", "X-Request-ID": "ws-2"}
    ) as ws:
        assert ws.response.headers["x-request-id"] == "ws-2"
    for _ in range(100):  # the access line is written once the server side has closed
        lines = {
            getattr(r, "request_id", None): r for r in caplog.records if r.name == "zapd.access"
        }
        if "ws-2" in lines:
            break
        await asyncio.sleep(0.02)
    assert (lines["ws-1"].method, lines["ws-1"].status) == ("WS", 401)  # type: ignore[attr-defined]
    assert (lines["ws-2"].status, lines["ws-2"].route) == (101, "/api/v1/ws")  # type: ignore[attr-defined]
    assert token not in caplog.text


async def test_nul_characters_are_refused_not_stored(live: Live) -> None:
    """PostgreSQL cannot store U+0000: bodies and URLs carrying it get 422, never 500."""
    t = await live.tenant()
    r = await t.admin.post("/api/v1/departments", json={"name": "Lab\x00oratório"})
    assert r.status_code == 422 and r.json()["error"] == "ERR_VALIDATION"
    r = await t.admin.post(
        "/api/v1/clients", json={"phone": "+5511912345678", "custom_fields": {"k\x00": "v"}}
    )
    assert r.status_code == 422
    for path in ("/api/v1/clients?q=ab%00cd", "/api/v1/users?q=%00", "/api/v1/tickets?q=x%00"):
        r = await t.admin.get(path)
        assert r.status_code == 422, path
        assert r.json()["error"] == "ERR_VALIDATION"
    assert len((await t.admin.get("/api/v1/departments")).json()["items"]) == 2
