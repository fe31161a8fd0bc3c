"""Inbound pipeline throughput against the raw insert rate of the same rows, in one run.

    python -m bench.daemon pipeline --db sqlite [--customers 100 --per-customer 10]
    python -m bench.daemon pipeline --db postgresql://.../scratch

Both phases use the same traffic shape: many customers at once, each customer's
messages in order, at most `concurrency` in flight. The pipeline phase hands engine
events to `Inbound.receive` (raw event committed, then client resolution, chat upsert,
dedupe, ticket, greeting-menu flow, outbox replies, realtime events). The baseline
phase commits, per event, just the two rows that must exist at the end (the raw
webhook_events row and the message), with nothing else. The ratio says what the
conversation logic costs on top of bare durable storage.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from shared.cnpj import cnpj_check_digits
from shared.enums import Engine, MessageDirection, MessageStatus
from zapd.config import ZapdSettings
from zapd.connectors.events import MessageEvent, dump_event
from zapd.daemon import open_daemon
from zapd.db.models import Chat, Company, Department, Message, WaSession, WebhookEvent
from zapd.db.types import new_id, utcnow
from zapd.kernel.context import Kernel


@dataclass(frozen=True)
class PipelineResult:
    """Events/s through the pipeline and through the raw-insert baseline."""

    events: int
    pipeline_seconds: float
    baseline_seconds: float

    @property
    def pipeline_rate(self) -> float:
        return self.events / self.pipeline_seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds

    def as_dict(self) -> dict[str, Any]:
        """Return the figures for printing."""
        return {
            "events": self.events,
            "pipeline_events_per_s": round(self.pipeline_rate, 1),
            "baseline_inserts_per_s": round(self.baseline_rate, 1),
            "ratio": round(self.pipeline_rate / self.baseline_rate, 3),
        }


async def _company(kernel: Kernel, tag: int) -> tuple[uuid.UUID, uuid.UUID]:
    base = f"{tag:08d}0001"
    async with kernel.tx() as db:
        company = Company(name=f"Bench {tag}", cnpj=base + cnpj_check_digits(base))
        db.add(company)
        await db.flush()
        for order, name in enumerate(("Laboratório", "Comercial", "Financeiro"), start=1):
            slug = name.lower().replace("ó", "o")
            db.add(Department(company_id=company.id, name=name, slug=slug, menu_order=order))
        session = WaSession(company_id=company.id, name="bench", engine=Engine.SANDBOX)
        db.add(session)
        await db.flush()
        return company.id, session.id


def _traffic(customers: int, per: int, tag: str) -> list[list[tuple[str, str, str]]]:
    texts = ["oi", "1"] + [f"mensagem {i}" for i in range(max(0, per - 2))]
    return [
        [(f"+55119{60000000 + c}", f"{tag}-{c}-{i}", t) for i, t in enumerate(texts[:per])]
        for c in range(customers)
    ]


async def _drive(traffic: list[list[tuple[str, str, str]]], concurrency: int, one: Any) -> float:
    queue: asyncio.Queue[list[tuple[str, str, str]]] = asyncio.Queue()
    for customer in traffic:
        queue.put_nowait(customer)

    async def worker() -> None:
        while not queue.empty():
            for item in queue.get_nowait():
                await one(*item)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def bench_pipeline(
    db_url: str | None, customers: int = 100, per_customer: int = 10, concurrency: int = 16
) -> PipelineResult:
    """Measure both phases on one database and return the figures."""
    with tempfile.TemporaryDirectory(prefix="zap-bench-") as tmp:
        settings = ZapdSettings(
            state_dir=Path(tmp),
            database_url=db_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            jwt_secret="bench-" + "s" * 40,
        )
        daemon = await open_daemon(settings)
        kernel = daemon.kernel
        try:
            tag = int(time.time()) % 10_000_000
            _, session_id = await _company(kernel, tag)
            base_company, base_session = await _company(kernel, tag + 1)

            async def through_pipeline(phone: str, wa_id: str, text: str) -> None:
                now = utcnow()
                jid = phone[1:] + "@s.whatsapp.net"
                await daemon.inbound.receive(
                    session_id,
                    MessageEvent(
                        session_id=session_id,
                        at=now,
                        wa_message_id=wa_id,
                        chat_jid=jid,
                        sender_jid=jid,
                        body=text,
                        timestamp=now,
                    ),
                )

            chats: dict[str, uuid.UUID] = {}
            traffic_b = _traffic(customers, per_customer, "B")
            async with kernel.tx() as db:
                for customer in traffic_b:
                    phone = customer[0][0]
                    chat = Chat(
                        company_id=base_company,
                        session_id=base_session,
                        wa_chat_id=phone[1:] + "@s.whatsapp.net",
                    )
                    db.add(chat)
                    await db.flush()
                    chats[phone] = chat.id

            async def raw_insert(phone: str, wa_id: str, text: str) -> None:
                now = utcnow()
                jid = phone[1:] + "@s.whatsapp.net"
                event = MessageEvent(
                    session_id=base_session,
                    at=now,
                    wa_message_id=wa_id,
                    chat_jid=jid,
                    sender_jid=jid,
                    body=text,
                    timestamp=now,
                )
                async with kernel.tx() as db:
                    await db.execute(
                        insert(WebhookEvent).values(
                            id=new_id(),
                            company_id=base_company,
                            session_id=base_session,
                            engine=Engine.SANDBOX,
                            event_type="message",
                            dedupe_key=wa_id,
                            payload=dump_event(event),
                            state=1,
                            attempts=1,
                            received_at=now,
                        )
                    )
                    await db.execute(
                        insert(Message).values(
                            id=new_id(),
                            company_id=base_company,
                            session_id=base_session,
                            chat_id=chats[phone],
                            direction=MessageDirection.INBOUND,
                            type=0,
                            status=MessageStatus.RECEIVED,
                            body=text,
                            wa_message_id=wa_id,
                            is_note=False,
                            extra={},
                            created_at=now,
                            updated_at=now,
                        )
                    )

            baseline = await _drive(traffic_b, concurrency, raw_insert)
            pipeline = await _drive(
                _traffic(customers, per_customer, "P"), concurrency, through_pipeline
            )
            return PipelineResult(customers * per_customer, pipeline, baseline)
        finally:
            await daemon.stop_background()
            await daemon.close()
