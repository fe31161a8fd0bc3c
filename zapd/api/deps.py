"""FastAPI dependencies: resources, the authenticated principal, actor, page params."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from zapd.errors import Unauthorized
from zapd.resources import Resources
from zapd.services import auth
from zapd.services.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from zapd.services.principal import Actor, Principal


def get_resources(request: Request) -> Resources:
    """Return what the lifespan opened."""
    res: Resources = request.app.state.resources
    return res


Res = Annotated[Resources, Depends(get_resources)]


def bearer_of(header: str | None) -> str:
    """Extract the token of an `Authorization: Bearer ...` header."""
    if not header:
        raise Unauthorized("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be: Bearer <token>")
    return token.strip()


async def get_principal(request: Request, res: Res) -> Principal:
    """Authenticate the request's bearer token."""
    token = bearer_of(request.headers.get("authorization"))
    principal = await auth.resolve(res, token)
    request.state.principal = principal

    return principal


Auth = Annotated[Principal, Depends(get_principal)]


def client_ip(request: Request) -> str:
    """Return the caller's address (the socket peer; zapd is not behind a proxy by default)."""
    return request.client.host if request.client else "unknown"


def get_actor(request: Request, principal: Auth) -> Actor:
    """Return the principal with the request's origin, for the audit log."""
    return Actor(principal, client_ip(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


def get_page(
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> PageParams:
    """Read `?cursor=&limit=&order=`."""
    return PageParams(cursor=cursor, limit=limit, order=order)


PageDep = Annotated[PageParams, Depends(get_page)]
