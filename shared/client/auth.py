"""zapd client endpoints: login, tokens, the caller itself and API tokens.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, body_of, parse
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import auth
else:
    auth = protocol("auth")


class AuthEndpoints(ClientCore):
    """Login, tokens, the caller itself and API tokens."""

    # ----------------------------------------------------------------- auth

    async def login(self, email: str, password: str) -> auth.TokenPair:
        """Log in with e-mail and password; the client keeps (and reports) the tokens."""
        # Not validated here: the daemon's 422 is the one answer to bad input.
        body = auth.LoginRequest.model_construct(email=email, password=password)
        response = await self.request("POST", f"{API}/auth/login", json=body_of(body), auth=False)
        return await self._store(parse(auth.TokenPair, response))

    async def refresh(self) -> auth.TokenPair:
        """Spend the refresh token for a new pair (the client keeps and reports it)."""
        async with self._refresh_lock:
            return await self._do_refresh()

    async def logout(self) -> None:
        """End this login on the daemon and forget the tokens."""
        body = auth.LogoutRequest.model_construct(refresh_token=self.refresh_token)
        await self.request("POST", f"{API}/auth/logout", json=body_of(body))
        self.set_tokens(None, None)

    async def me(self) -> auth.Me:
        """Tell who the caller is."""
        return await self._get(auth.Me, f"{API}/auth/me")

    async def update_me(self, body: auth.MeUpdate) -> auth.Me:
        """Change one's own name, presence or password."""
        return await self._send(auth.Me, "PATCH", f"{API}/auth/me", body)

    async def create_api_token(self, body: auth.ApiTokenCreate) -> auth.ApiTokenCreated:
        """Create an API token (ADMIN); the answer is the only time its secret is shown."""
        return await self._send(auth.ApiTokenCreated, "POST", f"{API}/api-tokens", body)

    async def list_api_tokens(self) -> list[auth.ApiTokenOut]:
        """List API tokens (ADMIN), never their secrets."""
        return await self._get_list(auth.ApiTokenOut, f"{API}/api-tokens")

    async def revoke_api_token(self, token_id: uuid.UUID) -> auth.ApiTokenOut:
        """Revoke an API token at once (ADMIN)."""
        return parse(auth.ApiTokenOut, await self.request("DELETE", f"{API}/api-tokens/{token_id}"))
