"""The HTTP core of the zapd client: one connection pool, auth headers, token refresh,
error mapping and response parsing. Endpoint modules build on `ClientCore`.

Invariants:
- `request` only sends to paths under the daemon's URL (never an absolute URL), so the
  bearer token cannot leak to another host and plain-HTTP daemons need no CA bundle.
- Every failure is raised as a `ZapError` (shared.client.errors); transport failures
  become `DaemonUnreachable` or `RequestTimeout`, never a transport exception.
- An expired access token (`ErrorCode.TOKEN_EXPIRED`) is refreshed once per request, and
  concurrent requests spend the refresh token once (it works once; spending it twice
  would end the whole login).
- Importing this module imports no wire model (a call imports the models it parses, see
  shared.client.lazy) and no HTTP library beyond h11 (shared.client.transport).
"""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar
from urllib.parse import urlencode, urlsplit

import pydantic

from shared.client.errors import (
    BadResponse,
    DaemonUnreachable,
    RequestTimeout,
    Unauthorized,
    error_from,
)
from shared.client.lazy import protocol
from shared.client.transport import (
    ConnectFailed,
    ReadTimeout,
    Response,
    Transport,
    TransportError,
    multipart,
)
from shared.errors import ErrorCode
from shared.urls import DEFAULT_URL, is_loopback, normalize_url

if TYPE_CHECKING:
    from shared.protocol import auth as auth_models
    from shared.protocol import common
else:
    auth_models = protocol("auth")
    common = protocol("common")

API = "/api/v1"
USER_AGENT = "zap-client/0.1"

_M = TypeVar("_M", bound=pydantic.BaseModel)
_T = TypeVar("_T")

Order = Literal["asc", "desc"]
TokensCallback = Callable[["auth_models.TokenPair"], Awaitable[None] | None]


# --------------------------------------------------------------------------- helpers


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _param(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_param(v) for v in value]
    return value


def query(**params: Any) -> dict[str, Any]:
    """Turn keyword filters into query parameters, dropping the ones left as None."""
    return {k: _param(v) for k, v in params.items() if v is not None}


