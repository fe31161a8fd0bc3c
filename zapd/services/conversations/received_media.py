"""Media that arrived with an inbound message, moved into the media store.

An engine that downloads media (webjs) saves the bytes under
`<state>/sessions/<session id>/media/` and names the file in the event's `media_url`
(`file://…`). Processing the event streams that file into the content-addressed media
store — its type detected from the content, as for uploads — and registers a Media row
for the message. Invariants: only files under the state dir's `sessions/` tree are read
(an event can never make zapd read another path); a file the store refuses (type not
allowed, too big, empty) leaves the message without media and says why in the log;
storing the same content again is harmless, so a retried event is safe.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from zapd.config import ZapdSettings
from zapd.connectors.events import MessageEvent
from zapd.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from zapd.services.delivery.media import MediaStore, register

log = logging.getLogger("zapd.inbound")

CHUNK = 1 << 16


def local_file(settings: ZapdSettings, url: str | None) -> Path | None:
    """Return the file a `file://` media URL names, if it lies in the sessions tree."""
    if not url or not url.startswith("file://"):
        return None
    path = Path(unquote(urlparse(url).path)).resolve()
    root = (settings.state_dir / "sessions").resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


async def store_received(
    db: AsyncSession, settings: ZapdSettings, company_id: uuid.UUID, ev: MessageEvent
) -> uuid.UUID | None:
    """Put an event's downloaded media in the store; return the Media id (None: no media)."""
    path = local_file(settings, ev.media_url)
    if path is None:
        if ev.media_url:
            log.warning("message %s: media %s not readable here", ev.wa_message_id, ev.media_url)
        return None
    upload = MediaStore.from_settings(settings).upload()
    try:
        async with await anyio.open_file(path, "rb") as fh:
            while chunk := await fh.read(CHUNK):
                await upload.write(chunk)
        stored = await upload.finish(ev.media_filename, ev.media_mime)
    except (PayloadTooLarge, UnsupportedMediaType, ValidationFailed) as exc:
        await upload.abort()
        log.warning("message %s: media refused by the store: %s", ev.wa_message_id, exc)
        return None
    except BaseException:
        await upload.abort()
        raise
    media, _ = await register(db, company_id, stored, uploaded_by_id=None)
    return media.id
