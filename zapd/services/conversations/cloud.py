"""Cloud API sessions on the daemon's side: webhooks in, media, templates, the 24-hour window.

Webhook intake (`store_webhook` then `process_webhook`):

    POST /webhooks/cloud/{session}
      ─► signature (HMAC-SHA256 of the raw body, app secret) ─ wrong/missing ─► 401, nothing stored
      ─► webhook_events row, event_type "cloud.webhook", payload = the body as Meta sent it,
         dedupe_key = sha256 of the body: a byte-identical redelivery is stored once;
         bodies arriving together share one commit (group commit), each answered after it
      ─► 200 to Meta
      └► process: parse → download media (with the token, into the media store) →
         the events through the inbound pipeline in one transaction that also marks the
         row PROCESSED (`Inbound.process_events`: messages deduped on their wamid,
         statuses forward only, early acks kept).

A send in doubt after a crash (Meta may have it, its wamid was never recorded) is
recognised by its idempotency key, echoed in the stored status webhooks
(`find_sent`; the policy is in zapd.connectors.cloud.connector).

A row left PENDING by a crash is processed again at start (`Inbound.recover` hands
"cloud.webhook" rows here); a media file downloaded before the crash is found again by
its digest (one row per content). A body that cannot be read is poisoned with its
error, never retried forever.

The 24-hour service window: a client may get free-form messages on a Cloud API
session only within 24 h of their last inbound message on that session; outside it,
only a template (`window`, checked by the messages service before anything is queued).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Engine, MessageDirection, WebhookEventState
from shared.errors import ErrorCode
from shared.protocol.messages import MessageSend
from zapd.connectors.base import Connector
from zapd.connectors.cloud import webhook
from zapd.connectors.cloud.connector import CloudConnector
from zapd.connectors.cloud.graph import CloudSettings, GraphClient, GraphError
from zapd.connectors.events import AnyEngineEvent, MessageEvent
from zapd.db.models import Chat, Media, Message, WaSession, WebhookEvent
from zapd.db.types import utcnow
from zapd.errors import Conflict, NotFound, Unauthorized, Unavailable, ValidationFailed
from zapd.secretbox import SecretBox
from zapd.services.delivery.media import MediaStore, register
from zapd.services.sessions.cloud_config import settings_of

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.cloud")

RAW_EVENT_TYPE = "cloud.webhook"
WINDOW = timedelta(hours=24)
IN_DOUBT_LOOKBACK = timedelta(days=7)  # Meta redelivers a webhook for up to 7 days
_SETTINGS_TTL = 5.0  # seconds a session's decrypted settings are reused by the webhook route


@dataclass(frozen=True)
class Window:
    """A client's service window on a session."""

    open: bool
    last_inbound_at: datetime | None
    expires_at: datetime | None


async def window(
    db: AsyncSession, session_id: uuid.UUID, client_id: uuid.UUID, now: datetime | None = None
) -> Window:
    """Return the 24-hour window of a client on a session (from their last inbound message)."""
    last = await db.scalar(
        select(func.max(func.coalesce(Message.wa_timestamp, Message.created_at)))
        .join(Chat, Chat.id == Message.chat_id)
        .where(
            Chat.session_id == session_id,
            Chat.client_id == client_id,
            Message.direction == MessageDirection.INBOUND,
        )
    )
    if last is None:
        return Window(False, None, None)
    if last.tzinfo is None:  # SQLite hands max() back naive
        last = last.replace(tzinfo=UTC)
    expires = last + WINDOW
    return Window((now or utcnow()) < expires, last, expires)


ConnectorOf = Callable[[uuid.UUID], Connector | None]
# The inbound pipeline's entry for a stored row that gave several events (row, company, events).
ProcessEvents = Callable[[uuid.UUID, uuid.UUID, list[AnyEngineEvent]], Awaitable[None]]


GROUP_COMMIT_MAX = 500  # bodies per transaction at most


@dataclass
class _Pending:
    """A checked body waiting for its commit; `done` gets its row id (None: a duplicate)."""

    company_id: uuid.UUID
    session_id: uuid.UUID
    dedupe: str
    payload: dict[str, Any]
    done: asyncio.Future[uuid.UUID | None]


