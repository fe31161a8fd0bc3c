"""shared.client.transport against raw loopback servers that misbehave on purpose.

The ordinary exchange is covered by tests/shared/test_client.py (uvicorn) and
tests/zapd/api/test_client_live.py (the real zapd); here the edges: keep-alive reuse, a
connection the server closed while idle, an answer sent before the body was read, and
what a server that is not HTTP gets the caller.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from shared.client.transport import (
    ConnectFailed,
    ReadTimeout,
    Transport,
    TransportFailed,
    multipart,
)
from tests.helpers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """Serve `handler` on a loopback port; yield the URL and a list counting connections."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one request: its head and its body (by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answer(status: int, body: dict[str, object], *extra: str) -> bytes:
    data = json.dumps(body).encode()
    head = [
        f"HTTP/1.1 {status} X",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
    ]
    return ("\r\n".join([*head, *extra]) + "\r\n\r\n").encode() + data


async def test_keep_alive_reuses_one_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(200, {"path": head.split(b" ")[1].decode()}))
            await writer.drain()

    async with serving(handler) as (url, connections):
        t = Transport(url, timeout=5)
        try:
            for n in range(3):
                r = await t.request("GET", "/x", params={"n": n, "s": ["a", "b"]})
                assert r.status_code == 200 and r.json() == {"path": f"/x?n={n}&s=a&s=b"}
        finally:
            await t.aclose()
        assert len(connections) == 1


async def test_a_connection_closed_while_idle_is_retried_once_fresh() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, {"ok": True}))  # keep-alive announced...
        await writer.drain()
        # ...but the server closes the connection right after (an idle timeout).

    async with serving(handler) as (url, connections):
        t = Transport(url, timeout=5)
        try:
            assert (await t.request("POST", "/a", content=b"{}")).json() == {"ok": True}
            await asyncio.sleep(0.1)
            assert (await t.request("POST", "/b", content=b"{}")).json() == {"ok": True}
        finally:
            await t.aclose()
        assert len(connections) == 2


async def test_an_answer_before_the_body_is_read_is_still_the_answer() -> None:
    # The server answers 413 after the headers and closes without reading the body.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            answer(413, {"error": "ERR_PAYLOAD_TOO_LARGE", "message": "big"}, "Connection: close")
        )
        await writer.drain()
        await asyncio.sleep(0.5)  # read nothing more, then close

    async with serving(handler) as (url, _):
        t = Transport(url, timeout=5)
        try:
            r = await t.request("POST", "/api/v1/media", content=b"\x00" * (8 << 20))
        finally:
            await t.aclose()
        assert r.status_code == 413 and r.json()["error"] == "ERR_PAYLOAD_TOO_LARGE"


async def test_failures_below_http() -> None:
    t = Transport(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ConnectFailed):
        await t.request("GET", "/healthz")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    async with serving(silent) as (url, _):
        t = Transport(url, timeout=0.3)
        with pytest.raises(ReadTimeout):
            await t.request("GET", "/slow")
        await t.aclose()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with serving(garbage) as (url, _):
        t = Transport(url, timeout=5)
        with pytest.raises(TransportFailed):
            await t.request("GET", "/")
        await t.aclose()


def test_multipart_names_the_file_safely() -> None:
    body, ctype = multipart("file", 'relatório "final"\r\n.pdf', b"%PDF", "application/pdf")
    boundary = ctype.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(
        f"--{boundary}--\r\n".encode()
    )
    assert 'filename="relatório %22final%22%0D%0A.pdf"'.encode() in body
    assert b"Content-Type: application/pdf\r\n\r\n%PDF\r\n" in body


def test_importing_the_client_loads_no_http_library_model_or_websocket() -> None:
    code = (
        "import json, sys\n"
        "import shared.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('httpx', 'httpcore', 'anyio', 'websockets', 'email_validator')\n"
        "             or m.startswith('shared.protocol.'))\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
