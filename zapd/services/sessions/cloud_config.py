"""A Cloud API session's engine settings, read from its row with the credentials opened.

The row's config holds the credentials sealed (`zapd.secretbox`); this is the one place
that opens them for an engine. An unreadable seal (another state dir's key) answers 503
ERR_ENGINE_UNAVAILABLE naming the key, never the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from shared.errors import ErrorCode
from zapd.connectors.cloud.graph import CloudSettings
from zapd.db.models import WaSession
from zapd.errors import Conflict, Unavailable
from zapd.secretbox import SecretBox, SecretError

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel


def settings_of(box: SecretBox, row: WaSession) -> CloudSettings:
    """Return a cloud session's settings with its credentials opened."""
    try:
        return CloudSettings.from_config(box.unseal(row.config or {}))
    except SecretError as exc:
        raise Unavailable(str(exc), code=ErrorCode.ENGINE_UNAVAILABLE) from None
    except (KeyError, TypeError, ValueError):
        raise Conflict(
            "the cloud session lacks phone_number_id or access_token",
            code=ErrorCode.ENGINE_UNAVAILABLE,
        ) from None


async def seal_stored(kernel: Kernel, box: SecretBox) -> int:
    """Seal credentials still stored in the clear (rows written before sealing); return how many.

    Run at daemon start; idempotent (sealed values are left alone).
    """
    sealed = 0
    async with kernel.tx() as db:
        for row in await db.scalars(select(WaSession)):
            config = row.config or {}
            new = box.seal(config)
            if new != config:
                row.config = new
                sealed += 1
    return sealed