class CloudService:
    """What the daemon does for its Cloud API sessions besides sending.

    Built by the daemon with what it needs: the kernel, the secret box, the inbound
    pipeline's `process_events` and the session manager's `connector_of`.
    """

    def __init__(
        self,
        kernel: Kernel,
        box: SecretBox,
        *,
        process_events: ProcessEvents,
        connector_of: ConnectorOf,
    ) -> None:
        self.kernel = kernel
        self.box = box
        self.process_events = process_events
        self.connector_of = connector_of
        self._settings: dict[uuid.UUID, tuple[float, uuid.UUID, CloudSettings]] = {}
        self.template_names: dict[uuid.UUID, list[str]] = {}  # last list fetched per session
        self.stored = 0
        self.duplicates = 0
        # Stored bodies wait here for a few processors: under a burst, the commits that
        # answer Meta queue behind at most `processors` processing transactions (SQLite
        # has one writer), not behind one per webhook received.
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._batch: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.processors = 1 if kernel.engine.dialect.name == "sqlite" else 4

    # ------------------------------------------------------------------ processors

    async def start(self) -> None:
        """Start the processors of stored bodies."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._processor(), name=f"cloud-webhooks-{i}")
            for i in range(self.processors)
        ]

    async def stop(self) -> None:
        """Stop the processors; bodies not processed yet stay PENDING (recovered later)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait()

    def schedule(self, row_id: uuid.UUID) -> None:
        """Queue a stored body for processing (it is durable already)."""
        self._queue.put_nowait(row_id)

    async def _processor(self) -> None:
        while True:
            row_id = await self._queue.get()
            try:
                await self.process_webhook(row_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # stays PENDING: processed again at the next start
                log.exception("cloud webhook %s: processing failed", row_id)

    # ------------------------------------------------------------------ settings

    async def session_settings(self, session_id: uuid.UUID) -> tuple[uuid.UUID, CloudSettings]:
        """Return (company id, settings) of a cloud session; 404 for anything else."""
        cached = self._settings.get(session_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < _SETTINGS_TTL:
            return cached[1], cached[2]
        async with self.kernel.read() as db:
            row = await db.get(WaSession, session_id)
            if row is None or row.engine != Engine.CLOUD:
                raise NotFound("no such Cloud API session")
            company_id, settings = row.company_id, settings_of(self.box, row)
        self._settings[session_id] = (now, company_id, settings)
        return company_id, settings

    def forget(self, session_id: uuid.UUID) -> None:
        """Drop cached settings (after the session changed)."""
        self._settings.pop(session_id, None)

    # ------------------------------------------------------------------ webhooks

    async def verify(
        self, session_id: uuid.UUID, mode: str | None, token: str | None, challenge: str | None
    ) -> str:
        """Answer Meta's subscription check: the challenge, when the verify token matches."""
        _, settings = await self.session_settings(session_id)
        expected = settings.verify_token
        if (
            mode != "subscribe"
            or not expected
            or token is None
            or challenge is None
            or not _same(token, expected)
        ):
            raise Unauthorized("webhook verification refused")
        return challenge

    async def store_webhook(
        self, session_id: uuid.UUID, body: bytes, signature: str | None
    ) -> uuid.UUID | None:
        """Check the signature and commit the raw body; None when it was stored already."""
        company_id, settings = await self.session_settings(session_id)
        if not settings.app_secret or not webhook.signature_ok(
            settings.app_secret, body, signature
        ):
            raise Unauthorized("missing or wrong X-Hub-Signature-256")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationFailed("the webhook body is not JSON") from None
        if not isinstance(payload, dict):
            raise ValidationFailed("the webhook body is not a JSON object")
        dedupe = "sha256:" + hashlib.sha256(body).hexdigest()
        pending = _Pending(
            company_id, session_id, dedupe, payload, asyncio.get_running_loop().create_future()
        )
        self._batch.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="cloud-webhook-commits")
        return await pending.done

    async def _flush(self) -> None:
        """Commit waiting bodies, many per transaction (group commit), until none wait.

        Bodies that arrive while a commit is in flight go together in the next one: under
        a burst, one fsync answers many webhooks instead of each queueing for its own.
        """
        while self._batch:
            batch, self._batch = self._batch[:GROUP_COMMIT_MAX], self._batch[GROUP_COMMIT_MAX:]
            try:
                ids = await self._insert(batch)
            except Exception as exc:  # the callers answer 503 and Meta retries
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item, row_id in zip(batch, ids, strict=True):
                if not item.done.done():
                    item.done.set_result(row_id)

    async def _insert(self, batch: list[_Pending]) -> list[uuid.UUID | None]:
        async with self.kernel.tx() as db:
            found = (
                await db.execute(
                    select(WebhookEvent.company_id, WebhookEvent.dedupe_key).where(
                        WebhookEvent.company_id.in_({p.company_id for p in batch}),
                        WebhookEvent.dedupe_key.in_({p.dedupe for p in batch}),
                        WebhookEvent.event_type == RAW_EVENT_TYPE,
                    )
                )
            ).all()
            seen: set[tuple[uuid.UUID, str | None]] = {(c, k) for c, k in found}
            rows: list[WebhookEvent | None] = []
            for item in batch:
                key = (item.company_id, item.dedupe)
                if key in seen:
                    rows.append(None)
                    continue
                seen.add(key)
                row = WebhookEvent(
                    company_id=item.company_id,
                    session_id=item.session_id,
                    engine=Engine.CLOUD,
                    event_type=RAW_EVENT_TYPE,
                    dedupe_key=item.dedupe,
                    payload=item.payload,
                )
                db.add(row)
                rows.append(row)
            await db.flush()
            ids = [row.id if row is not None else None for row in rows]
        self.stored += sum(1 for i in ids if i is not None)
        self.duplicates += sum(1 for i in ids if i is None)
        return ids

    async def process_webhook(self, row_id: uuid.UUID) -> None:
        """Turn a stored body into inbound events, once (see the module docstring)."""
        async with self.kernel.read() as db:
            row = await db.get(WebhookEvent, row_id)
            if row is None or row.state != WebhookEventState.PENDING or row.session_id is None:
                return
            payload, session_id, received = row.payload, row.session_id, row.received_at
            company_id = row.company_id
        try:
            events = webhook.parse(payload, session_id, received)
        except ValueError as exc:
            await self._finish(row_id, WebhookEventState.FAILED, f"unreadable body: {exc}")
            return
        for index, media_id in webhook.media_ids(events):
            event = events[index]
            assert isinstance(event, MessageEvent)
            events[index] = await self._with_media(company_id, session_id, event, media_id)
        if not events:
            await self._finish(row_id, WebhookEventState.IGNORED, None)
            return
        # One transaction applies them all and marks the row PROCESSED: exactly once.
        await self.process_events(row_id, company_id, events)

    async def _finish(self, row_id: uuid.UUID, state: WebhookEventState, error: str | None) -> None:
        async with self.kernel.tx() as db:
            await db.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == row_id, WebhookEvent.state == WebhookEventState.PENDING)
                .values(
                    state=state,
                    error=error[:2000] if error else None,
                    attempts=WebhookEvent.attempts + 1,
                    processed_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )

    # ------------------------------------------------------------------ sends in doubt

    async def find_sent(self, session_id: uuid.UUID, key: str) -> str | None:
        """Return the wamid of a send whose status webhooks carry `key`, if one is stored.

        A send's idempotency key travels as `biz_opaque_callback_data` and Meta echoes it
        in every status of that message; the raw bodies of the last `IN_DOUBT_LOOKBACK`
        are searched (a text match narrows, the parsed body decides). Used only for a
        send in doubt after a crash (zapd.connectors.cloud.connector): rare, so a scan
        of one session's recent bodies is affordable.
        """
        since = utcnow() - IN_DOUBT_LOOKBACK
        async with self.kernel.read() as db:
            payloads = (
                await db.scalars(
                    select(WebhookEvent.payload)
                    .where(
                        WebhookEvent.session_id == session_id,
                        WebhookEvent.event_type == RAW_EVENT_TYPE,
                        WebhookEvent.received_at >= since,
                        cast(WebhookEvent.payload, Text).contains(key, autoescape=True),
                    )
                    .order_by(WebhookEvent.received_at.desc())
                    .limit(50)
                )
            ).all()
        for payload in payloads:
            found = webhook.callback_status(payload, key)
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------------ media

    async def _graph(self, session_id: uuid.UUID) -> tuple[GraphClient, bool]:
        """Return a Graph client for the session: the running connector's, or a new one."""
        connector = self.connector_of(session_id)
        if isinstance(connector, CloudConnector):
            return connector.graph, False
        _, settings = await self.session_settings(session_id)
        return GraphClient(settings), True

    async def _with_media(
        self, company_id: uuid.UUID, session_id: uuid.UUID, event: MessageEvent, media_id: str
    ) -> MessageEvent:
        """Download a received file into the media store; on failure keep why on the message."""
        try:
            media = await self.download(company_id, session_id, media_id, event.media_filename)
        except Exception as exc:  # the message goes in without its file, never lost
            reason = exc.describe() if isinstance(exc, GraphError) else f"{type(exc).__name__}"
            log.warning("media %s of %s not downloaded: %s", media_id, event.wa_message_id, reason)
            extra = {**event.extra, "media": {**event.extra.get("media", {}), "error": reason}}
            return event.model_copy(update={"extra": extra})
        return event.model_copy(update={"media_id": media.id})

    async def download(
        self, company_id: uuid.UUID, session_id: uuid.UUID, media_id: str, filename: str | None
    ) -> Media:
        """Fetch a Meta media id with the session's token and register it (idempotent)."""
        graph, own = await self._graph(session_id)
        store = MediaStore.from_settings(self.kernel.settings)
        upload = store.upload()
        try:
            info = await graph.media_info(media_id)
            url = info.get("url")
            if not isinstance(url, str):
                raise GraphError("the Graph API gave no download URL", retryable=True)
            async for chunk in graph.download(url, store.max_bytes):
                await upload.write(chunk)
            declared = info.get("mime_type")
            stored = await upload.finish(filename, declared if isinstance(declared, str) else None)
        except BaseException:
            await upload.abort()
            raise
        finally:
            if own:
                await graph.aclose()
        async with self.kernel.tx() as db:
            row, _ = await register(db, company_id, stored, uploaded_by_id=None)
            return row

    # ------------------------------------------------------------------ templates

    async def templates(self, session_id: uuid.UUID) -> list[dict[str, Any]]:
        """Return the WABA's approved templates (and remember their names for error texts)."""
        graph, own = await self._graph(session_id)
        try:
            found = await graph.templates()
        except GraphError as exc:
            raise Unavailable(
                f"the Graph API refused the template list: {exc.describe()}",
                code=ErrorCode.ENGINE_UNAVAILABLE,
            ) from None
        finally:
            if own:
                await graph.aclose()
        self.template_names[session_id] = sorted({str(t.get("name")) for t in found})
        return found

    async def known_templates(self, session_id: uuid.UUID) -> list[str]:
        """Return the names of the session's approved templates (fetched once, then cached)."""
        if session_id not in self.template_names:
            try:
                await self.templates(session_id)
            except Exception as exc:  # an error text must not fail over the list
                log.warning("templates of %s unavailable: %s", session_id, type(exc).__name__)
                return []
        return self.template_names.get(session_id, [])


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def template_text(name: str, parameters: list[str]) -> str:
    """Return the plain-text form kept as a template message's body."""
    shown = f"[template {name}]"
    return f"{shown} {' | '.join(parameters)}" if parameters else shown


