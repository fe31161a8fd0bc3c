"""The typed async client of the zapd API, shared by zaptui and zapctl.

`ZapClient` has one method per endpoint, typed with the models of `shared.protocol`; every
failure is a `ZapError` subclass carrying the status, the error code (an `ErrorCode`
member) and the message the daemon answered. An expired access token is refreshed once,
transparently, when a refresh token is known. `ZapClient.subscribe()` opens the realtime
stream and keeps it alive: it reconnects with backoff and resumes with `since=` without
repeats.

The package, like tailscale's LocalClient, is one type for callers over small modules:
- `errors`: the typed errors and their mapping from status and `ErrorCode`;
- `core`: the HTTP core (auth, token refresh, error mapping, parsing) over `transport`
  (HTTP/1.1 on asyncio streams with h11, keep-alive);
- `subscription`: the WebSocket event stream;
- one module per noun with the endpoint methods (`auth`, `users`, `tickets`, ...).

Invariant: importing the package loads pydantic and h11 but no wire model, no httpx and
not websockets; each call imports the protocol module of its noun on first use, and
`subscribe()` the stream. A command-line call pays only for what it uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.client.auth import AuthEndpoints
from shared.client.catalog import CatalogEndpoints
from shared.client.clients import ClientEndpoints
from shared.client.companies import CompanyEndpoints
from shared.client.core import DEFAULT_URL, ClientCore, normalize_url
from shared.client.departments import DepartmentEndpoints
from shared.client.errors import (
    BadRequest,
    BadResponse,
    Conflict,
    DaemonUnreachable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamClosed,
    Unauthorized,
    Unavailable,
    ValidationError,
    ZapError,
    error_from,
    parse_retry_after,
)
from shared.client.messages import MessageEndpoints
from shared.client.reports import ReportEndpoints
from shared.client.sessions import SessionEndpoints
from shared.client.tickets import TicketEndpoints
from shared.client.users import UserEndpoints

if TYPE_CHECKING:
    from shared.client.subscription import Subscription


class ZapClient(
    AuthEndpoints,
    CompanyEndpoints,
    UserEndpoints,
    DepartmentEndpoints,
    CatalogEndpoints,
    ClientEndpoints,
    SessionEndpoints,
    TicketEndpoints,
    MessageEndpoints,
    ReportEndpoints,
    ClientCore,
):
    """Async client of one zapd; use as `async with ZapClient(url, token=...) as zap:`."""

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
        from shared.client.subscription import Subscription  # websockets: only when used

        return Subscription(
            self,
            since,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
        )


def __getattr__(name: str) -> Any:
    # `from shared.client import Subscription` works without loading websockets up front.
    if name == "Subscription":
        from shared.client.subscription import Subscription

        return Subscription
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_URL",
    "BadRequest",
    "BadResponse",
    "Conflict",
    "DaemonUnreachable",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "StreamClosed",
    "Subscription",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
    "ZapClient",
    "ZapError",
    "error_from",
    "normalize_url",
    "parse_retry_after",
]
