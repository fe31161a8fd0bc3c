"""WS /api/v1/ws over real sockets: handshake auth, visibility, exact resume, slow
consumers, token invalidation, typing, ping and bad frames, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response as WsResponse

from shared.enums import Role
from shared.errors import CloseCode
from tests.zapd.api.conftest import PASSWORD, Live, Tenant, serving
from tests.zapd.api.conftest import test_settings as daemon_settings
from zapd.db.models import Client, Event, Ticket, User
from zapd.kernel import events
from zapd.services.people import auth

TIMEOUT = 30.0  # generous: a 2-core CI box may be loaded; passing runs never wait it out


def token_of(client: httpx.AsyncClient) -> str:
    """Return the bearer token an httpx client of the fixture carries."""
    return str(client.headers["Authorization"]).split(" ", 1)[1]


@asynccontextmanager
async def ws(
    live: Live,
    token: str | None,
    since: int | str | None = None,
    *,
    in_query: bool = False,
    max_queue: int = 16,
) -> AsyncIterator[ClientConnection]:
    """Open a WebSocket on the daemon (token in the header, or in ?token=)."""
    params: dict[str, str] = {}
    if since is not None:
        params["since"] = str(since)
    headers: dict[str, str] = {}
    if token is not None:
        if in_query:
            params["token"] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
    url = live.ws_url + ("?" + str(httpx.QueryParams(params)) if params else "")
    async with connect(
        url,
        additional_headers=headers,
        open_timeout=TIMEOUT,
        close_timeout=2,
        max_size=2**20,
        max_queue=max_queue,
    ) as conn:
        yield conn


async def recv(conn: ClientConnection, within: float = TIMEOUT) -> dict[str, Any]:
    """Receive one JSON frame, skipping the connection's `hello` (see test_hello_...)."""
    while True:
        raw = await asyncio.wait_for(conn.recv(), within)
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("type") != "hello":
            return doc


async def test_hello_tells_where_the_stream_starts(live: Live) -> None:
    t = await live.tenant()
    await publish(live, t.company_id, count=3)
    async with ws(live, token_of(t.admin)) as conn:
        hello = json.loads(await asyncio.wait_for(conn.recv(), TIMEOUT))
        assert hello == {"type": "hello", "seqs": {str(t.company_id): 3}}
    # A client that dropped right after the hello resumes from there: nothing is lost.
    await publish(live, t.company_id, count=2)
    async with ws(live, token_of(t.admin), since=3) as conn:
        assert [(await recv(conn))["seq"] for _ in range(2)] == [4, 5]


async def recv_events(conn: ClientConnection, n: int) -> list[dict[str, Any]]:
    """Receive `n` frames."""
    return [await recv(conn) for _ in range(n)]


async def publish(
    live: Live,
    company_id: uuid.UUID,
    type_: str = "test.event",
    data: dict[str, Any] | None = None,
    *,
    department_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    count: int = 1,
) -> list[int]:
    """Publish `count` events in one transaction; return their seqs."""
    async with live.kernel.tx() as db:
        evs = [
            await events.publish(
                db,
                company_id,
                type_,
                {**(data or {}), "i": i},
                department_id=department_id,
                user_id=user_id,
            )
            for i in range(count)
        ]
    return [e.seq for e in evs]


async def event_seqs(live: Live, company_id: uuid.UUID) -> list[int]:
    """Return every seq of a company's events, in order."""
    async with live.kernel.read() as db:
        rows = await db.scalars(
            select(Event.seq).where(Event.company_id == company_id).order_by(Event.seq)
        )
        return list(rows.all())


async def wait_for(pred: Any, within: float = TIMEOUT) -> None:
    """Poll `pred()` until it is true."""
    deadline = asyncio.get_running_loop().time() + within
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- handshake


async def _rejected(live: Live, **kw: Any) -> WsResponse:
    with pytest.raises(InvalidStatus) as info:
        async with ws(live, **kw):
            pass
    return info.value.response