async def check_cloud_send(
    db: AsyncSession, session: WaSession, client_id: uuid.UUID | None, body: MessageSend
) -> dict[str, Any] | None:
    """Enforce the Cloud API's rules on a send; return the template's `extra`, if any.

    A template needs a Cloud API session. Free-form messages (not notes) on a Cloud API
    session need the client's 24-hour window open: else 409 ERR_WINDOW_CLOSED, before
    anything is queued or reaches Meta.
    """
    if body.template is not None:
        if session.engine != Engine.CLOUD:
            raise Conflict("templates exist only on Cloud API sessions", code=ErrorCode.NOT_CLOUD)
        return {"template": body.template.model_dump()}
    if session.engine != Engine.CLOUD or body.note or client_id is None:
        return None
    state = await window(db, session.id, client_id)
    if not state.open:
        since = (
            f"the customer last wrote at {state.last_inbound_at:%Y-%m-%d %H:%M} UTC"
            if state.last_inbound_at
            else "the customer has not written on this number"
        )
        raise Conflict(
            f"the 24-hour service window is closed ({since}): only a template can be sent",
            code=ErrorCode.WINDOW_CLOSED,
            session_id=session.id,
        )
    return None


async def ticket_window(
    db: AsyncSession, session_id: uuid.UUID | None, client_id: uuid.UUID
) -> Window | None:
    """Return the window of a ticket's client when its session is on the Cloud API."""
    if session_id is None:
        return None
    engine = await db.scalar(select(WaSession.engine).where(WaSession.id == session_id))
    if engine != Engine.CLOUD:
        return None
    return await window(db, session_id, client_id)
