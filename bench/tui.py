"""zaptui speed and memory, headless: a 10,000-message chat and a burst of queue updates.

Runs the real app (`make_app` with a preset inbox, no daemon: what is measured is the
UI's own cost) in Textual's headless mode at 120x36, and reports, each beside a baseline
measured in the same run:

- open a chat of 10,000 messages (until the frame is painted) vs a chat of 100;
- jump to the oldest message of the 10,000 and paint vs the same on the 100 chat;
- apply a burst of 1,000 `ticket.update` events to a 1,000-ticket queue (until the list
  and counters are repainted) vs a burst of 10;
- memory: the process RSS before the data is built and after both measurements.

    python -m bench.tui            # one JSON document on stdout
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.enums import (
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    Role,
    TicketStatus,
)
from shared.protocol.auth import Me
from shared.protocol.events import TICKET_UPDATE, EventEnvelope
from shared.protocol.tickets import ClientSummary, DepartmentRef, MessageOut, TicketOut
from zaptui.app import make_app
from zaptui.config import TuiSettings
from zaptui.model import Inbox
from zaptui.screens.main import MainScreen
from zaptui.widgets.chat_log import ChatLog

COMPANY = uuid.uuid4()
DEPT = uuid.uuid4()
ME = uuid.uuid4()
NOW = datetime.now(UTC)
WORDS = [
    "bom",
    "dia",
    "gostaria",
    "de",
    "saber",
    "o",
    "resultado",
    "do",
    "exame",
    "que",
    "fiz",
    "ontem",
    "na",
    "unidade",
    "centro",
]


def _ticket(i: int) -> TicketOut:
    created = NOW - timedelta(minutes=i % 300)
    return TicketOut.model_construct(
        id=uuid.uuid4(),
        company_id=COMPANY,
        number=i + 1,
        status=TicketStatus.PENDING if i % 3 else TicketStatus.OPEN,
        flow_state=FlowState.ROUTED,
        priority=Priority(i % 4),
        unread_count=i % 5,
        reopen_count=0,
        client=ClientSummary.model_construct(
            id=uuid.uuid4(), name=f"Cliente {i}", profile_name=None, phone=f"+55119{i:08d}"
        ),
        session_id=None,
        chat_id=uuid.uuid4(),
        department=DepartmentRef.model_construct(id=DEPT, name="Laboratório"),
        assignee=None,
        category_id=None,
        timeout_at=None,
        escalated_at=None,
        first_response_at=None,
        last_message_at=created,
        last_inbound_at=created,
        closed_at=None,
        closed_by_id=None,
        created_at=created,
        updated_at=created,
    )


def _messages(ticket_id: uuid.UUID, n: int) -> list[MessageOut]:
    out = []
    for i in range(n):
        inbound = i % 2 == 0
        words = WORDS[: 3 + (i * 7) % len(WORDS)] * (1 + i % 4)
        out.append(
            MessageOut.model_construct(
                id=uuid.uuid4(),
                ticket_id=ticket_id,
                chat_id=uuid.uuid4(),
                session_id=uuid.uuid4(),
                direction=MessageDirection.INBOUND if inbound else MessageDirection.OUTBOUND,
                type=MessageType.TEXT,
                status=MessageStatus.RECEIVED if inbound else MessageStatus.READ,
                body=" ".join(words),
                is_note=False,
                author_id=None if inbound else ME,
                media_id=None,
                wa_message_id=None,
                quoted_message_id=None,
                error=None,
                extra={} if inbound else {"kind": "agent"},
                wa_timestamp=None,
                created_at=NOW - timedelta(seconds=n - i),
            )
        )
    return out


def _inbox(tickets: int, chats: dict[int, int]) -> Inbox:
    me = Me.model_construct(
        id=ME,
        email="ana@bench",
        name="Ana",
        company_id=COMPANY,
        role=Role.AGENT,
        is_global_admin=False,
        department_ids=[DEPT],
        presence=None,
        via_api_token=False,
    )
    inbox = Inbox(me)
    rows = [inbox.put_ticket(_ticket(i)) for i in range(tickets)]
    for index, count in chats.items():
        tid = rows[index].id
        inbox.put_messages(tid, _messages(tid, count), older=False)
        chat = inbox.chat(tid)
        chat.loaded = chat.complete = True
    return inbox


async def _measure() -> dict[str, Any]:
    rss_start = _rss()
    inbox = _inbox(1000, {0: 10_000, 1: 100, 2: 20})
    ids = list(inbox.rows)
    big_id, small_id, warmup_id = ids[0], ids[1], ids[2]
    app = make_app(TuiSettings(server="http://127.0.0.1:1", bell=False, toasts=False), inbox=inbox)
    out: dict[str, Any] = {}
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        main = app.main
        assert isinstance(main, MainScreen)
        log = main.query_one(ChatLog)

        async def open_chat(tid: uuid.UUID) -> float:
            t0 = time.perf_counter()
            main.open_ticket(tid)
            await pilot.pause()
            app.screen._compositor.render_update(full=True)
            return time.perf_counter() - t0

        async def to_top() -> float:
            t0 = time.perf_counter()
            log.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            app.screen._compositor.render_update(full=True)
            return time.perf_counter() - t0

        # First opens are cold (every height computed at this width); later ones reuse them.
        # A first chat warms the pane up (the composer appears, styles resolve).
        await open_chat(warmup_id)
        small_cold = await open_chat(small_id)
        big_cold = await open_chat(big_id)
        out["chat_lines_10000"] = log.virtual_size.height
        big_top = await to_top()
        small_warm = min([await open_chat(small_id) for _ in range(3)])
        small_top = await to_top()
        big_warm = min([await open_chat(big_id) for _ in range(3)])
        out["open_chat_10000_cold_ms"] = round(big_cold * 1000, 1)
        out["open_chat_100_cold_ms"] = round(small_cold * 1000, 1)
        out["open_cold_ratio_10000_vs_100"] = round(big_cold / small_cold, 2)
        out["open_chat_10000_warm_ms"] = round(big_warm * 1000, 1)
        out["open_chat_100_warm_ms"] = round(small_warm * 1000, 1)
        out["open_warm_ratio_10000_vs_100"] = round(big_warm / small_warm, 2)
        out["scroll_to_oldest_10000_ms"] = round(big_top * 1000, 1)
        out["scroll_to_oldest_100_ms"] = round(small_top * 1000, 1)

        async def burst(n: int) -> float:
            events = [
                EventEnvelope(
                    seq=i,
                    type=TICKET_UPDATE,
                    company_id=COMPANY,
                    data={
                        "id": str(ids[i % len(ids)]),
                        "status": int(TicketStatus.PENDING),
                        "unread_count": i % 7,
                        "department_id": str(DEPT),
                        "assignee_id": None,
                        "at": NOW.isoformat(),
                    },
                )
                for i in range(n)
            ]
            t0 = time.perf_counter()
            for e in events:
                app.apply_event(e)
            main.redraw()  # what the coalescing timer does once per REDRAW_DELAY
            await pilot.pause()
            app.screen._compositor.render_update(full=True)
            return time.perf_counter() - t0

        small_burst = min([await burst(10) for _ in range(3)])
        big_burst = min([await burst(1000) for _ in range(3)])
        out["burst_1000_updates_ms"] = round(big_burst * 1000, 1)
        out["burst_10_updates_ms"] = round(small_burst * 1000, 1)
        out["burst_ratio_1000_vs_10"] = round(big_burst / small_burst, 2)
        out["rss_before_data_mib"] = round(rss_start / 2**20, 1)
        out["rss_after_both_mib"] = round(_rss() / 2**20, 1)
    return out


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize()


def main() -> None:
    result = asyncio.run(_measure())
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
