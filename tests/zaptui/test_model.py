"""The inbox model alone: events merge by id, statuses only move forward, pending sends."""

from __future__ import annotations

import uuid
from datetime import timedelta

from shared.enums import MessageDirection, MessageStatus, TicketStatus
from shared.protocol.events import (
    MESSAGE_NEW,
    MESSAGE_STATUS,
    TICKET_UPDATE,
    TYPING,
    EventEnvelope,
)
from shared.protocol.tickets import ServiceWindow
from tests.zaptui.sample import CHAT_TICKET, COMPANY, DEPS, ME, NOW, busy_inbox, message
from zaptui.model import Inbox, Pending, WindowState


def ev(kind: str, seq: int | None = None, **data: object) -> EventEnvelope:
    return EventEnvelope(seq=seq, type=kind, company_id=COMPANY, data=data)


def test_a_message_seen_twice_is_shown_once() -> None:
    inbox = busy_inbox()
    chat = inbox.chats[CHAT_TICKET]
    before = len(chat.items)
    mid = uuid.uuid4()
    new = ev(
        MESSAGE_NEW,
        1,
        id=str(mid),
        ticket_id=str(CHAT_TICKET),
        direction=0,
        type=0,
        status=int(MessageStatus.RECEIVED),
        body="oi de novo",
    )
    assert inbox.apply(new).chats == {CHAT_TICKET}
    assert not inbox.apply(new).chats  # replayed after a reconnect: nothing changes
    assert len(chat.items) == before + 1
    # The same message in a REST page (older=False) merges too.
    page = [message(99, 0, "oi de novo", inbound=True)]
    page[0] = page[0].model_copy(update={"id": mid})
    assert inbox.put_messages(CHAT_TICKET, page, older=False) == 0
    assert [i.body for i in chat.items].count("oi de novo") == 1


def test_status_only_moves_forward() -> None:
    inbox = busy_inbox()
    chat = inbox.chats[CHAT_TICKET]
    key = str(uuid.UUID(int=9009))  # "Já está disponível!", DELIVERED
    tid = str(CHAT_TICKET)
    inbox.apply(ev(MESSAGE_STATUS, 2, id=key, ticket_id=tid, status=int(MessageStatus.SENT)))
    assert chat.by_key[key].status == MessageStatus.DELIVERED  # late SENT ignored
    inbox.apply(ev(MESSAGE_STATUS, 3, id=key, ticket_id=tid, status=int(MessageStatus.READ)))
    assert chat.by_key[key].status == MessageStatus.READ
    inbox.apply(ev(MESSAGE_STATUS, 4, id=key, ticket_id=tid, status=int(MessageStatus.FAILED)))
    assert chat.by_key[key].status == MessageStatus.READ  # no failure after delivery


def test_pending_is_replaced_by_the_real_message() -> None:
    inbox = busy_inbox()
    p = Pending(key="k2", ticket_id=CHAT_TICKET, body="oi", created_at=NOW)
    inbox.add_pending(p)
    chat = inbox.chats[CHAT_TICKET]
    assert chat.by_key["pending:k2"].pending
    sent = message(77, 0, "oi", author=ME)
    inbox.settle_pending("k2", sent)
    assert "pending:k2" not in chat.by_key
    assert not chat.by_key[str(sent.id)].pending
    assert "k2" not in inbox.pending


def test_ticket_updates_move_rows_between_views_and_counts() -> None:
    inbox = busy_inbox()
    queue = inbox.sorted_rows("queue", None)
    assert all(r.ticket.status == TicketStatus.PENDING for r in queue)
    # Waiting first: the most urgent, then the longest waiting.
    assert [int(r.ticket.priority) for r in queue][:2] == [3, 2]
    first = queue[0]
    counts = inbox.counts()
    waiting = counts[None].waiting
    change = inbox.apply(
        ev(
            TICKET_UPDATE,
            5,
            id=str(first.id),
            status=int(TicketStatus.OPEN),
            assignee_id=str(ME),
            department_id=str(first.ticket.department.id),  # type: ignore[union-attr]
            action="accept",
            at=(NOW + timedelta(seconds=1)).isoformat(),
        )
    )
    assert first.id in change.tickets
    assert inbox.counts()[None].waiting == waiting - 1
    assert first.id in {r.id for r in inbox.sorted_rows("mine", None)}


