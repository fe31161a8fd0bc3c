"""The client's HTTP/1.1 transport: asyncio streams and h11, nothing more.

zapd is a local daemon (or one on a trusted network) speaking plain HTTP/1.1 or HTTPS;
the client needs requests with a body, answers read whole, keep-alive and timeouts.
h11 (the protocol state machine httpx itself runs on) does the HTTP; asyncio does the
sockets. Importing this costs a fraction of httpx with its async backend (anyio) and
its command-line tool, which matters to every zapctl command's start-up.

Invariants:
- One request per connection at a time; an idle connection goes back to a small pool
  and is reused only if both sides finished the exchange cleanly (h11 cycle).
- A request that fails on a *reused* connection before any byte of an answer came back
  (the daemon closed it while idle) is sent once more on a fresh connection; a failure
  on a fresh connection is final.
- Each step (connect, write, every read) has `timeout` seconds: `ConnectFailed` when
  nothing listens or the connection cannot be made in time, `ReadTimeout` when the
  daemon does not answer in time, `TransportFailed` for a connection lost mid-way.
- A daemon may answer before it has read the body (a 413): while the body is being
  written the answer is watched for, and once it starts the writing stops and the
  answer is read and returned (a write that then fails is not the end either). Such a
  connection is not reused.
- No HTTP proxy is used: the daemon is reached directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import ssl
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

READ_CHUNK = 64 * 1024
MAX_IDLE = 8


class TransportError(Exception):
    """The exchange with the daemon failed below HTTP."""


class ConnectFailed(TransportError):
    """No connection could be made (refused, unreachable, or not in time)."""


class ReadTimeout(TransportError):
    """Connected, but the daemon did not answer in time."""


class TransportFailed(TransportError):
    """The connection broke, or the daemon answered something that is not HTTP."""


class Response:
    """A whole answer: status, headers (lower-case names), body."""

    __slots__ = ("content", "headers", "method", "path", "status_code")

    def __init__(
        self, method: str, path: str, status_code: int, headers: dict[str, str], content: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """Return the body decoded (UTF-8 unless the content type names a charset)."""
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, "replace")
        except LookupError:
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.method} {self.path}>"


class _Conn:
    __slots__ = ("h11", "reader", "reusable", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self.reusable = True  # False once a request was cut short

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Transport:
    """Requests to one daemon over a small pool of keep-alive connections."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.netloc = parts.netloc.rpartition("@")[2]
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.verify = verify
        self._idle: list[_Conn] = []
        self._ssl: ssl.SSLContext | None = None

    # ----------------------------------------------------------------- requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response:
        """Send one request and return the whole answer (raise a TransportError on failure)."""
        target = self.prefix + path
        if params:
            target += "?" + urlencode(params, doseq=True)
        sent = {**self.headers, **(headers or {})}
        body = content or b""
        if body or method not in ("GET", "HEAD", "DELETE"):
            sent["Content-Length"] = str(len(body))
        head = [("Host", self.netloc), *sent.items()]
        request = h11.Request(method=method, target=target.encode(), headers=head)
        conn = self._take()
        if conn is not None:
            try:
                return await self._exchange(conn, request, body, method, path)
            except _Stale:
                pass  # closed by the daemon while idle: once more on a fresh connection
        conn = await self._connect()
        try:
            return await self._exchange(conn, request, body, method, path)
        except _Stale as exc:
            raise TransportFailed(str(exc.__cause__ or "connection closed")) from None

    async def aclose(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await conn.writer.wait_closed()

    # ----------------------------------------------------------------- connections

    def _take(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Conn) -> None:
        if (
            conn.reusable
            and conn.h11.our_state is h11.DONE
            and conn.h11.their_state is h11.DONE
            and len(self._idle) < MAX_IDLE
        ):
            conn.h11.start_next_cycle()
            self._idle.append(conn)
        else:
            conn.close()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl_context() if self.https else None,
                    limit=READ_CHUNK,
                )
        except TimeoutError:
            raise ConnectFailed(
                f"no connection to {self.netloc} within {self.timeout:g}s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {self.netloc}: {exc}") from None
        return _Conn(reader, writer)

    # ----------------------------------------------------------------- one exchange

    async def _exchange(
        self, conn: _Conn, request: h11.Request, body: bytes, method: str, path: str
    ) -> Response:
        ok = False
        try:
            write_error = await self._send(conn, request, body)
            status, headers, content = await self._receive(conn, write_error)
            ok = True
        finally:
            if not ok:
                conn.close()
        self._give_back(conn)
        return Response(method, path, status, headers, content)

    async def _send(self, conn: _Conn, request: h11.Request, body: bytes) -> BaseException | None:
        """Write the request, watching for an early answer; return a write error, if any.

        An answer that starts before the request is written (the daemon refused the body
        unread) is fed to h11 here, and writing stops: waiting for the rest to go out
        could end in a reset that takes the answer with it.
        """
        data = conn.h11.send(request) or b""
        if body:
            data += conn.h11.send(h11.Data(data=body)) or b""
        data += conn.h11.send(h11.EndOfMessage()) or b""
        try:
            conn.writer.write(data)
        except (OSError, ssl.SSLError) as exc:
            conn.reusable = False
            return exc
        drain = asyncio.ensure_future(conn.writer.drain())
        early = asyncio.ensure_future(conn.reader.read(READ_CHUNK))
        try:
            done, _ = await asyncio.wait(
                {drain, early}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise ReadTimeout(f"{self.netloc} did not take the request in time")
            if drain not in done or drain.exception() is not None:
                conn.reusable = False  # the request did not all go out
            if early in done:
                with contextlib.suppress(OSError, ssl.SSLError):
                    conn.h11.receive_data(early.result())
                return None
            return drain.exception()
        finally:
            for task in (drain, early):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OSError, ssl.SSLError):
                        await task

    async def _receive(
        self, conn: _Conn, write_error: BaseException | None
    ) -> tuple[int, dict[str, str], bytes]:
        status: int | None = None
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise TransportFailed(f"not an HTTP answer from {self.netloc}: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout(self.timeout):
                        data = await conn.reader.read(READ_CHUNK)
                except TimeoutError:
                    raise ReadTimeout(f"{self.netloc} did not answer in time") from None
                except (OSError, ssl.SSLError) as exc:
                    if status is None:
                        raise _Stale from exc
                    raise TransportFailed(f"connection to {self.netloc} lost: {exc}") from None
                if not data and status is None:
                    raise _Stale from write_error
                conn.h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert status is not None
                return status, headers, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                if status is None:
                    raise _Stale from write_error
                raise TransportFailed(f"{self.netloc} closed the connection mid-answer")


class _Stale(Exception):
    """The connection closed before any answer: it may be retried once, fresh."""


def multipart(
    field: str, filename: str, content: bytes, content_type: str | None
) -> tuple[bytes, str]:
    """Encode one file as multipart/form-data; return the body and its content type."""
    boundary = uuid.uuid4().hex
    # As browsers and httpx do (WHATWG): quote and backslash escaped, control characters
    # percent-encoded, anything else (accents) as UTF-8.
    name = "".join(
        "%22" if ch == '"' else "\\\\" if ch == "\\" else f"%{ord(ch):02X}" if ord(ch) < 32 else ch
        for ch in filename
    )
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
