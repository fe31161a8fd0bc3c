"""shared.client against the real daemon (SQLite and PostgreSQL): auth, CRUD, pagination,
error mapping from real routes, token refresh and the realtime stream."""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shared.client import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Subscription,
    Unauthorized,
    Unavailable,
    ValidationError,
    ZapClient,
)
from shared.enums import Engine, LogLevel, Priority, Role, SessionStatus, TicketStatus
from shared.errors import CloseCode
from shared.protocol.auth import ApiTokenCreate, TokenPair
from shared.protocol.catalog import (
    CategoryCreate,
    CategoryUpdate,
    QuickReplyCreate,
    QuickReplyUpdate,
    TagCreate,
    TagUpdate,
)
from shared.protocol.clients import ClientCreate, ClientUpdate
from shared.protocol.companies import CompanyCreate, CompanyUpdate
from shared.protocol.departments import DepartmentCreate, DepartmentUpdate
from shared.protocol.events import DEPARTMENT_UPDATE, EventEnvelope
from shared.protocol.messages import MessageSend
from shared.protocol.sessions import SandboxInbound, SessionCreate, SessionUpdate
from shared.protocol.tickets import TicketAssign, TicketClose, TicketTransfer, TicketUpdate
from shared.protocol.users import UserCreate, UserUpdate
from tests.zapd.api import seed
from tests.zapd.api.conftest import PASSWORD, Live, Tenant, new_cnpj
from zapd.db.models import Company
from zapd.services.people import auth


@pytest.fixture
async def zap(live: Live) -> AsyncIterator[Any]:
    """Open ZapClients on the live daemon; all are closed afterwards."""
    opened: list[ZapClient] = []

    async def factory(email: str | None = None, **kw: Any) -> ZapClient:
        client = ZapClient(live.url, **kw)
        opened.append(client)
        if email is not None:
            await client.login(email, PASSWORD)
        return client

    yield factory
    for client in opened:
        await client.aclose()


async def next_event(sub: Subscription, limit: float = 10) -> EventEnvelope:
    """Read one event."""
    return await asyncio.wait_for(anext(sub), limit)


async def test_login_me_refresh_logout(live: Live, zap: Any) -> None:
    t = await live.tenant()
    seen: list[TokenPair] = []
    client: ZapClient = await zap(on_tokens=seen.append)
    pair = await client.login(t.emails["supervisor"], PASSWORD)
    assert client.access_token == pair.access_token and seen == [pair]
    me = await client.me()
    assert me.id == t.users["supervisor"] and me.role == Role.SUPERVISOR
    assert me.company_id == t.company_id and not me.is_global_admin
    new = await client.refresh()
    assert new.refresh_token != pair.refresh_token and seen == [pair, new]
    assert (await client.me()).email == t.emails["supervisor"]
    assert (await client.healthz()) == {"status": "ok"}
    try:  # the test schema comes from create_all, not migrations: zapd says so with a 503
        assert (await client.readyz())["status"] == "ready"
    except Unavailable as exc:
        assert exc.status == 503 and exc.code == "ERR_UNAVAILABLE" and "upgrade" in exc.message
    await client.logout()
    assert client.access_token is None
    stale: ZapClient = await zap(token=new.access_token)
    with pytest.raises(Unauthorized) as caught:
        await stale.me()
    assert caught.value.code == "ERR_TOKEN_REVOKED" and caught.value.status == 401


async def test_bad_credentials_and_throttle_map_to_typed_errors(live: Live, zap: Any) -> None:
    t = await live.tenant()
    client: ZapClient = await zap()
    for _ in range(5):
        with pytest.raises(Unauthorized) as caught:
            await client.login(t.emails["agent"], "wrong-password")
        assert caught.value.code == "ERR_BAD_CREDENTIALS"
    with pytest.raises(RateLimited) as limited:
        await client.login(t.emails["agent"], PASSWORD)
    assert limited.value.retry_after is not None and 1 <= limited.value.retry_after <= 60
    assert limited.value.code == "ERR_RATE_LIMITED" and client.access_token is None
    # Bad input is the daemon's 422, not a local exception.
    with pytest.raises(ValidationError):
        await client.login("x", "")