def test_an_unknown_ticket_is_fetched_and_a_transfer_in_notifies() -> None:
    inbox = busy_inbox()
    unknown = uuid.uuid4()
    assert inbox.apply(ev(TICKET_UPDATE, 6, id=str(unknown), status=0)).fetch == {unknown}
    # A ticket moved from a department the agent does not serve into one it does.
    row = next(r for r in inbox.rows.values() if r.ticket.status == TicketStatus.PENDING)
    inbox.rows[row.id].ticket = row.ticket.model_copy(
        update={
            "department": row.ticket.department.model_copy(  # type: ignore[union-attr]
                update={"id": DEPS["Financeiro"], "name": "Financeiro"}
            )
        }
    )
    change = inbox.apply(
        ev(
            TICKET_UPDATE,
            7,
            id=str(row.id),
            status=0,
            department_id=str(DEPS["Laboratório"]),
            action="transfer",
        )
    )
    assert change.notify and change.notify[0][0] == "notify.new_ticket"


def test_inbound_on_my_ticket_updates_preview_and_notifies() -> None:
    inbox = busy_inbox()
    mine = next(r for r in inbox.rows.values() if r.ticket.assignee and r.ticket.assignee.id == ME)
    change = inbox.apply(
        ev(
            MESSAGE_NEW,
            8,
            id=str(uuid.uuid4()),
            ticket_id=str(mine.id),
            direction=int(MessageDirection.INBOUND),
            type=0,
            status=6,
            body="Alô?",
        )
    )
    assert mine.preview == "Alô?" and mine.preview_inbound
    assert change.notify[0][0] == "notify.message"


def test_agents_see_their_departments_supervisors_all() -> None:
    inbox = busy_inbox()
    assert {d.name for d in inbox.my_departments()} == {"Laboratório", "Comercial"}
    boss = Inbox(inbox.me.model_copy(update={"role": 1}))
    boss.set_departments(list(inbox.departments.values()))
    assert len(boss.my_departments()) == 4


def test_cloud_window_state_is_kept_across_list_copies_and_refetched_on_inbound() -> None:
    inbox = busy_inbox()
    row = inbox.rows[CHAT_TICKET]
    assert row.window_state(NOW) is None  # not known to be a Cloud API ticket
    last = NOW - timedelta(hours=23, minutes=15)
    window = ServiceWindow(open=True, last_inbound_at=last, expires_at=last + timedelta(hours=24))
    inbox.put_ticket(row.ticket.model_copy(update={"service_window": window}))
    assert row.window_state(NOW) == (WindowState.CLOSING, timedelta(minutes=45))
    earlier = NOW - timedelta(hours=3)
    assert row.window_state(earlier) == (WindowState.OPEN, timedelta(hours=3, minutes=45))
    assert row.window_state(NOW + timedelta(hours=1)) == (WindowState.CLOSED, timedelta(0))
    # A list page or an event copy carries no window: the one known stays.
    inbox.put_ticket(row.ticket.model_copy(update={"service_window": None}))
    assert row.window == window
    never = ServiceWindow(open=False, last_inbound_at=None, expires_at=None)
    inbox.put_ticket(row.ticket.model_copy(update={"service_window": never}))
    assert row.window_state(NOW) == (WindowState.CLOSED, timedelta(0))
    # The customer writes: the window moved, so the ticket is fetched again.
    change = inbox.apply(
        ev(
            MESSAGE_NEW,
            9,
            id=str(uuid.uuid4()),
            ticket_id=str(CHAT_TICKET),
            direction=int(MessageDirection.INBOUND),
            type=0,
            status=6,
            body="Oi de novo",
        )
    )
    assert CHAT_TICKET in change.fetch


def test_customer_typing_and_recording_from_the_stream() -> None:
    inbox = busy_inbox()
    row = inbox.rows[CHAT_TICKET]
    data = {"ticket_id": str(CHAT_TICKET), "name": "Maria Souza", "customer": True}
    inbox.apply(ev(TYPING, None, **data, typing=True, recording=True))
    assert (row.typing, row.recording) == ("Maria Souza", True)
    inbox.apply(ev(TYPING, None, **data, typing=True))
    assert (row.typing, row.recording) == ("Maria Souza", False)
    inbox.apply(ev(TYPING, None, **data, typing=False))
    assert (row.typing, row.recording) == (None, False)
