"""/api/v1/auth: login, refresh, logout, me; /api/v1/api-tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

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
from zapd.api.deps import ActorDep, Auth, KernelDep, client_ip
from zapd.services.people import auth, users

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginRequest, request: Request, kernel: KernelDep) -> TokenPair:
    """Exchange e-mail and password for an access token and a refresh token."""
    return await auth.login(
        kernel,
        body.email,
        body.password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, request: Request, kernel: KernelDep) -> TokenPair:
    """Spend a refresh token for a new pair (each refresh token works once)."""
    return await auth.refresh_or_revoke(
        kernel,
        body.refresh_token,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


@router.post("/auth/logout", status_code=204)
async def logout(actor: ActorDep, kernel: KernelDep, body: LogoutRequest | None = None) -> None:
    """End this login: its refresh tokens and access tokens stop working at once."""
    async with kernel.tx() as db:
        await auth.logout(db, actor, body.refresh_token if body else None)


@router.get("/auth/me", response_model=Me)
async def me(principal: Auth, kernel: KernelDep) -> Me:
    """Tell who the caller is."""
    async with kernel.read() as db:
        return await users.me(db, principal)


@router.patch("/auth/me", response_model=Me)
async def update_me(body: MeUpdate, actor: ActorDep, kernel: KernelDep) -> Me:
    """Change one's own name, presence or password (password needs the current one)."""
    async with kernel.tx() as db:
        await users.update_me(db, kernel, actor, body)
    async with kernel.read() as db:
        return await users.me(db, actor.principal)


@router.post("/api-tokens", response_model=ApiTokenCreated, status_code=201, tags=["api-tokens"])
async def create_api_token(
    body: ApiTokenCreate, actor: ActorDep, kernel: KernelDep
) -> ApiTokenCreated:
    """Create an API token for scripts; its secret is shown in this answer only."""
    async with kernel.tx() as db:
        row, secret = await auth.create_api_token(db, actor, body)
        return ApiTokenCreated.model_validate(
            {**ApiTokenOut.model_validate(row).model_dump(), "token": secret}
        )


@router.get("/api-tokens", response_model=list[ApiTokenOut], tags=["api-tokens"])
async def list_api_tokens(actor: ActorDep, kernel: KernelDep) -> list[ApiTokenOut]:
    """List API tokens (never their secrets)."""
    async with kernel.read() as db:
        return [ApiTokenOut.model_validate(r) for r in await auth.list_api_tokens(db, actor)]


@router.delete("/api-tokens/{token_id}", response_model=ApiTokenOut, tags=["api-tokens"])
async def revoke_api_token(token_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> ApiTokenOut:
    """Revoke an API token at once."""
    async with kernel.tx() as db:
        return ApiTokenOut.model_validate(await auth.revoke_api_token(db, actor, token_id))