async def test_handshake_refuses_missing_bad_expired_and_revoked_tokens(live: Live) -> None:
    t = await live.tenant()
    secret = live.kernel.jwt_secret
    now = datetime.now(UTC)
    expired = jwt.encode(
        {
            "sub": str(t.users["agent"]),
            "cid": str(t.company_id),
            "tv": 0,
            "sid": str(uuid.uuid4()),
            "typ": "access",
            "iat": int((now - timedelta(hours=2)).timestamp()),
            "exp": int((now - timedelta(hours=1)).timestamp()),
        },
        secret,
        algorithm="HS256",
    )
    revoked_client, _ = await live.login(t.emails["agent2"])
    revoked = token_of(revoked_client)
    r = await revoked_client.post("/api/v1/auth/logout", json={})
    assert r.status_code == 204
    cases: list[dict[str, Any]] = [
        {"token": None},
        {"token": "garbage"},
        {"token": "garbage", "in_query": True},
        {"token": "zap_unknown"},
        {"token": expired},
        {"token": revoked},
        {"token": revoked, "in_query": True},
    ]
    before = live.daemon.hub.client_count
    for case in cases:
        resp = await _rejected(live, **case)
        assert resp.status_code == 401, case
        body = json.loads(resp.body)
        assert set(body) == {"error", "message"} and body["error"].startswith("ERR_"), body
        assert "Traceback" not in resp.body.decode()
    assert json.loads((await _rejected(live, token=expired)).body)["error"] == "ERR_TOKEN_EXPIRED"
    # A malformed Authorization header is refused too.
    with pytest.raises(InvalidStatus) as info:
        async with connect(live.ws_url, additional_headers={"Authorization": "Basic abc"}):
            pass
    assert info.value.response.status_code == 401
    assert live.daemon.hub.client_count == before  # nobody got subscribed


async def test_bad_since_is_refused_before_upgrade(live: Live) -> None:
    t = await live.tenant()
    token = token_of(t.admin)
    for since in ("-1", "abc", "1.5", "", "1e3", "99999999999999999999999", f"{t.company_id}:1"):
        resp = await _rejected(live, token=token, since=since)
        assert resp.status_code == 422, since
        assert json.loads(resp.body)["error"] == "ERR_VALIDATION"
    # The token may also come in the query string, for clients that cannot set headers.
    async with ws(live, token, since=0, in_query=True) as conn:
        await publish(live, t.company_id)
        assert (await recv(conn))["seq"] == 1


