"""The typed async client of the zapd API, shared by zaptui and zapctl.

`ZapClient` has one method per endpoint, typed with the models of `shared.protocol`;
every failure is a `ZapError` subclass carrying the status, the error code and the
message the daemon answered. An expired access token is refreshed once, transparently,
when a refresh token is known. `ZapClient.subscribe()` opens the realtime stream and
keeps it alive: it reconnects with backoff and resumes with `since=` without repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
import pydantic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from shared.enums import LogLevel, OutboxState, Role, SessionStatus, TicketStatus
from shared.protocol.audit import AuditOut
from shared.protocol.auth import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenOut,
    LoginRequest,
    LogoutRequest,
    Me,
    MeUpdate,
    RefreshRequest,
    TokenPair,
)
from shared.protocol.catalog import (
    CategoryCreate,
    CategoryOut,
    CategoryUpdate,
    QuickReplyCreate,
    QuickReplyOut,
    QuickReplyUpdate,
    TagCreate,
    TagOut,
    TagUpdate,
)
from shared.protocol.clients import ClientCreate, ClientOut, ClientTagsSet, ClientUpdate
from shared.protocol.common import Page
from shared.protocol.companies import CompanyCreate, CompanyOut, CompanyUpdate
from shared.protocol.departments import DepartmentCreate, DepartmentOut, DepartmentUpdate
from shared.protocol.events import EventEnvelope, TypingIn
from shared.protocol.media import UPLOAD_FIELD, MediaOut
from shared.protocol.messages import IDEMPOTENCY_HEADER, MessageSend, OutboxOut
from shared.protocol.sessions import (
    CloudTemplate,
    SandboxDelivered,
    SandboxEnterCode,
    SandboxInbound,
    SandboxInboundOut,
    SandboxScan,
    SessionCreate,
    SessionLogOut,
    SessionOut,
    SessionPair,
    SessionPairingCode,
    SessionQr,
    SessionUpdate,
    SessionWithSecret,
)
from shared.protocol.stats import (
    AgentsReport,
    MetricsSummary,
    QueuesReport,
    ResponseTimesReport,
    TicketsReport,
    VolumeReport,
)
from shared.protocol.tickets import (
    MessageOut,
    TicketAssign,
    TicketClose,
    TicketOut,
    TicketTransfer,
    TicketUpdate,
)
from shared.protocol.users import (
    PasswordResetIn,
    PasswordResetOut,
    UserCreate,
    UserDepartmentsSet,
    UserOut,
    UserUpdate,
)

log = logging.getLogger("zap.client")

DEFAULT_URL = "http://127.0.0.1:8765"
API = "/api/v1"
USER_AGENT = "zap-client/0.1"

_M = TypeVar("_M", bound=pydantic.BaseModel)
_T = TypeVar("_T")

Order = Literal["asc", "desc"]
TokensCallback = Callable[[TokenPair], Awaitable[None] | None]
_DICT = pydantic.TypeAdapter(dict[str, Any])


# --------------------------------------------------------------------------- errors


class ZapError(Exception):
    """Base of every error the client raises: HTTP status, error code, message."""

    default_status = 0
    default_code = "ERR_UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = self.default_status if status is None else status
        self.code = code or self.default_code
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"


class BadRequest(ZapError):
    """400: the request makes no sense as given."""

    default_status = 400
    default_code = "ERR_BAD_REQUEST"


class Unauthorized(ZapError):
    """401: no valid credentials (log in again)."""

    default_status = 401
    default_code = "ERR_UNAUTHORIZED"


class Forbidden(ZapError):
    """403: the caller's role does not allow this."""

    default_status = 403
    default_code = "ERR_FORBIDDEN"


class NotFound(ZapError):
    """404: no such thing (or it belongs to another company)."""

    default_status = 404
    default_code = "ERR_NOT_FOUND"


class Conflict(ZapError):
    """409: the change collides with existing data."""

    default_status = 409
    default_code = "ERR_CONFLICT"


class ValidationError(ZapError):
    """422: a value is not acceptable; `details` lists the offending fields when known."""

    default_status = 422
    default_code = "ERR_VALIDATION"


class RateLimited(ZapError):
    """429: too many attempts; `retry_after` is in seconds (None when not given)."""

    default_status = 429
    default_code = "ERR_RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ZapError):
    """5xx: the daemon failed (its log has the details)."""

    default_status = 500
    default_code = "ERR_INTERNAL"


class Unavailable(ServerError):
    """503: a dependency of the daemon (database, engine) is not there right now."""

    default_status = 503
    default_code = "ERR_UNAVAILABLE"


class DaemonUnreachable(ZapError):
    """The connection to zapd failed: nothing listens there, or it went away."""

    default_code = "ERR_UNREACHABLE"

    def __init__(self, base_url: str) -> None:
        super().__init__(f"cannot reach zapd at {base_url} — is it running?")
        self.base_url = base_url


class RequestTimeout(ZapError):
    """zapd accepted the connection but did not answer in time."""

    default_code = "ERR_TIMEOUT"


class BadResponse(ZapError):
    """zapd answered something this client cannot read (a version mismatch, usually)."""

    default_code = "ERR_BAD_RESPONSE"


