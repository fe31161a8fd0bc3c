"""zapd client endpoints: categories, tags and quick replies.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import catalog
else:
    catalog = protocol("catalog")


class CatalogEndpoints(ClientCore):
    """Categories, tags and quick replies."""

    # ----------------------------------------------------------------- categories

    async def list_categories(
        self, *, active: bool | None = None, company_id: uuid.UUID | None = None
    ) -> list[catalog.CategoryOut]:
        """List ticket closing categories by name."""
        return await self._get_list(
            catalog.CategoryOut, f"{API}/categories", active=active, company_id=company_id
        )

    async def get_category(self, category_id: uuid.UUID) -> catalog.CategoryOut:
        """Show one category."""
        return await self._get(catalog.CategoryOut, f"{API}/categories/{category_id}")

    async def create_category(self, body: catalog.CategoryCreate) -> catalog.CategoryOut:
        """Create a category (ADMIN)."""
        return await self._send(catalog.CategoryOut, "POST", f"{API}/categories", body)

    async def update_category(
        self, category_id: uuid.UUID, body: catalog.CategoryUpdate
    ) -> catalog.CategoryOut:
        """Change a category (ADMIN); only the fields set on `body` change."""
        return await self._send(
            catalog.CategoryOut, "PATCH", f"{API}/categories/{category_id}", body
        )

    async def delete_category(self, category_id: uuid.UUID) -> None:
        """Remove a category (ADMIN)."""
        await self.request("DELETE", f"{API}/categories/{category_id}")

    # ----------------------------------------------------------------- tags

    async def list_tags(self, *, company_id: uuid.UUID | None = None) -> list[catalog.TagOut]:
        """List tags by name."""
        return await self._get_list(catalog.TagOut, f"{API}/tags", company_id=company_id)

    async def get_tag(self, tag_id: uuid.UUID) -> catalog.TagOut:
        """Show one tag."""
        return await self._get(catalog.TagOut, f"{API}/tags/{tag_id}")

    async def create_tag(self, body: catalog.TagCreate) -> catalog.TagOut:
        """Create a tag (SUPERVISOR and up)."""
        return await self._send(catalog.TagOut, "POST", f"{API}/tags", body)

    async def update_tag(self, tag_id: uuid.UUID, body: catalog.TagUpdate) -> catalog.TagOut:
        """Rename or recolor a tag (SUPERVISOR and up)."""
        return await self._send(catalog.TagOut, "PATCH", f"{API}/tags/{tag_id}", body)

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
    ) -> list[catalog.QuickReplyOut]:
        """List the quick replies the caller may use; `q` is a shortcut prefix."""
        return await self._get_list(
            catalog.QuickReplyOut,
            f"{API}/quick-replies",
            q=q,
            department_id=department_id,
            company_id=company_id,
        )

    async def get_quick_reply(self, reply_id: uuid.UUID) -> catalog.QuickReplyOut:
        """Show one quick reply."""
        return await self._get(catalog.QuickReplyOut, f"{API}/quick-replies/{reply_id}")

    async def create_quick_reply(self, body: catalog.QuickReplyCreate) -> catalog.QuickReplyOut:
        """Create a quick reply (ADMIN)."""
        return await self._send(catalog.QuickReplyOut, "POST", f"{API}/quick-replies", body)

    async def update_quick_reply(
        self, reply_id: uuid.UUID, body: catalog.QuickReplyUpdate
    ) -> catalog.QuickReplyOut:
        """Change a quick reply (ADMIN); only the fields set on `body` change."""
        return await self._send(
            catalog.QuickReplyOut, "PATCH", f"{API}/quick-replies/{reply_id}", body
        )

    async def delete_quick_reply(self, reply_id: uuid.UUID) -> None:
        """Remove a quick reply (ADMIN)."""
        await self.request("DELETE", f"{API}/quick-replies/{reply_id}")