def body_of(model: pydantic.BaseModel) -> dict[str, Any]:
    """Serialise a request model with only the fields the caller set (PATCH semantics)."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


def _bad_response(response: Response, where: str, why: str) -> BadResponse:
    return BadResponse(
        f"unexpected answer from zapd for {response.path}: {where}: {why}",
        status=response.status_code,
    )


def _bad_model(response: Response, exc: pydantic.ValidationError) -> BadResponse:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return _bad_response(response, where, first["msg"])


def parse(model: type[_M], response: Response) -> _M:
    """Read the answer as `model`, or raise BadResponse."""
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise _bad_model(response, exc) from None


def parse_dict(response: Response) -> dict[str, Any]:
    """Read the answer as a JSON object, or raise BadResponse."""
    try:
        doc = jsonlib.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_response(response, "body", f"invalid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _bad_response(response, "body", "expected a JSON object")
    return doc


def parse_list(model: type[_M], response: Response) -> list[_M]:
    """Read the answer as a JSON list of `model`, or raise BadResponse."""
    try:
        return pydantic.TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]
    except pydantic.ValidationError as exc:
        raise _bad_model(response, exc) from None


def parse_page(model: type[_M], response: Response) -> common.Page[_M]:
    """Read one cursor page of `model`, or raise BadResponse."""
    raw = parse(common.Page[dict[str, Any]], response)
    try:
        items = [model.model_validate(item) for item in raw.items]
    except pydantic.ValidationError as exc:
        raise _bad_model(response, exc) from None
    return common.Page[model](items=items, next_cursor=raw.next_cursor)  # type: ignore[valid-type]


# --------------------------------------------------------------------------- core


class ClientCore:
    """Connection, credentials and transport of one zapd client (see `ZapClient`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 30,
        on_tokens: TokensCallback | None = None,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self.access_token = token
        self.refresh_token = refresh_token
        self.timeout = timeout
        self.on_tokens = on_tokens
        self._refresh_lock = asyncio.Lock()
        self._http = Transport(
            self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ----------------------------------------------------------------- transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        files: Mapping[str, tuple[str, bytes, str | None]] | None = None,
        auth: bool = True,
    ) -> Response:
        """Send one request (refreshing an expired token once); raise a ZapError on failure."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"not a path under the daemon's URL: {path!r}")
        base_headers = dict(headers or {})
        if files:
            ((field, (filename, data, mime)),) = files.items()
            content, base_headers["Content-Type"] = multipart(field, filename, data, mime)
        elif json is not None:
            content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            base_headers.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            used = self.access_token
            sent_headers = dict(base_headers)
            if auth and used:
                sent_headers["Authorization"] = f"Bearer {used}"
            try:
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    params=query(**params) if params else None,
                    headers=sent_headers,
                )
            except ConnectFailed:
                raise DaemonUnreachable(self.base_url) from None
            except ReadTimeout:
                raise RequestTimeout(
                    f"zapd at {self.base_url} did not answer within {self.timeout:g}s"
                ) from None
            except TransportError:
                raise DaemonUnreachable(self.base_url) from None
            if response.status_code < 400:
                return response
            error = error_from(response.status_code, response.content, response.headers)
            if (
                attempt == 0
                and auth
                and isinstance(error, Unauthorized)
                and error.code == ErrorCode.TOKEN_EXPIRED
                and self.refresh_token
            ):
                await self._refresh_after_expiry(used)
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _refresh_after_expiry(self, used: str | None) -> None:
        # Concurrent requests may all see the expiry: only the first one refreshes.
        async with self._refresh_lock:
            if self.access_token != used:
                return
            await self._do_refresh()

    async def _get(self, model: type[_M], path: str, **params: Any) -> _M:
        return parse(model, await self.request("GET", path, params=params))

    async def _get_list(self, model: type[_M], path: str, **params: Any) -> list[_M]:
        return parse_list(model, await self.request("GET", path, params=params))

    async def _get_page(self, model: type[_M], path: str, **params: Any) -> common.Page[_M]:
        return parse_page(model, await self.request("GET", path, params=params))

    async def _send(
        self, model: type[_M], method: str, path: str, body: pydantic.BaseModel | None = None
    ) -> _M:
        response = await self.request(
            method, path, json=body_of(body) if body is not None else None
        )
        return parse(model, response)

    async def iterate(
        self, method: Callable[..., Awaitable[common.Page[_T]]], /, *args: Any, **filters: Any
    ) -> AsyncIterator[_T]:
        """Walk every page of a listing: `async for u in zap.iterate(zap.list_users, q="x")`.

        Positional arguments go to `method` too (`zap.iterate(zap.session_logs, sid)`).
        """
        cursor: str | None = filters.pop("cursor", None)
        while True:
            page = await method(*args, **filters, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # ----------------------------------------------------------------- tokens

    def set_tokens(self, access_token: str | None, refresh_token: str | None = None) -> None:
        """Use these tokens from now on."""
        self.access_token = access_token
        self.refresh_token = refresh_token

    async def _store(self, pair: auth_models.TokenPair) -> auth_models.TokenPair:
        self.access_token = pair.access_token
        self.refresh_token = pair.refresh_token
        if self.on_tokens is not None:
            result = self.on_tokens(pair)
            if inspect.isawaitable(result):
                await result
        return pair

    async def _do_refresh(self) -> auth_models.TokenPair:
        if not self.refresh_token:
            raise Unauthorized("no refresh token: log in again", code=ErrorCode.NO_REFRESH_TOKEN)
        body = auth_models.RefreshRequest.model_construct(refresh_token=self.refresh_token)
        response = await self.request("POST", f"{API}/auth/refresh", json=body_of(body), auth=False)
        return await self._store(parse(auth_models.TokenPair, response))

    # ----------------------------------------------------------------- health

    async def healthz(self) -> dict[str, Any]:
        """Ask whether the daemon is serving."""
        return parse_dict(await self.request("GET", "/healthz", auth=False))

    async def readyz(self) -> dict[str, Any]:
        """Ask whether the daemon is ready (database reachable, schema current); 503 raises."""
        return parse_dict(await self.request("GET", "/readyz", auth=False))

    def ws_url(self, since: int | str | None = None) -> str:
        """Return the WebSocket URL of the event stream."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}{API}/ws"
        return f"{url}?{urlencode({'since': since})}" if since is not None else url


__all__ = [
    "API",
    "DEFAULT_URL",
    "USER_AGENT",
    "ClientCore",
    "Order",
    "TokensCallback",
    "body_of",
    "is_loopback",
    "normalize_url",
    "parse",
    "parse_dict",
    "parse_list",
    "parse_page",
    "query",
]