_BY_STATUS: dict[int, type[ZapError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
    503: Unavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header: delta-seconds or an HTTP date (None when absent or bad)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from(status: int, body: bytes | None, headers: Mapping[str, str]) -> ZapError:
    """Build the typed error for an HTTP failure (the body may be JSON or anything else)."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ZapError)
    code: str | None = None
    message: str | None = None
    details: list[dict[str, Any]] | None = None
    try:
        doc = _DICT.validate_json(body or b"")
    except pydantic.ValidationError:
        doc = {}
    if isinstance(doc.get("error"), str):
        code = doc["error"]
    if isinstance(doc.get("message"), str):
        message = doc["message"]
    if isinstance(doc.get("details"), list):
        details = [d for d in doc["details"] if isinstance(d, dict)]
    if code is None:  # not zapd's error document (a proxy, a crash page...)
        code = f"ERR_HTTP_{status}"
    if message is None:
        text = (body or b"").decode("utf-8", "replace").strip()
        message = f"HTTP {status}: {text[:200]}" if text else f"HTTP {status}"
    kw: dict[str, Any] = {"status": status, "code": code, "details": details}
    if cls is RateLimited:
        return RateLimited(message, retry_after=parse_retry_after(headers.get("retry-after")), **kw)
    return cls(message, **kw)


# --------------------------------------------------------------------------- helpers


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


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


def _bad_response(response: httpx.Response, exc: pydantic.ValidationError) -> BadResponse:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return BadResponse(
        f"unexpected answer from zapd for {response.request.url.path}: {where}: {first['msg']}",
        status=response.status_code,
    )


def _parse(model: type[_M], response: httpx.Response) -> _M:
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise _bad_response(response, exc) from None


def _parse_dict(response: httpx.Response) -> dict[str, Any]:
    try:
        return _DICT.validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise _bad_response(response, exc) from None


def _parse_list(model: type[_M], response: httpx.Response) -> list[_M]:
    try:
        return pydantic.TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]
    except pydantic.ValidationError as exc:
        raise _bad_response(response, exc) from None


def _parse_page(model: type[_M], response: httpx.Response) -> Page[_M]:
    raw = _parse(Page[dict[str, Any]], response)
    try:
        items = [model.model_validate(item) for item in raw.items]
    except pydantic.ValidationError as exc:
        raise _bad_response(response, exc) from None
    return Page[model](items=items, next_cursor=raw.next_cursor)  # type: ignore[valid-type]


# --------------------------------------------------------------------------- client


class ZapClient:
    """Async client of one zapd; use as `async with ZapClient(url, token=...) as zap:`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 30,
        on_tokens: TokensCallback | None = None,
    ) -> None:
        if "://" not in base_url:
            base_url = f"http://{base_url}"  # "127.0.0.1:8765" is what people type
        self.base_url = base_url.rstrip("/")
        self.access_token = token
        self.refresh_token = refresh_token
        self.timeout = timeout
        self.on_tokens = on_tokens
        self._refresh_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            trust_env=not _is_loopback(self.base_url),  # no proxy between us and a local zapd
            # Over plain HTTP no TLS handshake can happen (`request` takes paths under
            # base_url only), so skip loading the CA bundle: ~60 ms of every CLI start.
            verify=not self.base_url.startswith("http://"),
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
    ) -> httpx.Response:
        """Send one request (refreshing an expired token once); raise a ZapError on failure."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"not a path under the daemon's URL: {path!r}")
        for attempt in (0, 1):
            used = self.access_token
            sent_headers = dict(headers or {})
            if auth and used:
                sent_headers["Authorization"] = f"Bearer {used}"
            try:
                response = await self._http.request(
                    method,
                    path,
                    json=json,
                    content=content,
                    files=files,
                    params=query(**params) if params else None,
                    headers=sent_headers,
                )
            except httpx.ConnectTimeout:
                raise DaemonUnreachable(self.base_url) from None
            except httpx.TimeoutException:
                raise RequestTimeout(
                    f"zapd at {self.base_url} did not answer within {self.timeout:g}s"
                ) from None
            except httpx.TransportError:
                raise DaemonUnreachable(self.base_url) from None
            if response.status_code < 400:
                return response
            error = error_from(response.status_code, response.content, response.headers)
            if (
                attempt == 0
                and auth
                and isinstance(error, Unauthorized)
                and error.code == "ERR_TOKEN_EXPIRED"
                and self.refresh_token
            ):
                await self._refresh_after_expiry(used)
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _refresh_after_expiry(self, used: str | None) -> None:
        # Concurrent requests may all see the expiry: only the first one refreshes (a
        # refresh token works once; spending it twice would end the whole login).
        async with self._refresh_lock:
            if self.access_token != used:
                return
            await self._do_refresh()

    async def _get(self, model: type[_M], path: str, **params: Any) -> _M:
        return _parse(model, await self.request("GET", path, params=params))

    async def _get_list(self, model: type[_M], path: str, **params: Any) -> list[_M]:
        return _parse_list(model, await self.request("GET", path, params=params))

    async def _get_page(self, model: type[_M], path: str, **params: Any) -> Page[_M]:
        return _parse_page(model, await self.request("GET", path, params=params))

    async def _send(
        self, model: type[_M], method: str, path: str, body: pydantic.BaseModel | None = None
    ) -> _M:
        response = await self.request(
            method, path, json=body_of(body) if body is not None else None
        )
        return _parse(model, response)

    async def iterate(
        self, method: Callable[..., Awaitable[Page[_T]]], /, *args: Any, **filters: Any
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

    async def _store(self, pair: TokenPair) -> TokenPair:
        self.access_token = pair.access_token
        self.refresh_token = pair.refresh_token
        if self.on_tokens is not None:
            result = self.on_tokens(pair)
            if inspect.isawaitable(result):
                await result
        return pair

    async def _do_refresh(self) -> TokenPair:
        if not self.refresh_token:
            raise Unauthorized("no refresh token: log in again", code="ERR_NO_REFRESH_TOKEN")
        body = RefreshRequest.model_construct(refresh_token=self.refresh_token)
        response = await self.request("POST", f"{API}/auth/refresh", json=body_of(body), auth=False)
        return await self._store(_parse(TokenPair, response))

    # ----------------------------------------------------------------- health

    async def healthz(self) -> dict[str, Any]:
        """Ask whether the daemon is serving."""
        return _parse_dict(await self.request("GET", "/healthz", auth=False))

    async def readyz(self) -> dict[str, Any]:
        """Ask whether the daemon is ready (database reachable, schema current); 503 raises."""
        return _parse_dict(await self.request("GET", "/readyz", auth=False))

    # ----------------------------------------------------------------- auth

    async def login(self, email: str, password: str) -> TokenPair:
        """Log in with e-mail and password; the client keeps (and reports) the tokens."""
        # Not validated here: the daemon's 422 is the one answer to bad input.
        body = LoginRequest.model_construct(email=email, password=password)
        response = await self.request("POST", f"{API}/auth/login", json=body_of(body), auth=False)
        return await self._store(_parse(TokenPair, response))

    async def refresh(self) -> TokenPair:
        """Spend the refresh token for a new pair (the client keeps and reports it)."""
        async with self._refresh_lock:
            return await self._do_refresh()

    async def logout(self) -> None:
        """End this login on the daemon and forget the tokens."""
        body = LogoutRequest.model_construct(refresh_token=self.refresh_token)
        await self.request("POST", f"{API}/auth/logout", json=body_of(body))
        self.set_tokens(None, None)

    async def me(self) -> Me:
        """Tell who the caller is."""
        return await self._get(Me, f"{API}/auth/me")

    async def update_me(self, body: MeUpdate) -> Me:
        """Change one's own name, presence or password."""
        return await self._send(Me, "PATCH", f"{API}/auth/me", body)

    async def create_api_token(self, body: ApiTokenCreate) -> ApiTokenCreated:
        """Create an API token (ADMIN); the answer is the only time its secret is shown."""
        return await self._send(ApiTokenCreated, "POST", f"{API}/api-tokens", body)

    async def list_api_tokens(self) -> list[ApiTokenOut]:
        """List API tokens (ADMIN), never their secrets."""
        return await self._get_list(ApiTokenOut, f"{API}/api-tokens")

    async def revoke_api_token(self, token_id: uuid.UUID) -> ApiTokenOut:
        """Revoke an API token at once (ADMIN)."""
        return _parse(ApiTokenOut, await self.request("DELETE", f"{API}/api-tokens/{token_id}"))

    # ----------------------------------------------------------------- departments

    async def list_departments(self, company_id: uuid.UUID | None = None) -> list[DepartmentOut]:
        """List departments in menu order (global admins may name the company)."""
        return await self._get_list(DepartmentOut, f"{API}/departments", company_id=company_id)

    async def get_department(self, department_id: uuid.UUID) -> DepartmentOut:
        """Show one department."""
        return await self._get(DepartmentOut, f"{API}/departments/{department_id}")

    async def create_department(self, body: DepartmentCreate) -> DepartmentOut:
        """Create a department (ADMIN)."""
        return await self._send(DepartmentOut, "POST", f"{API}/departments", body)

    async def update_department(
        self, department_id: uuid.UUID, body: DepartmentUpdate
    ) -> DepartmentOut:
        """Change a department (ADMIN); only the fields set on `body` change."""
        return await self._send(DepartmentOut, "PATCH", f"{API}/departments/{department_id}", body)

    async def delete_department(self, department_id: uuid.UUID) -> None:
        """Remove a department (ADMIN)."""
        await self.request("DELETE", f"{API}/departments/{department_id}")

    # ----------------------------------------------------------------- users

    async def list_users(
        self,
        *,
        role: Role | None = None,
        department_id: uuid.UUID | None = None,
        active: bool | None = None,
        q: str | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[UserOut]:
        """List one page of users; filter by role, department, state or name/e-mail text."""
        return await self._get_page(
            UserOut,
            f"{API}/users",
            role=role,
            department_id=department_id,
            active=active,
            q=q,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_user(self, user_id: uuid.UUID) -> UserOut:
        """Show one user."""
        return await self._get(UserOut, f"{API}/users/{user_id}")

    async def create_user(self, body: UserCreate) -> UserOut:
        """Create a user (ADMIN, or a global admin naming company_id)."""
        return await self._send(UserOut, "POST", f"{API}/users", body)

    async def update_user(self, user_id: uuid.UUID, body: UserUpdate) -> UserOut:
        """Change a user (ADMIN); only the fields set on `body` change."""
        return await self._send(UserOut, "PATCH", f"{API}/users/{user_id}", body)

    async def disable_user(self, user_id: uuid.UUID) -> UserOut:
        """Disable a user (ADMIN): their tokens and live connections die at once."""
        return await self._send(UserOut, "POST", f"{API}/users/{user_id}/disable")

    async def enable_user(self, user_id: uuid.UUID) -> UserOut:
        """Enable a disabled user again (ADMIN)."""
        return await self._send(UserOut, "POST", f"{API}/users/{user_id}/enable")

    async def reset_password(
        self, user_id: uuid.UUID, password: str | None = None
    ) -> PasswordResetOut:
        """Set a user's password, or have one generated and returned once (ADMIN)."""
        body = PasswordResetIn(password=password) if password is not None else None
        return await self._send(
            PasswordResetOut, "POST", f"{API}/users/{user_id}/reset-password", body
        )

    async def set_user_departments(
        self, user_id: uuid.UUID, department_ids: list[uuid.UUID]
    ) -> UserOut:
        """Replace the departments a user works (ADMIN)."""
        body = UserDepartmentsSet(department_ids=department_ids)
        return await self._send(UserOut, "PUT", f"{API}/users/{user_id}/departments", body)

    # ----------------------------------------------------------------- companies

    async def list_companies(
        self,
        *,
        active: bool | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[CompanyOut]:
        """List one page of companies (all for global admins, one's own otherwise)."""
        return await self._get_page(
            CompanyOut,
            f"{API}/companies",
            active=active,
            q=q,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_company(self, company_id: uuid.UUID) -> CompanyOut:
        """Show a company."""
        return await self._get(CompanyOut, f"{API}/companies/{company_id}")

    async def create_company(self, body: CompanyCreate) -> CompanyOut:
        """Create a company (global admins)."""
        return await self._send(CompanyOut, "POST", f"{API}/companies", body)

    async def update_company(self, company_id: uuid.UUID, body: CompanyUpdate) -> CompanyOut:
        """Change a company; only the fields set on `body` change."""
        return await self._send(CompanyOut, "PATCH", f"{API}/companies/{company_id}", body)

    async def delete_company(self, company_id: uuid.UUID, *, force: bool = False) -> None:
        """Delete a company and what it owns (global admins); `force` also drops history."""
        await self.request(
            "DELETE", f"{API}/companies/{company_id}", params={"force": force or None}
        )

    # ----------------------------------------------------------------- categories

    async def list_categories(
        self, *, active: bool | None = None, company_id: uuid.UUID | None = None
    ) -> list[CategoryOut]:
        """List ticket closing categories by name."""
        return await self._get_list(
            CategoryOut, f"{API}/categories", active=active, company_id=company_id
        )

    async def get_category(self, category_id: uuid.UUID) -> CategoryOut:
        """Show one category."""
        return await self._get(CategoryOut, f"{API}/categories/{category_id}")

    async def create_category(self, body: CategoryCreate) -> CategoryOut:
        """Create a category (ADMIN)."""
        return await self._send(CategoryOut, "POST", f"{API}/categories", body)

    async def update_category(self, category_id: uuid.UUID, body: CategoryUpdate) -> CategoryOut:
        """Change a category (ADMIN); only the fields set on `body` change."""
        return await self._send(CategoryOut, "PATCH", f"{API}/categories/{category_id}", body)

    async def delete_category(self, category_id: uuid.UUID) -> None:
        """Remove a category (ADMIN)."""
        await self.request("DELETE", f"{API}/categories/{category_id}")

    # ----------------------------------------------------------------- tags

    async def list_tags(self, *, company_id: uuid.UUID | None = None) -> list[TagOut]:
        """List tags by name."""
        return await self._get_list(TagOut, f"{API}/tags", company_id=company_id)

    async def get_tag(self, tag_id: uuid.UUID) -> TagOut:
        """Show one tag."""
        return await self._get(TagOut, f"{API}/tags/{tag_id}")

    async def create_tag(self, body: TagCreate) -> TagOut:
        """Create a tag (SUPERVISOR and up)."""
        return await self._send(TagOut, "POST", f"{API}/tags", body)

    async def update_tag(self, tag_id: uuid.UUID, body: TagUpdate) -> TagOut:
        """Rename or recolor a tag (SUPERVISOR and up)."""
        return await self._send(TagOut, "PATCH", f"{API}/tags/{tag_id}", body)

    async def delete_tag(self, tag_id: uuid.UUID) -> None:
        """Remove a tag from everything it labels (SUPERVISOR and up)."""
        await self.request("DELETE", f"{API}/tags/{tag_id}")

    # ----------------------------------------------------------------- quick replies

    async def list_quick_replies(
        self,
        *,
        q: str | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> list[QuickReplyOut]:
        """List the quick replies the caller may use; `q` is a shortcut prefix."""
        return await self._get_list(
            QuickReplyOut,
            f"{API}/quick-replies",
            q=q,
            department_id=department_id,
            company_id=company_id,
        )

    async def get_quick_reply(self, reply_id: uuid.UUID) -> QuickReplyOut:
        """Show one quick reply."""
        return await self._get(QuickReplyOut, f"{API}/quick-replies/{reply_id}")

    async def create_quick_reply(self, body: QuickReplyCreate) -> QuickReplyOut:
        """Create a quick reply (ADMIN)."""
        return await self._send(QuickReplyOut, "POST", f"{API}/quick-replies", body)

    async def update_quick_reply(
        self, reply_id: uuid.UUID, body: QuickReplyUpdate
    ) -> QuickReplyOut:
        """Change a quick reply (ADMIN); only the fields set on `body` change."""
        return await self._send(QuickReplyOut, "PATCH", f"{API}/quick-replies/{reply_id}", body)

    async def delete_quick_reply(self, reply_id: uuid.UUID) -> None:
        """Remove a quick reply (ADMIN)."""
        await self.request("DELETE", f"{API}/quick-replies/{reply_id}")

    # ----------------------------------------------------------------- clients

    async def list_clients(
        self,
        *,
        q: str | None = None,
        blocked: bool | None = None,
        tag_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[ClientOut]:
        """List one page of clients; `q` searches name, profile name and phone digits."""
        return await self._get_page(
            ClientOut,
            f"{API}/clients",
            q=q,
            blocked=blocked,
            tag_id=tag_id,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_client(self, client_id: uuid.UUID) -> ClientOut:
        """Show one client with its tag ids."""
        return await self._get(ClientOut, f"{API}/clients/{client_id}")

    async def create_client(self, body: ClientCreate) -> ClientOut:
        """Add a client by hand; Conflict when the phone is already known."""
        return await self._send(ClientOut, "POST", f"{API}/clients", body)

    async def update_client(self, client_id: uuid.UUID, body: ClientUpdate) -> ClientOut:
        """Change a client (`blocked` needs SUPERVISOR and up)."""
        return await self._send(ClientOut, "PATCH", f"{API}/clients/{client_id}", body)

    async def set_client_tags(self, client_id: uuid.UUID, tag_ids: list[uuid.UUID]) -> ClientOut:
        """Replace a client's tags."""
        body = ClientTagsSet(tag_ids=tag_ids)
        return await self._send(ClientOut, "PUT", f"{API}/clients/{client_id}/tags", body)

    # ----------------------------------------------------------------- sessions

    async def list_sessions(
        self, *, status: SessionStatus | None = None, company_id: uuid.UUID | None = None
    ) -> list[SessionOut]:
        """List WhatsApp sessions with their connection state."""
        return await self._get_list(
            SessionOut, f"{API}/sessions", status=status, company_id=company_id
        )

    async def get_session(self, session_id: uuid.UUID) -> SessionOut:
        """Show one session."""
        return await self._get(SessionOut, f"{API}/sessions/{session_id}")

    async def create_session(self, body: SessionCreate) -> SessionWithSecret:
        """Create a session (ADMIN); the webhook secret is shown in this answer only."""
        return await self._send(SessionWithSecret, "POST", f"{API}/sessions", body)

    async def session_templates(self, session_id: uuid.UUID) -> list[CloudTemplate]:
        """List the approved message templates of a Cloud API session (SUPERVISOR+)."""
        return await self._get_list(CloudTemplate, f"{API}/sessions/{session_id}/templates")

    async def update_session(self, session_id: uuid.UUID, body: SessionUpdate) -> SessionWithSecret:
        """Change a session (ADMIN); a rotated webhook secret is shown in this answer only."""
        return await self._send(SessionWithSecret, "PATCH", f"{API}/sessions/{session_id}", body)

    async def delete_session(self, session_id: uuid.UUID, *, force: bool = False) -> None:
        """Remove a session (ADMIN); one with message history needs `force`."""
        await self.request(
            "DELETE", f"{API}/sessions/{session_id}", params={"force": force or None}
        )

    async def session_logs(
        self,
        session_id: uuid.UUID,
        *,
        level: LogLevel | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[SessionLogOut]:
        """List one page of a session's log (ADMIN, SUPERVISOR); `level` is the minimum."""
        return await self._get_page(
            SessionLogOut,
            f"{API}/sessions/{session_id}/logs",
            level=level,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    # ----------------------------------------------------------------- tickets

    async def list_tickets(
        self,
        *,
        status: TicketStatus | list[TicketStatus] | None = None,
        department_id: uuid.UUID | None = None,
        assignee_id: uuid.UUID | Literal["me", "none"] | None = None,
        client_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        q: str | None = None,
        number: int | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[TicketOut]:
        """List one page of the tickets the caller may see (newest first by default)."""
        return await self._get_page(
            TicketOut,
            f"{API}/tickets",
            status=[status] if isinstance(status, TicketStatus) else status,
            department_id=department_id,
            assignee_id=assignee_id,
            client_id=client_id,
            session_id=session_id,
            q=q,
            number=number,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_ticket(self, ticket_id: uuid.UUID) -> TicketOut:
        """Show one ticket with its client, department and assignee."""
        return await self._get(TicketOut, f"{API}/tickets/{ticket_id}")

    async def list_ticket_messages(
        self,
        ticket_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[MessageOut]:
        """List one page of a ticket's messages and internal notes (newest first by default)."""
        return await self._get_page(
            MessageOut,
            f"{API}/tickets/{ticket_id}/messages",
            cursor=cursor,
            limit=limit,
            order=order,
        )

    # ----------------------------------------------------------------- session control

    async def start_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Start a session's engine (ADMIN); QR codes follow on `session_qr` and the stream."""
        return _parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/start"))

    async def stop_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Disconnect a session, keeping its link (ADMIN)."""
        return _parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/stop"))

    async def logout_session(self, session_id: uuid.UUID) -> dict[str, str]:
        """Unlink the number from a session; the next start needs a new QR (ADMIN)."""
        return _parse_dict(await self.request("POST", f"{API}/sessions/{session_id}/logout"))

    async def pair_session(self, session_id: uuid.UUID, phone: str) -> SessionPairingCode:
        """Ask for a code that links `phone` to a waiting session without a QR (ADMIN)."""
        return await self._send(
            SessionPairingCode,
            "POST",
            f"{API}/sessions/{session_id}/pair",
            SessionPair.model_construct(phone=phone),
        )

    async def session_qr(self, session_id: uuid.UUID) -> SessionQr:
        """Show the QR code of a session waiting to be linked (ADMIN)."""
        return await self._get(SessionQr, f"{API}/sessions/{session_id}/qr")

    # ----------------------------------------------------------------- sandbox

    async def sandbox_scan(self, session_id: uuid.UUID, phone: str | None = None) -> str:
        """Simulate a phone scanning a sandbox session's QR (ADMIN); return the linked number."""
        body = SandboxScan(phone=phone) if phone is not None else SandboxScan()
        response = await self.request(
            "POST", f"{API}/sandbox/{session_id}/scan", json=body_of(body)
        )
        return str(_parse_dict(response).get("phone", ""))

    async def sandbox_enter_code(self, session_id: uuid.UUID, code: str) -> str:
        """Simulate the phone typing a sandbox session's pairing code; return the number."""
        body = SandboxEnterCode.model_construct(code=code)
        response = await self.request(
            "POST", f"{API}/sandbox/{session_id}/pair", json=body_of(body)
        )
        return str(_parse_dict(response).get("phone", ""))

    async def sandbox_inbound(
        self, session_id: uuid.UUID, body: SandboxInbound
    ) -> SandboxInboundOut:
        """Make a simulated customer send a text to a sandbox session (ADMIN)."""
        return await self._send(
            SandboxInboundOut, "POST", f"{API}/sandbox/{session_id}/inbound", body
        )

    async def sandbox_inbox(self, session_id: uuid.UUID, phone: str) -> list[SandboxDelivered]:
        """List what a simulated customer's phone received from a sandbox session (ADMIN)."""
        return await self._get_list(
            SandboxDelivered, f"{API}/sandbox/{session_id}/inbox", phone=phone
        )

    # ----------------------------------------------------------------- ticket life

    async def accept_ticket(self, ticket_id: uuid.UUID) -> TicketOut:
        """Take a waiting ticket (Conflict: at capacity, or someone else took it)."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/accept")

    async def assign_ticket(self, ticket_id: uuid.UUID, body: TicketAssign) -> TicketOut:
        """Give a ticket to a member of the company (SUPERVISOR+)."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/assign", body)

    async def transfer_ticket(self, ticket_id: uuid.UUID, body: TicketTransfer) -> TicketOut:
        """Move a ticket to another department and/or person."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/transfer", body)

    async def close_ticket(
        self, ticket_id: uuid.UUID, body: TicketClose | None = None
    ) -> TicketOut:
        """Close a ticket (its assignee or SUPERVISOR+), with the farewell unless told not to."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/close", body)

    async def reopen_ticket(self, ticket_id: uuid.UUID) -> TicketOut:
        """Reopen a closed ticket (SUPERVISOR+ or its last assignee)."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/reopen")

    async def mark_ticket_read(self, ticket_id: uuid.UUID) -> TicketOut:
        """Mark a ticket and its chat as read."""
        return await self._send(TicketOut, "POST", f"{API}/tickets/{ticket_id}/read")

    async def update_ticket(self, ticket_id: uuid.UUID, body: TicketUpdate) -> TicketOut:
        """Change a ticket's priority (SUPERVISOR+) and/or replace its tags."""
        return await self._send(TicketOut, "PATCH", f"{API}/tickets/{ticket_id}", body)

    # ----------------------------------------------------------------- messages, media

    async def send_message(
        self, body: MessageSend, *, idempotency_key: str | None = None
    ) -> MessageOut:
        """Send a message (or store an internal note) through the outbox.

        With an `idempotency_key`, repeating the call answers the same message and
        queues nothing new: safe to retry after a timeout.
        """
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        response = await self.request(
            "POST", f"{API}/messages", json=body_of(body), headers=headers
        )
        return _parse(MessageOut, response)

    async def upload_media(
        self,
        content: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        company_id: uuid.UUID | None = None,
    ) -> MediaOut:
        """Upload a file (its type is detected from the content by the daemon)."""
        response = await self.request(
            "POST",
            f"{API}/media",
            files={UPLOAD_FIELD: (filename, content, content_type)},
            params={"company_id": company_id},
        )
        return _parse(MediaOut, response)

    async def media_meta(self, media_id: uuid.UUID) -> MediaOut:
        """Show a file's type, size, digest and name."""
        return await self._get(MediaOut, f"{API}/media/{media_id}/meta")

    async def download_media(self, media_id: uuid.UUID) -> bytes:
        """Fetch a file's bytes."""
        return (await self.request("GET", f"{API}/media/{media_id}")).content

    # ----------------------------------------------------------------- outbox

    async def list_outbox(
        self,
        *,
        state: OutboxState | None = None,
        session_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[OutboxOut]:
        """List one page of outbox entries, newest first by default (ADMIN)."""
        return await self._get_page(
            OutboxOut,
            f"{API}/outbox",
            state=state,
            session_id=session_id,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_outbox(self, outbox_id: uuid.UUID) -> OutboxOut:
        """Show one outbox entry (ADMIN)."""
        return await self._get(OutboxOut, f"{API}/outbox/{outbox_id}")

    async def retry_outbox(self, outbox_id: uuid.UUID) -> OutboxOut:
        """Send a DEAD or waiting entry again now, attempts reset (ADMIN)."""
        return await self._send(OutboxOut, "POST", f"{API}/outbox/{outbox_id}/retry")

    async def drop_outbox(self, outbox_id: uuid.UUID) -> OutboxOut:
        """Give up on a PENDING or DEAD entry; its message becomes FAILED (ADMIN)."""
        return await self._send(OutboxOut, "POST", f"{API}/outbox/{outbox_id}/drop")

    # ----------------------------------------------------------------- service metrics

    async def _report(
        self,
        model: type[_M],
        name: str,
        since: datetime | None,
        until: datetime | None,
        department_id: uuid.UUID | None,
        company_id: uuid.UUID | None,
    ) -> _M:
        return await self._get(
            model,
            f"{API}/metrics/{name}",
            since=since,
            until=until,
            department_id=department_id,
            company_id=company_id,
        )

    async def metrics_summary(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> MetricsSummary:
        """Every report over [since, until) (ADMIN, SUPERVISOR; default the last 7 days)."""
        return await self._report(
            MetricsSummary, "summary", since, until, department_id, company_id
        )

    async def metrics_tickets(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> TicketsReport:
        """Tickets created in the range, by status and department (ADMIN, SUPERVISOR)."""
        return await self._report(TicketsReport, "tickets", since, until, department_id, company_id)

    async def metrics_response_times(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> ResponseTimesReport:
        """First response and resolution times of the range's tickets (ADMIN, SUPERVISOR)."""
        return await self._report(
            ResponseTimesReport, "response-times", since, until, department_id, company_id
        )

    async def metrics_volume(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> VolumeReport:
        """Messages in and out per day, in the company's time zone (ADMIN, SUPERVISOR)."""
        return await self._report(VolumeReport, "volume", since, until, department_id, company_id)

    async def metrics_agents(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> AgentsReport:
        """Load per agent: tickets held now, closed in the range (ADMIN, SUPERVISOR)."""
        return await self._report(AgentsReport, "agents", since, until, department_id, company_id)

    async def metrics_queues(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> QueuesReport:
        """Who waits now, per department, and for how long (ADMIN, SUPERVISOR)."""
        return await self._report(QueuesReport, "queues", since, until, department_id, company_id)

    # ----------------------------------------------------------------- audit, metrics

    async def list_audit(
        self,
        *,
        company_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> Page[AuditOut]:
        """List one page of the audit log (ADMIN); `action` may be a prefix as 'ticket.*'."""
        return await self._get_page(
            AuditOut,
            f"{API}/audit",
            company_id=company_id,
            user_id=user_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def prometheus_metrics(self) -> str:
        """Fetch the Prometheus exposition of `/metrics` (unauthenticated)."""
        return (await self.request("GET", "/metrics", auth=False)).text

    # ----------------------------------------------------------------- realtime

    def subscribe(
        self,
        since: int | Mapping[uuid.UUID, int] | None = None,
        *,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
    ) -> Subscription:
        """Open the event stream: `async with zap.subscribe(since=n) as sub: async for e in sub`.

        `since` is the last seq the caller has (None: live only); global admins, who see
        every company, may give one seq per company as `{company_id: seq}`.
        """
        return Subscription(
            self,
            since,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
        )

    def ws_url(self, since: int | str | None = None) -> str:
        """Return the WebSocket URL of the event stream."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}{API}/ws"
        return f"{url}?{urlencode({'since': since})}" if since is not None else url


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed, ConcurrencyError):
        while True:
            await ws.recv()


# Close codes after which the stream resumes (server restart, overload, slow consumer,
# plain network loss); 4001 means the credentials died; anything else is final.
RECONNECT_CODES = frozenset({1000, 1001, 1006, 1011, 1012, 1013, 1014, 4008})
CLOSE_UNAUTHORIZED = 4001
_TRANSIENT = (DaemonUnreachable, RequestTimeout, ServerError, RateLimited)
# A connection that lived this long (or delivered anything) earns a new token refresh.
_HEALTHY_AFTER = 10.0


class Subscription:
    """A self-healing event stream; iterate it for `EventEnvelope`s, in order, each once."""

    def __init__(
        self,
        client: ZapClient,
        since: int | Mapping[uuid.UUID, int] | None,
        *,
        backoff_initial: float,
        backoff_max: float,
        open_timeout: float,
        ping_interval: float | None,
    ) -> None:
        self.client = client
        # Highest persisted seq received (or the `since` given); per company in `positions`.
        self.last_seq: int | None = None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.connects = 0  # successful handshakes
        self.delays: deque[float] = deque(maxlen=100)  # the latest backoff sleeps taken
        self.last_error: ZapError | None = None  # why the last (re)connect failed
        self._floor: int | None = None  # the plain `since`: floor of every company
        self._high: dict[uuid.UUID, int] = {}  # per-company seq high-water mark
        self._global: bool | None = None  # sees every company (learnt when first needed)
        if isinstance(since, Mapping):
            self._high = {uuid.UUID(str(k)): int(v) for k, v in since.items()}
            self._global = True
            self.last_seq = max(self._high.values(), default=None)
        else:
            self._floor = self.last_seq = since
        self._ws: ClientConnection | None = None
        self._delay = backoff_initial
        self._closed = False
        self._may_refresh = True
        self._opened_at = 0.0
        self._got_frame = False
        self._ws_token: str | None = None

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream; iteration ends."""
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is None:
            return
        # Unread events fill the receive queue and websockets then stops reading, so the
        # server's closing frame would never be seen (close() waiting its full timeout):
        # drop whatever is still unread while closing.
        drain = asyncio.create_task(_drain(ws))
        try:
            await ws.close()
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain

    @property
    def connected(self) -> bool:
        """Tell whether a connection is open right now."""
        return self._ws is not None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventEnvelope:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._reconnect()
                continue
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                await self._lost(exc)
                continue
            self._got_frame = True
            event = self._accept(frame)
            if event is not None:
                return event

    def _accept(self, frame: str | bytes) -> EventEnvelope | None:
        try:
            event = EventEnvelope.model_validate_json(frame)
        except pydantic.ValidationError:
            # Not an event: `{"type": "pong"}`, or `{"type": "error", ...}` about a frame
            # this client sent (a typing frame refused, for instance).
            try:
                doc = _DICT.validate_json(frame)
            except pydantic.ValidationError:
                doc = {}
            if doc.get("type") == "hello":
                self._hello(doc.get("seqs"))
            elif doc.get("type") == "error":
                log.warning("zapd refused a frame: %s %s", doc.get("error"), doc.get("message"))
            else:
                log.debug("ignoring a frame that is not an event envelope: %.200r", frame)
            return None
        if event.seq is None:
            return event  # ephemeral (typing): never replayed, never deduplicated
        high = self._high.get(event.company_id, self._floor)
        if high is not None and event.seq <= high:
            return None  # already delivered before a reconnect
        self._high[event.company_id] = event.seq
        self.last_seq = event.seq if self.last_seq is None else max(self.last_seq, event.seq)
        return event

    def _hello(self, seqs: Any) -> None:
        """Adopt the positions the daemon says the stream starts from (never going back)."""
        if not isinstance(seqs, dict):
            return
        for raw_cid, raw_seq in seqs.items():
            try:
                cid, seq = uuid.UUID(str(raw_cid)), int(raw_seq)
            except (TypeError, ValueError):
                continue
            high = self._high.get(cid, self._floor)
            if high is None or seq > high:
                self._high[cid] = seq
        if len(seqs) > 1:
            self._global = True
        if self._high:
            self.last_seq = max(self._high.values())

    async def send_typing(self, ticket_id: uuid.UUID, typing: bool = True) -> bool:
        """Tell the daemon the agent is (not) typing; False when the stream is down."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(TypingIn(ticket_id=ticket_id, typing=typing).model_dump_json())
        except ConnectionClosed:
            return False
        return True

    # ----------------------------------------------------------------- connection

    @property
    def positions(self) -> dict[uuid.UUID, int]:
        """Return the last seq received per company."""
        return dict(self._high)

    def _since(self) -> str | None:
        # A company user resumes with one number. A global admin sees every company, each
        # with its own seqs, so it resumes with `COMPANY:SEQ,...` (companies it never
        # heard of start live).
        if self._global and self._high:
            return ",".join(f"{cid}:{seq}" for cid, seq in self._high.items())
        if self._global:
            return None if self._floor is None else str(self._floor)
        return None if self.last_seq is None else str(self.last_seq)

    async def _learn_scope(self) -> None:
        if self._global is None and self._high:
            self._global = len(self._high) > 1 or (await self.client.me()).is_global_admin

    async def _handshake(self) -> ClientConnection:
        await self._learn_scope()
        url = self.client.ws_url(self._since())
        token = self.client.access_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return await connect(
                url,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=self.open_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                close_timeout=5,
                max_size=4 * 1024 * 1024,
                proxy=None if _is_loopback(url) else True,
            )
        except InvalidStatus as exc:
            r = exc.response
            answered = {k.lower(): v for k, v in r.headers.raw_items()}
            error = error_from(r.status_code, bytes(r.body or b""), answered)
            if isinstance(error, Forbidden):
                # A socket closed before being accepted answers a bare 403: every user may
                # subscribe, so a refusal at the handshake means the credentials.
                raise Unauthorized(
                    f"the event stream refused the credentials ({error.message})",
                    status=403,
                    code=error.code,
                ) from None
            raise error from None
        except InvalidURI as exc:
            raise BadRequest(f"bad zapd URL {url}: {exc}") from None
        except (OSError, TimeoutError, InvalidHandshake):
            raise DaemonUnreachable(self.client.base_url) from None

    async def _connect(self) -> None:
        token = self.client.access_token
        try:
            ws = await self._handshake()
        except Unauthorized as exc:
            await self._reauth(exc, token)
            ws = await self._handshake()  # a second refusal is final
        self._ws = ws
        self._ws_token = self.client.access_token
        self.connects += 1
        self._delay = self.backoff_initial
        self._opened_at = time.monotonic()
        self._got_frame = False

    async def _reauth(self, error: Unauthorized, token: str | None) -> None:
        """Refresh the token once after an auth refusal, or raise the refusal."""
        if self.client.access_token != token:
            return  # somebody else refreshed meanwhile: just try the new token
        if not self._may_refresh or not self.client.refresh_token:
            raise error
        self._may_refresh = False
        try:
            await self.client._refresh_after_expiry(token)
        except ZapError as exc:
            raise Unauthorized(
                f"{error.message} (token refresh failed: {exc.message})",
                status=error.status,
                code=error.code,
            ) from exc

    async def _lost(self, exc: ConnectionClosed) -> None:
        """Handle a closed connection: return to reconnect, raise when it is final."""
        self._ws = None
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        healthy = self._got_frame or time.monotonic() - self._opened_at >= _HEALTHY_AFTER
        if healthy:
            self._may_refresh = True
        if code == CLOSE_UNAUTHORIZED:
            error = Unauthorized(reason or "the event stream refused the credentials")
            await self._reauth(error, self._ws_token)
            self._delay = 0.0  # reconnect at once with the new token
            return
        if code not in RECONNECT_CODES:
            raise ZapError(
                f"zapd closed the event stream: {code} {reason}".strip(), code="ERR_WS_CLOSED"
            )
        log.info("event stream closed (%s %s); resuming after seq %s", code, reason, self.last_seq)

    def _next_delay(self) -> float:
        delay = self._delay
        self._delay = min(self.backoff_max, max(self._delay * 2, self.backoff_initial))
        return random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not cryptography

    async def _reconnect(self) -> None:
        """Connect again after a loss, backing off with jitter until it works."""
        while not self._closed:
            delay = self._next_delay()
            if delay > 0:
                self.delays.append(delay)
                await asyncio.sleep(delay)
            try:
                await self._connect()
            except _TRANSIENT as exc:
                self.last_error = exc
                log.info("event stream reconnect failed: %s", exc.message)
                continue
            return


__all__ = [
    "DEFAULT_URL",
    "BadRequest",
    "BadResponse",
    "Conflict",
    "DaemonUnreachable",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "Subscription",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
    "ZapClient",
    "ZapError",
    "error_from",
    "parse_retry_after",
]
