"""FastAPI dependencies: the kernel, the daemon, the authenticated principal, actor, pages.

Routes hand services the kernel (`KernelDep`); only the few routes that drive a daemon
part directly (starting an engine, the sandbox, the Prometheus registry) take the
daemon (`DaemonDep`).

Every dependency here is `async def`, even those that never await: FastAPI runs a plain
`def` dependency in a worker thread, and that hand-off (twice per authenticated request)
cost more than the whole unauthenticated request.

Authentication reads the principal as a hot read (`zapd.kernel.hot`), holding no
pooled connection; an API token's `last_used_at` write, when due, follows it in its
own transaction before the route runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from zapd.daemon import Daemon
from zapd.errors import Unauthorized
from zapd.kernel.context import Kernel
from zapd.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from zapd.kernel.principal import Actor, Principal
from zapd.services.people import auth


async def get_daemon(request: Request) -> Daemon:
    """Return what the lifespan opened."""
    daemon: Daemon = request.app.state.daemon
    return daemon


async def get_kernel(request: Request) -> Kernel:
    """Return the kernel services receive."""
    daemon: Daemon = request.app.state.daemon
    return daemon.kernel


DaemonDep = Annotated[Daemon, Depends(get_daemon)]
KernelDep = Annotated[Kernel, Depends(get_kernel)]


def bearer_of(header: str | None) -> str:
    """Extract the token of an `Authorization: Bearer ...` header."""
    if not header:
        raise Unauthorized("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be: Bearer <token>")
    return token.strip()


async def get_principal(request: Request) -> Principal:
    """Authenticate the request's bearer token."""
    token = bearer_of(request.headers.get("authorization"))
    daemon: Daemon = request.app.state.daemon
    principal = await auth.resolve(daemon.kernel, token)
    request.state.principal = principal
    return principal


Auth = Annotated[Principal, Depends(get_principal)]


def client_ip(request: Request) -> str:
    """Return the caller's address (the socket peer; zapd is not behind a proxy by default)."""
    return request.client.host if request.client else "unknown"


async def get_actor(request: Request, principal: Auth) -> Actor:
    """Return the principal with the request's origin, for the audit log."""
    return Actor(principal, client_ip(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_page(
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> PageParams:
    """Read `?cursor=&limit=&order=`."""
    return PageParams(cursor=cursor, limit=limit, order=order)


PageDep = Annotated[PageParams, Depends(get_page)]