async def test_query_token_is_not_logged(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    t = await live.tenant()
    token = token_of(t.admin)
    with caplog.at_level(logging.INFO):
        async with ws(live, token, in_query=True) as conn:
            await conn.send(json.dumps({"type": "ping"}))
            assert (await recv(conn)) == {"type": "pong"}
        with pytest.raises(InvalidStatus):
            async with ws(live, "garbage-secret-token", in_query=True):
                pass
    server_records = [r for r in caplog.records if r.name.startswith("uvicorn")]
    text = "\n".join(r.getMessage() for r in server_records)
    assert "WebSocket /api/v1/ws?token=REDACTED" in text  # the server logged the handshakes...
    assert token not in text and "garbage-secret-token" not in text  # ...without the token
    # A refused handshake is not a server error.
    assert [r.getMessage() for r in server_records if r.levelno >= logging.ERROR] == []


# --------------------------------------------------------------------------- delivery


async def test_live_event_arrives_with_seq_and_type(live: Live) -> None:
    t = await live.tenant()
    await live.add_user(t.company_id, "admin2@acme.com.br", Role.ADMIN, "Admin 2")
    other_admin, _ = await live.login("admin2@acme.com.br")
    assert live.root is not None
    async with ws(live, token_of(t.admin)) as conn, ws(live, token_of(live.root)) as root:
        r = await other_admin.patch(f"/api/v1/departments/{t.lab_id}", json={"menu_order": 7})
        assert r.status_code == 200
        for c in (conn, root):
            ev = await recv(c)
            assert ev == {
                "seq": 1,
                "type": "department.update",
                "company_id": str(t.company_id),
                "data": {"id": str(t.lab_id), "action": "update"},
            }
        r = await other_admin.patch(f"/api/v1/departments/{t.sales_id}", json={"menu_order": 8})
        assert (await recv(conn))["seq"] == 2 and (await recv(root))["seq"] == 2


async def test_events_are_scoped_to_what_each_user_may_see(live: Live) -> None:
    t = await live.tenant("A")
    other = await live.tenant("B")
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "bot", "role": int(Role.AGENT)})
    assert r.status_code == 201, r.text
    bot_token = r.json()["token"]
    assert live.root is not None
    plan = [
        ("lab", {"department_id": t.lab_id}),
        ("sales", {"department_id": t.sales_id}),
        ("wide", {}),
        ("to-agent", {"department_id": t.sales_id, "user_id": t.users["agent"]}),
        ("to-agent2", {"user_id": t.users["agent2"]}),
    ]
    expected = {
        "agent": ["lab", "wide", "to-agent", "end"],
        "agent2": ["sales", "wide", "to-agent", "to-agent2", "end"],
        "supervisor": ["lab", "sales", "wide", "to-agent", "to-agent2", "end"],
        "admin": ["lab", "sales", "wide", "to-agent", "to-agent2", "end"],
        "bot": ["wide", "end"],
    }
    async with (
        ws(live, token_of(t.agent)) as agent,
        ws(live, token_of(t.clients["agent2"])) as agent2,
        ws(live, token_of(t.supervisor)) as supervisor,
        ws(live, token_of(t.admin)) as admin,
        ws(live, bot_token, in_query=True) as bot,
        ws(live, token_of(other.admin)) as foreign,
        ws(live, token_of(live.root)) as root,
    ):
        for name, hints in plan:
            await publish(
                live,
                t.company_id,
                "test.event",
                {"name": name},
                department_id=hints.get("department_id"),
                user_id=hints.get("user_id"),
            )
        await publish(live, other.company_id, "test.event", {"name": "foreign"})
        await publish(live, t.company_id, "test.event", {"name": "end"})
        await publish(live, other.company_id, "test.event", {"name": "foreign-end"})
        conns = {"agent": agent, "agent2": agent2, "supervisor": supervisor, "admin": admin}
        conns["bot"] = bot
        for who, conn in conns.items():
            got = [await recv(conn) for _ in expected[who]]
            assert [e["data"]["name"] for e in got] == expected[who], who
            assert all(e["company_id"] == str(t.company_id) for e in got)
            seqs = [e["seq"] for e in got]
            assert seqs == sorted(seqs) and seqs[-1] == 6
        # The other company sees only its own events, numbered on its own.
        got = [await recv(foreign) for _ in range(2)]
        assert [(e["seq"], e["data"]["name"]) for e in got] == [(1, "foreign"), (2, "foreign-end")]
        # The global admin sees every company.
        got = [await recv(root) for _ in range(8)]
        assert sorted(e["data"]["name"] for e in got) == sorted(
            [n for n, _ in plan] + ["foreign", "end", "foreign-end"]
        )
    # A replay applies the same rule (filtered in SQL).
    async with ws(live, token_of(t.agent), since=0) as agent:
        got = [await recv(agent) for _ in expected["agent"]]
        assert [e["data"]["name"] for e in got] == expected["agent"]
        await publish(live, t.company_id, "test.event", {"name": "after"})
        assert (await recv(agent))["data"]["name"] == "after"


# --------------------------------------------------------------------------- resume


async def _burst(live: Live, t: Tenant, total: int) -> None:
    """Publish `total` events from concurrent writers, in transactions of 1 to 3 events."""
    rng = random.Random(7)
    left = [total]
    deps = [t.lab_id, t.sales_id, None]

    async def writer() -> None:
        while left[0] > 0:
            n = min(left[0], rng.choice([1, 1, 2, 3]))
            left[0] -= n
            async with live.kernel.tx() as db:
                for _ in range(n):
                    await events.publish(
                        db, t.company_id, "burst", {}, department_id=rng.choice(deps)
                    )
            await asyncio.sleep(rng.random() * 0.004)

    await asyncio.gather(*(writer() for _ in range(4)))


async def _resume_until(
    live: Live, token: str, expect: int, rng: random.Random
) -> tuple[list[int], int]:
    """Read `expect` events, dropping the connection every few events and resuming."""
    got: list[int] = []
    reconnects = 0
    while len(got) < expect:
        since = got[-1] if got else 0
        # A deep client queue: closing with many unread frames must not stall the client.
        async with ws(live, token, since=since, max_queue=4096) as conn:
            for _ in range(rng.randint(15, 60)):
                ev = await recv(conn, within=20)
                assert ev["type"] == "burst"
                got.append(ev["seq"])
                if len(got) == expect:
                    break
        reconnects += 1
    return got, reconnects


