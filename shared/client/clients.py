"""zapd client endpoints: clients: the customers who write in.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import clients, common
else:
    clients = protocol("clients")


class ClientEndpoints(ClientCore):
    """Clients: the customers who write in."""

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
    ) -> common.Page[clients.ClientOut]:
        """List one page of clients; `q` searches name, profile name and phone digits."""
        return await self._get_page(
            clients.ClientOut,
            f"{API}/clients",
            q=q,
            blocked=blocked,
            tag_id=tag_id,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_client(self, client_id: uuid.UUID) -> clients.ClientOut:
        """Show one client with its tag ids."""
        return await self._get(clients.ClientOut, f"{API}/clients/{client_id}")

    async def create_client(self, body: clients.ClientCreate) -> clients.ClientOut:
        """Add a client by hand; Conflict when the phone is already known."""
        return await self._send(clients.ClientOut, "POST", f"{API}/clients", body)

    async def update_client(
        self, client_id: uuid.UUID, body: clients.ClientUpdate
    ) -> clients.ClientOut:
        """Change a client (`blocked` needs SUPERVISOR and up)."""
        return await self._send(clients.ClientOut, "PATCH", f"{API}/clients/{client_id}", body)

    async def set_client_tags(
        self, client_id: uuid.UUID, tag_ids: list[uuid.UUID]
    ) -> clients.ClientOut:
        """Replace a client's tags."""
        body = clients.ClientTagsSet(tag_ids=tag_ids)
        return await self._send(clients.ClientOut, "PUT", f"{API}/clients/{client_id}/tags", body)