async def test_expired_access_token_is_refreshed_transparently(
    live: Live, zap: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = await live.tenant()
    ttl = live.kernel.settings.access_token_ttl
    past = datetime.now(UTC) - timedelta(seconds=ttl + 60)
    monkeypatch.setattr(auth, "_now", lambda: past)  # the pair is minted already expired
    seen: list[TokenPair] = []
    client: ZapClient = await zap(t.emails["agent"], on_tokens=seen.append)
    monkeypatch.undo()
    expired = client.access_token
    me = await client.me()  # 401 ERR_TOKEN_EXPIRED, refresh, retry
    assert me.id == t.users["agent"]
    assert len(seen) == 2 and client.access_token == seen[1].access_token != expired


async def test_departments_crud_and_error_mapping(live: Live, zap: Any) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    admin: ZapClient = await zap(t.emails["admin"])
    agent: ZapClient = await zap(t.emails["agent"])
    dep = await admin.create_department(
        DepartmentCreate(name="Financeiro", keywords=["boleto"], response_timeout_seconds=600)
    )
    assert dep.slug == "financeiro" and dep.company_id == t.company_id
    assert (await agent.get_department(dep.id)) == dep
    names = [d.name for d in await agent.list_departments()]
    assert names == ["Laboratório", "Comercial", "Financeiro"]
    updated = await admin.update_department(dep.id, DepartmentUpdate(greeting="Olá!"))
    assert updated.greeting == "Olá!" and updated.keywords == ["boleto"]  # untouched stays
    with pytest.raises(Forbidden) as forbidden:
        await agent.create_department(DepartmentCreate(name="X"))
    assert forbidden.value.status == 403 and forbidden.value.code == "ERR_FORBIDDEN"
    with pytest.raises(Conflict) as conflict:
        await admin.create_department(DepartmentCreate(name="Laboratório"))
    assert conflict.value.status == 409 and conflict.value.message
    # Bypass local validation to see the daemon's own 422 come back typed.
    with pytest.raises(ValidationError) as invalid:
        await admin.create_department(DepartmentCreate.model_construct(name=""))
    assert invalid.value.status == 422 and invalid.value.details
    assert invalid.value.details[0]["loc"][-1] == "name"
    # Another company's department is simply not there.
    with pytest.raises(NotFound):
        await admin.get_department(other.lab_id)
    with pytest.raises(NotFound):
        await admin.update_department(other.lab_id, DepartmentUpdate(name="Mine"))
    await admin.delete_department(dep.id)
    with pytest.raises(NotFound) as gone:
        await admin.get_department(dep.id)
    assert gone.value.code == "ERR_NOT_FOUND"
    # The global admin names the company.
    root: ZapClient = await zap("root@zap.local")
    made = await root.create_department(DepartmentCreate(name="Ouvidoria", company_id=t.company_id))
    assert made.company_id == t.company_id
    listed = await root.list_departments(company_id=t.company_id)
    assert "Ouvidoria" in [d.name for d in listed]


async def test_api_tokens_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    created = await admin.create_api_token(ApiTokenCreate(name="script", role=Role.SUPERVISOR))
    bot: ZapClient = await zap(token=created.token)
    assert (await bot.me()).via_api_token is True
    assert [x.id for x in await admin.list_api_tokens()] == [created.id]
    revoked = await admin.revoke_api_token(created.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthorized):
        await bot.me()
    with pytest.raises(NotFound):
        await admin.revoke_api_token(uuid.uuid4())


async def test_iterate_walks_every_page_of_users(live: Live, zap: Any) -> None:
    t = await live.tenant()
    await live.tenant("Other")  # its users must not show up
    admin: ZapClient = await zap(t.emails["admin"])
    first = await admin.list_users(limit=1, order="asc")
    assert len(first.items) == 1 and first.next_cursor
    emails = [u.email async for u in admin.iterate(admin.list_users, limit=1, order="asc")]
    assert emails == [t.emails[k] for k in ("admin", "supervisor", "agent", "agent2")]
    agents = [u.email async for u in admin.iterate(admin.list_users, role=Role.AGENT, limit=1)]
    assert sorted(agents) == sorted([t.emails["agent"], t.emails["agent2"]])


async def _wait_connected(sub: Subscription) -> None:
    # The daemon subscribes the socket to the hub right after accepting it; give the
    # handshake a moment so an event committed now is live rather than replayed.
    for _ in range(100):
        if sub.connected:
            return
        await asyncio.sleep(0.01)


async def test_subscribe_receives_department_events_and_resumes(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    supervisor: ZapClient = await zap(t.emails["supervisor"])
    async with supervisor.subscribe(backoff_initial=0.05) as sub:
        await _wait_connected(sub)
        await admin.update_department(t.lab_id, DepartmentUpdate(menu_order=7))
        ev = await next_event(sub)
        assert ev.type == DEPARTMENT_UPDATE and ev.company_id == t.company_id
        assert ev.data == {"id": str(t.lab_id), "action": "update"} and ev.seq == 1
        # The daemon drops the socket (slow consumer); changes made meanwhile arrive
        # after the automatic reconnect, once each, in order.
        live.daemon.hub.close_user(t.users["supervisor"], CloseCode.SLOW_CONSUMER, "test")
        await admin.update_department(t.sales_id, DepartmentUpdate(menu_order=8))
        await admin.delete_department(t.sales_id)
        ev2, ev3 = await next_event(sub), await next_event(sub)
        assert (ev2.seq, ev2.data["action"]) == (2, "update")
        assert (ev3.seq, ev3.data["action"]) == (3, "delete")
        assert sub.connects == 2 and sub.last_seq == 3
        # Credentials revoked server-side (4001): one refresh, then the stream goes on.
        before = supervisor.refresh_token
        live.daemon.hub.close_user(t.users["supervisor"], CloseCode.UNAUTHORIZED, "test")
        await asyncio.sleep(0.2)
        await admin.update_department(t.lab_id, DepartmentUpdate(greeting="Oi"))
        ev4 = await next_event(sub)
        assert ev4.seq == 4 and sub.connects == 3
        # The refresh happened (the access JWT may come out identical within one second).
        assert supervisor.refresh_token != before


async def test_subscribe_since_replays_and_bad_token_is_unauthorized(live: Live, zap: Any) -> None:
    t: Tenant = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    for order in (5, 6, 7):
        await admin.update_department(t.lab_id, DepartmentUpdate(menu_order=order))
    async with admin.subscribe(since=1) as sub:
        assert [(await next_event(sub)).seq for _ in range(2)] == [2, 3]
    bad: ZapClient = await zap(token="not-a-token")
    with pytest.raises(Unauthorized):
        async with bad.subscribe():
            pass


# ------------------------------------------------------------------ the other nouns


async def test_companies_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    root: ZapClient = await zap("root@zap.local")
    admin: ZapClient = await zap(t.emails["admin"])
    cnpj = new_cnpj()
    made = await root.create_company(CompanyCreate(name="Nova Ltda", cnpj=cnpj))
    assert made.cnpj == cnpj and made.active
    with pytest.raises(Conflict) as taken:
        await root.create_company(CompanyCreate(name="Outra", cnpj=cnpj))
    assert taken.value.code == "ERR_CNPJ_TAKEN"
    assert (await root.get_company(made.id)).name == "Nova Ltda"
    changed = await root.update_company(made.id, CompanyUpdate(name="Nova S.A."))
    assert changed.name == "Nova S.A." and changed.cnpj == cnpj
    ids = [c.id async for c in root.iterate(root.list_companies, limit=1)]
    assert {made.id, t.company_id} <= set(ids) and len(ids) == len(set(ids))
    own = await admin.list_companies()
    assert [c.id for c in own.items] == [t.company_id]
    with pytest.raises(NotFound):
        await admin.get_company(made.id)
    with pytest.raises(Forbidden):
        await admin.create_company(CompanyCreate(name="X", cnpj=new_cnpj()))
    await root.delete_company(made.id)
    with pytest.raises(NotFound):
        await root.get_company(made.id)


async def test_users_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    agent: ZapClient = await zap(t.emails["agent"])
    email = f"nova.{uuid.uuid4().hex[:8]}@acme.com.br"
    body = UserCreate(
        email=email, name="Nova", password=PASSWORD, role=Role.AGENT, department_ids=[t.lab_id]
    )
    user = await admin.create_user(body)
    assert user.email == email and user.department_ids == [t.lab_id]
    with pytest.raises(Conflict):
        await admin.create_user(body)
    with pytest.raises(Forbidden):
        await agent.create_user(body.model_copy(update={"email": "x" + email}))
    assert (await admin.update_user(user.id, UserUpdate(name="Nova Silva"))).name == "Nova Silva"
    moved = await admin.set_user_departments(user.id, [t.sales_id])
    assert moved.department_ids == [t.sales_id]
    assert (await admin.get_user(user.id)).department_ids == [t.sales_id]
    assert (await admin.disable_user(user.id)).active is False
    assert (await admin.enable_user(user.id)).active is True
    reset = await admin.reset_password(user.id)
    assert reset.generated and reset.password
    fresh: ZapClient = await zap()
    await fresh.login(email, reset.password)
    assert (await fresh.me()).id == user.id
    chosen = await admin.reset_password(user.id, "another-pass-1")
    assert chosen.generated is False and chosen.password is None
    with pytest.raises(NotFound):
        await admin.get_user(uuid.uuid4())


async def test_catalog_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    supervisor: ZapClient = await zap(t.emails["supervisor"])
    agent: ZapClient = await zap(t.emails["agent"])
    cat = await admin.create_category(CategoryCreate(name="Resolvido"))
    assert [c.id for c in await agent.list_categories()] == [cat.id]
    off = await admin.update_category(cat.id, CategoryUpdate(active=False))
    assert off.active is False and (await agent.get_category(cat.id)).active is False
    assert await agent.list_categories(active=True) == []
    with pytest.raises(Forbidden):
        await agent.create_category(CategoryCreate(name="Nope"))
    await admin.delete_category(cat.id)
    with pytest.raises(NotFound):
        await agent.get_category(cat.id)

    tag = await supervisor.create_tag(TagCreate(name="vip", color="#FF0000"))
    assert tag.color == "#ff0000"
    with pytest.raises(Conflict):
        await supervisor.create_tag(TagCreate(name="vip"))
    assert (await supervisor.update_tag(tag.id, TagUpdate(name="VIP"))).name == "VIP"
    assert [x.name for x in await agent.list_tags()] == ["VIP"]
    assert (await agent.get_tag(tag.id)).id == tag.id
    with pytest.raises(Forbidden):
        await agent.delete_tag(tag.id)
    await supervisor.delete_tag(tag.id)
    assert await agent.list_tags() == []

    reply = await admin.create_quick_reply(
        QuickReplyCreate(shortcut="/ola", body="Olá! Como posso ajudar?")
    )
    assert reply.shortcut == "ola"
    assert [r.id for r in await agent.list_quick_replies(q="ol")] == [reply.id]
    assert await agent.list_quick_replies(q="zz") == []
    lab_only = await admin.update_quick_reply(reply.id, QuickReplyUpdate(department_id=t.lab_id))
    assert lab_only.department_id == t.lab_id
    assert (await agent.get_quick_reply(reply.id)).body == "Olá! Como posso ajudar?"
    await admin.delete_quick_reply(reply.id)
    with pytest.raises(NotFound):
        await agent.get_quick_reply(reply.id)


async def test_clients_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    supervisor: ZapClient = await zap(t.emails["supervisor"])
    agent: ZapClient = await zap(t.emails["agent"])
    tag = await supervisor.create_tag(TagCreate(name="vip"))
    maria = await agent.create_client(ClientCreate(phone="+55 11 98765-4321", name="Maria"))
    assert maria.phone == "+5511987654321"
    with pytest.raises(Conflict):
        await agent.create_client(ClientCreate(phone="11987654321", name="Outra"))
    await agent.create_client(ClientCreate(phone="+55 21 99876-5432", name="João"))
    tagged = await agent.set_client_tags(maria.id, [tag.id])
    assert tagged.tag_ids == [tag.id]
    assert (await agent.get_client(maria.id)).tag_ids == [tag.id]
    found = await agent.list_clients(q="Maria")
    assert [c.id for c in found.items] == [maria.id]
    assert [c.id for c in (await agent.list_clients(tag_id=tag.id)).items] == [maria.id]
    names = [c.name async for c in agent.iterate(agent.list_clients, limit=1, order="asc")]
    assert names == ["Maria", "João"]
    with pytest.raises(Forbidden):
        await agent.update_client(maria.id, ClientUpdate(blocked=True))
    blocked = await supervisor.update_client(maria.id, ClientUpdate(blocked=True))
    assert blocked.blocked is True
    assert [c.id for c in (await agent.list_clients(blocked=True)).items] == [maria.id]


async def test_sessions_tickets_and_audit_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    agent: ZapClient = await zap(t.emails["agent"])
    made = await admin.create_session(SessionCreate(name="Principal", engine=Engine.SANDBOX))
    assert made.engine == Engine.SANDBOX and made.company_id == t.company_id
    assert [s.id for s in await agent.list_sessions()] == [made.id]
    assert (await admin.get_session(made.id)).name == "Principal"
    renamed = await admin.update_session(made.id, SessionUpdate(name="Central"))
    assert renamed.name == "Central"
    logs = await admin.session_logs(made.id, level=LogLevel.INFO)
    assert isinstance(logs.items, list)
    with pytest.raises(Forbidden):
        await agent.session_logs(made.id)
    await admin.delete_session(made.id)
    with pytest.raises(NotFound):
        await admin.get_session(made.id)

    page = await agent.list_tickets(status=[TicketStatus.PENDING, TicketStatus.OPEN])
    assert page.items == [] and page.next_cursor is None
    assert (await agent.list_tickets(status=TicketStatus.CLOSED, assignee_id="me")).items == []
    with pytest.raises(NotFound):
        await agent.get_ticket(uuid.uuid4())
    with pytest.raises(NotFound):
        await agent.list_ticket_messages(uuid.uuid4())

    await admin.update_department(t.lab_id, DepartmentUpdate(menu_order=5))
    rows = [a async for a in admin.iterate(admin.list_audit, limit=1)]
    actions = [a.action for a in rows]
    assert {"session.create", "session.delete", "department.update"} <= set(actions)
    dept = await admin.list_audit(action="department.*")
    assert [a.action for a in dept.items] == ["department.update"]
    assert dept.items[0].entity_id == t.lab_id
    with pytest.raises(Forbidden):
        await agent.list_audit()
    with pytest.raises(Unauthorized):  # a login token is not the scrape token
        await admin.prometheus_metrics()
    assert "zapd_" in await admin.prometheus_metrics(live.daemon.metrics_token)


async def test_tickets_messages_and_typing_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    session_id = await seed.session(live, t.company_id)
    maria = await seed.client(live, t.company_id, "+5511987650001", name="Maria")
    joao = await seed.client(live, t.company_id, "+5511987650002", name="João")
    lab = await seed.ticket(live, t.company_id, session_id, maria, department_id=t.lab_id)
    sales = await seed.ticket(live, t.company_id, session_id, joao, department_id=t.sales_id)
    ids = await seed.messages(live, lab, 5)
    agent: ZapClient = await zap(t.emails["agent"])
    supervisor: ZapClient = await zap(t.emails["supervisor"])

    assert [x.id for x in (await agent.list_tickets()).items] == [lab]  # lab agent only
    both = [x.id async for x in supervisor.iterate(supervisor.list_tickets, limit=1)]
    assert both == [sales, lab]  # newest first
    ticket = await agent.get_ticket(lab)
    assert ticket.client.name == "Maria" and ticket.department is not None
    assert ticket.department.id == t.lab_id
    with pytest.raises(NotFound):
        await agent.get_ticket(sales)  # another department: not there for this agent
    pages = [m.id async for m in agent.iterate(agent.list_ticket_messages, lab, order="asc")]
    assert pages == ids
    first = await agent.list_ticket_messages(lab, limit=2, order="asc")
    assert [m.body for m in first.items] == ["mensagem 0", "mensagem 1"] and first.next_cursor

    # Typing: ephemeral (seq None), delivered to the others who may see the ticket.
    async with live.kernel.read() as db:
        head = await db.scalar(select(Company.last_event_seq).where(Company.id == t.company_id))
    async with supervisor.subscribe() as watching, agent.subscribe() as typing:
        await _wait_connected(watching)
        await _wait_connected(typing)
        await asyncio.sleep(0.1)  # both registered with the hub
        assert await typing.send_typing(lab) is True
        ev = await next_event(watching)
        assert ev.seq is None and ev.type == "typing"
        assert ev.data["ticket_id"] == str(lab) and ev.data["typing"] is True
        assert ev.data["user_id"] == str(t.users["agent"])
        # The hello set the resume point to the head at connect; typing did not move it.
        assert watching.last_seq == head


def tiny_png() -> bytes:
    """Return a valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def eventually(check: Any, within: float = 15.0) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_whole_conversation_through_the_client(live: Live, zap: Any) -> None:
    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    supervisor: ZapClient = await zap(t.emails["supervisor"])
    seller: ZapClient = await zap(t.emails["agent2"])  # works in Comercial

    session = await admin.create_session(SessionCreate(name="Atendimento", engine=Engine.SANDBOX))
    assert (await admin.start_session(session.id)) == {"status": "starting"}
    qr = await eventually(
        lambda: _qr_shown(admin, session.id),
    )
    assert qr.sandbox is True and qr.status == SessionStatus.WAITING_QR
    assert await admin.sandbox_scan(session.id, "+55 11 3000-1000") == "+551130001000"
    await eventually(lambda: _status_is(admin, session.id, SessionStatus.CONNECTED))

    customer = "+5511912345678"
    async with seller.subscribe() as stream:
        await _wait_connected(stream)
        said = await admin.sandbox_inbound(
            session.id, SandboxInbound(phone=customer, text="Oi", name="Maria")
        )
        assert said.wa_message_id
        await admin.sandbox_inbound(session.id, SandboxInbound(phone=customer, text="2"))
        page = await eventually(lambda: _tickets_of(seller))
        ticket = page.items[0]
        assert ticket.department is not None and ticket.department.id == t.sales_id
        # The stream told the seller about it.
        ev = await next_event(stream)
        assert ev.seq is not None and ev.type.startswith(("ticket.", "message."))

        taken = await seller.accept_ticket(ticket.id)
        assert taken.status == TicketStatus.OPEN and taken.assignee is not None
        with pytest.raises(Conflict):
            await (await zap(t.emails["supervisor"])).accept_ticket(ticket.id)
        key = f"reply-{uuid.uuid4()}"
        body = MessageSend(ticket_id=ticket.id, body="Olá Maria, em que posso ajudar?")
        sent = await seller.send_message(body, idempotency_key=key)
        again = await seller.send_message(body, idempotency_key=key)
        assert again.id == sent.id  # replayed, not queued twice
        note = await seller.send_message(
            MessageSend(ticket_id=ticket.id, body="cliente VIP", note=True)
        )
        assert note.is_note is True
        await eventually(lambda: _delivered(admin, session.id, customer, "em que posso ajudar"))
        read = await seller.mark_ticket_read(ticket.id)
        assert read.unread_count == 0
        urgent = await supervisor.update_ticket(ticket.id, TicketUpdate(priority=Priority.URGENT))
        assert urgent.priority == Priority.URGENT
        moved = await supervisor.transfer_ticket(
            ticket.id, TicketTransfer(department_id=t.lab_id, notify_customer=False)
        )
        assert moved.department is not None and moved.department.id == t.lab_id
        given = await supervisor.assign_ticket(
            ticket.id, TicketAssign(user_id=t.users["agent"], force=True)
        )
        assert given.assignee is not None and given.assignee.id == t.users["agent"]
        closed = await supervisor.close_ticket(ticket.id, TicketClose(farewell=False))
        assert closed.status == TicketStatus.CLOSED
        reopened = await supervisor.reopen_ticket(ticket.id)
        assert reopened.status != TicketStatus.CLOSED

    box = await admin.list_outbox(session_id=session.id)
    assert box.items and all(o.session_id == session.id for o in box.items)
    assert (await admin.get_outbox(box.items[0].id)).id == box.items[0].id
    with pytest.raises(NotFound):
        await admin.retry_outbox(uuid.uuid4())
    with pytest.raises(Forbidden):
        await seller.list_outbox()

    summary = await supervisor.metrics_summary()
    assert summary.tickets.total == 1 and summary.range.timezone == "America/Sao_Paulo"
    since = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    report = await supervisor.metrics_tickets(since=since)
    assert report.range.since == since and report.total == 1
    assert (
        await supervisor.metrics_tickets(since=since, until=since + timedelta(hours=1))
    ).total == 0
    assert (await supervisor.metrics_response_times()).range is not None
    assert (await supervisor.metrics_volume(department_id=t.lab_id)).range.department_id == t.lab_id
    assert isinstance((await supervisor.metrics_agents()).agents, list)
    assert isinstance((await supervisor.metrics_queues()).queues, list)
    with pytest.raises(Forbidden):
        await seller.metrics_summary()

    png = tiny_png()
    stored = await seller.upload_media(png, "pixel.png", "image/png")
    assert stored.mime == "image/png" and stored.size == len(png)
    assert (await seller.media_meta(stored.id)).sha256 == stored.sha256
    assert await seller.download_media(stored.id) == png
    with pytest.raises(NotFound):
        await seller.media_meta(uuid.uuid4())

    assert (await admin.stop_session(session.id)) == {"status": "stopped"}
    assert (await admin.logout_session(session.id)) == {"status": "logged_out"}
    with pytest.raises(Forbidden):
        await seller.start_session(session.id)


async def _qr_shown(client: ZapClient, session_id: uuid.UUID) -> Any:
    qr = await client.session_qr(session_id)
    return qr if qr.qr else None


async def _status_is(client: ZapClient, session_id: uuid.UUID, status: SessionStatus) -> bool:
    return (await client.get_session(session_id)).status == status


async def _delivered(client: ZapClient, session_id: uuid.UUID, phone: str, text: str) -> bool:
    return any(text in (d.body or "") for d in await client.sandbox_inbox(session_id, phone))


async def _tickets_of(client: ZapClient) -> Any:
    page = await client.list_tickets()
    return page if page.items else None


async def test_an_upload_over_the_limit_is_a_413_the_client_reads(live: Live, zap: Any) -> None:
    # 20 MB against the default 16 MiB media ceiling: zapd refuses it before reading it,
    # yet the client still sending must read the 413, not a reset ("cannot reach zapd").
    from shared.errors import ErrorCode

    t = await live.tenant()
    admin: ZapClient = await zap(t.emails["admin"])
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (20_000_000 - 8)
    for _ in range(2):  # and again on the same client: nothing is left broken
        with pytest.raises(PayloadTooLarge) as caught:
            await admin.upload_media(big, "grande.png", "image/png")
        assert caught.value.status == 413
        assert caught.value.code == ErrorCode.PAYLOAD_TOO_LARGE
        assert str(16 << 20) in caught.value.message or "limit" in caught.value.message
    assert (await admin.me()).email == t.emails["admin"]