async def test_resume_during_a_burst_loses_and_repeats_nothing(live: Live) -> None:
    t = await live.tenant()
    total = 300
    rng = random.Random(11)
    burst = asyncio.create_task(_burst(live, t, total))
    try:
        admin_seqs, reconnects = await _resume_until(live, token_of(t.admin), total, rng)
        await burst
    finally:
        burst.cancel()
    assert reconnects >= 4
    assert admin_seqs == await event_seqs(live, t.company_id) == list(range(1, total + 1))
    # The agent, resuming the same way afterwards, gets exactly its visible events.
    async with live.kernel.read() as db:
        rows = (
            await db.execute(
                select(Event.seq, Event.department_id)
                .where(Event.company_id == t.company_id)
                .order_by(Event.seq)
            )
        ).all()
    visible = [seq for seq, dep in rows if dep in (t.lab_id, None)]
    agent_seqs, _ = await _resume_until(live, token_of(t.agent), len(visible), rng)
    assert agent_seqs == visible


async def test_live_and_resume_interleave_with_a_concurrent_burst(live: Live) -> None:
    t = await live.tenant()
    total = 300
    rng = random.Random(5)
    async with ws(live, token_of(t.supervisor)) as steady:  # live only, connected throughout
        burst = asyncio.create_task(_burst(live, t, total))
        try:
            got, _ = await _resume_until(live, token_of(t.admin), total, rng)
            steady_seqs = [(await recv(steady, within=20))["seq"] for _ in range(total)]
            await burst
        finally:
            burst.cancel()
    assert got == steady_seqs == list(range(1, total + 1))


async def test_hooks_running_out_of_order_reach_the_socket_in_order(live: Live) -> None:
    t = await live.tenant()
    async with ws(live, token_of(t.agent)) as agent, ws(live, token_of(t.admin)) as admin:
        await publish(live, t.company_id)  # both feeds are past their start once it arrives
        assert (await recv(admin))["seq"] == (await recv(agent))["seq"] == 1
        # Commit without the after-commit fan-out, then fan out in reverse, as two
        # transactions finishing in the "wrong" order would.
        committed: list[Event] = []
        for dep in (t.lab_id, t.sales_id, t.lab_id):
            async with live.kernel.sessions() as db, db.begin():
                committed.append(await events.publish(db, t.company_id, "t", {}, department_id=dep))
        for ev in reversed(committed):
            live.daemon.hub.dispatch(ev)
            live.daemon.hub.dispatch(ev)  # and twice
            await asyncio.sleep(0.05)  # each drained on its own
        assert [e["seq"] for e in await recv_events(admin, 3)] == [2, 3, 4]
        assert [e["seq"] for e in await recv_events(agent, 2)] == [2, 4]
        seq = (await publish(live, t.company_id))[0]
        assert (await recv(admin))["seq"] == (await recv(agent))["seq"] == seq == 5
    assert live.daemon.hub.gap_fills == 2  # seq 4 came first: 2 and 3 were read from the log


async def test_since_absent_starts_after_the_current_head(live: Live) -> None:
    t = await live.tenant()
    await publish(live, t.company_id, count=5)
    async with ws(live, token_of(t.admin)) as conn:
        await publish(live, t.company_id, count=1)
        assert (await recv(conn))["seq"] == 6
    async with ws(live, token_of(t.admin), since=3) as conn:
        assert [e["seq"] for e in await recv_events(conn, 3)] == [4, 5, 6]
    async with ws(live, token_of(t.admin), since=1000) as conn:  # beyond the head: live
        await publish(live, t.company_id)
        assert (await recv(conn))["seq"] == 7


async def test_global_admin_resumes_per_company(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    await publish(live, a.company_id, count=4)
    await publish(live, b.company_id, count=2)
    assert live.root is not None
    async with ws(live, token_of(live.root), since=f"{a.company_id}:2,{b.company_id}:0") as c:
        got = {(e["company_id"], e["seq"]) for e in await recv_events(c, 4)}
        assert got == {
            (str(a.company_id), 3),
            (str(a.company_id), 4),
            (str(b.company_id), 1),
            (str(b.company_id), 2),
        }
    async with ws(live, token_of(live.root), since=3) as c:  # one seq: applies to each
        assert [(e["company_id"], e["seq"]) for e in await recv_events(c, 1)] == [
            (str(a.company_id), 4)
        ]
        await publish(live, b.company_id)
        assert (await recv(c))["seq"] == 3


# --------------------------------------------------------------------------- slow consumers


@pytest.fixture
async def small_live(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[Live]:
    """A daemon whose per-connection mailbox holds only 10 events."""
    async with serving(engine, backend, daemon_settings(tmp_path, ws_queue_size=10)) as lv:
        yield lv


async def test_slow_consumer_is_dropped_and_resumes(small_live: Live) -> None:
    live = small_live
    t = await live.tenant()
    async with ws(live, token_of(t.admin)) as slow, ws(live, token_of(t.supervisor)) as ok:
        assert live.daemon.hub.client_count == 2
        # One transaction of 100 events: the after-commit fan-out outruns any socket.
        await publish(live, t.company_id, count=100)
        got: list[int] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                got.append((await recv(slow))["seq"])
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.SLOW_CONSUMER
        assert "since" in info.value.rcvd.reason
        assert got == list(range(1, len(got) + 1)) and len(got) < 100
        assert live.daemon.hub.slow_consumers >= 1
        await wait_for(lambda: live.daemon.hub.client_count <= 1)  # memory released
        async with ws(live, token_of(t.admin), since=got[-1] if got else 0) as again:
            rest = [(await recv(again))["seq"] for _ in range(100 - len(got))]
            assert got + rest == list(range(1, 101))
            await publish(live, t.company_id)
            assert (await recv(again))["seq"] == 101
        del ok


async def test_a_client_that_stops_reading_is_dropped_then_resumes(small_live: Live) -> None:
    live = small_live
    t = await live.tenant()
    async with ws(live, token_of(t.admin), max_queue=1) as stalled:
        # The client reads nothing: socket buffers fill, the server's sends block, the
        # mailbox overflows. Events go one per transaction, as in real life.
        published = 0
        while live.daemon.hub.slow_consumers == 0:
            assert published < 3000, "the stalled client was never dropped"
            blob = secrets.token_hex(10_000)  # incompressible (permessage-deflate is on)
            await publish(live, t.company_id, data={"blob": blob})
            published += 1
        assert live.daemon.hub.client_count == 1  # the socket still drains what it had
        got: list[int] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                got.append((await recv(stalled))["seq"])
        assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.SLOW_CONSUMER
        assert got == list(range(1, len(got) + 1)) and len(got) < published
    async with ws(live, token_of(t.admin), since=got[-1] if got else 0) as again:
        rest = [(await recv(again))["seq"] for _ in range(published - len(got))]
        assert got + rest == list(range(1, published + 1))


# --------------------------------------------------------------------------- invalidation


async def _closed_with(conn: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await recv(conn)
    return info.value.rcvd.code if info.value.rcvd else None


async def test_token_invalidation_closes_that_users_sockets(live: Live) -> None:
    t = await live.tenant()
    async with (
        ws(live, token_of(t.agent)) as agent,
        ws(live, token_of(t.supervisor)) as supervisor,
        ws(live, token_of(t.admin)) as admin,
    ):
        async with live.kernel.tx() as db:
            user = await db.get(User, t.users["agent"])
            assert user is not None
            await auth.invalidate_user_tokens(db, user)
        assert await asyncio.wait_for(_closed_with(agent), TIMEOUT) == CloseCode.UNAUTHORIZED
        r = await t.supervisor.patch(
            "/api/v1/auth/me", json={"current_password": PASSWORD, "new_password": "n3w-password"}
        )
        assert r.status_code in (200, 401)
        assert await asyncio.wait_for(_closed_with(supervisor), TIMEOUT) == CloseCode.UNAUTHORIZED
        # Everyone else keeps streaming.
        seq = (await publish(live, t.company_id))[0]
        assert [(await recv(admin))["seq"] for _ in range(seq)] == list(range(1, seq + 1))
    # And the dead token cannot reconnect.
    assert (await _rejected(live, token=token_of(t.agent))).status_code == 401


async def test_shutdown_closes_sockets_with_going_away(live: Live) -> None:
    t = await live.tenant()
    async with ws(live, token_of(t.admin)) as a, ws(live, token_of(t.agent)) as b:
        await live.daemon.hub.close_all()
        assert await asyncio.wait_for(_closed_with(a), TIMEOUT) == 1001
        assert await asyncio.wait_for(_closed_with(b), TIMEOUT) == 1001
    resp = await _rejected(live, token=token_of(t.admin))
    assert resp.status_code == 503 and json.loads(resp.body)["error"] == "ERR_UNAVAILABLE"


# --------------------------------------------------------------------------- typing


async def _ticket(
    live: Live,
    company_id: uuid.UUID,
    department_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None = None,
) -> uuid.UUID:
    async with live.kernel.tx() as db:
        client = Client(company_id=company_id, phone=f"+55119{random.randint(10**7, 10**8 - 1)}")
        db.add(client)
        await db.flush()
        number = random.randint(1, 10**9)
        ticket = Ticket(
            company_id=company_id,
            number=number,
            client_id=client.id,
            department_id=department_id,
            assignee_id=assignee_id,
        )
        db.add(ticket)
        await db.flush()
        return ticket.id


async def _typing(conn: ClientConnection, ticket_id: uuid.UUID, typing: bool = True) -> None:
    await conn.send(json.dumps({"type": "typing", "ticket_id": str(ticket_id), "typing": typing}))


async def test_typing_reaches_the_others_who_may_see_the_ticket(live: Live) -> None:
    t = await live.tenant("A")
    other = await live.tenant("B")
    lab_ticket = await _ticket(live, t.company_id, t.lab_id)
    assigned = await _ticket(live, t.company_id, t.sales_id, t.users["agent"])
    foreign_ticket = await _ticket(live, other.company_id, other.lab_id)
    assert live.root is not None
    async with (
        ws(live, token_of(t.agent)) as agent,
        ws(live, token_of(t.supervisor)) as supervisor,
        ws(live, token_of(t.clients["agent2"])) as agent2,
        ws(live, token_of(other.admin)) as foreign,
        ws(live, token_of(live.root)) as root,
    ):
        await _typing(agent, lab_ticket)
        expected = {
            "seq": None,
            "type": "typing",
            "company_id": str(t.company_id),
            "data": {
                "ticket_id": str(lab_ticket),
                "user_id": str(t.users["agent"]),
                "name": "Agent",
                "typing": True,
            },
        }
        assert await recv(supervisor) == expected
        assert await recv(root) == expected
        # A sentinel event shows what each of the others got before it: nothing.
        await publish(live, t.company_id, "sentinel")
        await publish(live, other.company_id, "sentinel")
        for conn in (agent, agent2, foreign):
            assert (await recv(conn))["type"] == "sentinel"
        assert (await recv(supervisor))["type"] == "sentinel"
        # A ticket of Comercial assigned to the agent: the agent may type on it, and
        # agent2 (Comercial) sees it.
        await _typing(agent, assigned, typing=False)
        ev = await recv(agent2)
        assert ev["type"] == "typing" and ev["data"]["ticket_id"] == str(assigned)
        assert ev["data"]["typing"] is False
        assert (await recv(supervisor))["data"]["ticket_id"] == str(assigned)
        # Tickets one may not see, of another company, or that do not exist: not found.
        for conn, ticket in (
            (agent2, lab_ticket),
            (agent, foreign_ticket),
            (agent, uuid.uuid4()),
        ):
            await _typing(conn, ticket)
            err = await recv(conn)
            assert err["type"] == "error" and err["error"] == "ERR_NOT_FOUND", err
        await publish(live, other.company_id, "sentinel")
        assert (await recv(foreign))["type"] == "sentinel"
    # Typing is never persisted.
    async with live.kernel.read() as db:
        types = (await db.scalars(select(Event.type))).all()
        assert "typing" not in types


# --------------------------------------------------------------------------- frames


async def test_ping_pong_and_bad_frames(live: Live) -> None:
    t = await live.tenant()
    async with ws(live, token_of(t.agent)) as conn:
        await conn.send(json.dumps({"type": "ping"}))
        assert await recv(conn) == {"type": "pong"}
        bad: list[str | bytes] = [
            "not json",
            "[1, 2]",
            '{"no": "type"}',
            '{"type": "nope"}',
            '{"type": "typing", "ticket_id": "not-a-uuid"}',
            '{"type": "typing"}',
            b"\x00binary",
            json.dumps({"type": "ping", "pad": "x" * 5000}),
        ]
        for frame in bad:
            await conn.send(frame)
            err = await recv(conn)
            assert err["type"] == "error" and err["error"] == "ERR_BAD_FRAME", frame
            assert err["message"] and "Traceback" not in err["message"]
        # Still open and working.
        await conn.send('{"type": "ping"}')
        assert await recv(conn) == {"type": "pong"}
        seq = (await publish(live, t.company_id))[0]
        assert (await recv(conn))["seq"] == seq
        # The 20th bad frame closes the connection with 1008.
        for _ in range(20 - len(bad) - 1):
            await conn.send("bad")
            assert (await recv(conn))["error"] == "ERR_BAD_FRAME"
        await conn.send("bad")
        assert (await recv(conn))["error"] == "ERR_BAD_FRAME"
        assert await asyncio.wait_for(_closed_with(conn), TIMEOUT) == 1008
