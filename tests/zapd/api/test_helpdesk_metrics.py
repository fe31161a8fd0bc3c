"""Service metrics (/api/v1/metrics/...) over real HTTP, on seeded tickets and messages.

Every figure is checked exactly: counts, means and percentiles (linear interpolation,
and on PostgreSQL against percentile_cont itself), day buckets in the company's time
zone (DST and a +05:45 zone included), load per agent and queue waits.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text, update

from shared.enums import MessageDirection, MessageStatus, MessageType, TicketStatus
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live, Tenant
from zapd.db.models import Company, Message, Ticket

BASE = datetime(2024, 3, 4, 3, 0, tzinfo=UTC)  # Monday 00:00 in São Paulo (UTC-3)
SINCE, UNTIL = BASE, BASE + timedelta(days=7)
RANGE = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
ENDPOINTS = ("summary", "tickets", "response-times", "volume", "agents", "queues")
_phones = itertools.count(1000)
H, D, S = timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)


@dataclass
class World:
    t: Tenant
    tickets: dict[str, uuid.UUID]


async def _ticket(
    live: Live, t: Tenant, sid: uuid.UUID, status: TicketStatus, **kw: Any
) -> uuid.UUID:
    client = await seed.client(live, t.company_id, f"+55119876{next(_phones):05d}")
    return await seed.ticket(live, t.company_id, sid, client, status=status, **kw)


async def _message(
    live: Live,
    ticket_id: uuid.UUID,
    at: datetime,
    direction: MessageDirection,
    *,
    note: bool = False,
) -> None:
    async with live.kernel.tx() as db:
        t = await db.get(Ticket, ticket_id)
        assert t is not None and t.session_id is not None and t.chat_id is not None
        inbound = direction is MessageDirection.INBOUND
        db.add(
            Message(
                company_id=t.company_id,
                session_id=t.session_id,
                chat_id=t.chat_id,
                ticket_id=t.id,
                direction=direction,
                type=MessageType.TEXT,
                status=MessageStatus.RECEIVED if inbound else MessageStatus.DELIVERED,
                body="oi",
                is_note=note,
                created_at=at,
            )
        )


async def _world(live: Live) -> World:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    agent, agent2, sup = t.users["agent"], t.users["agent2"], t.users["supervisor"]
    closed, open_, pending = TicketStatus.CLOSED, TicketStatus.OPEN, TicketStatus.PENDING
    lab, sales = t.lab_id, t.sales_id
    specs: dict[str, tuple[TicketStatus, dict[str, Any]]] = {
        "t1": (
            closed,
            {
                "department_id": lab,
                "assignee_id": agent,
                "created_at": BASE + H,
                "first_response_at": BASE + H + 60 * S,
                "closed_at": BASE + H + 600 * S,
            },
        ),
        "t2": (
            closed,
            {
                "department_id": lab,
                "assignee_id": agent,
                "created_at": BASE + 2 * H,
                "first_response_at": BASE + 2 * H + 120 * S,
                "closed_at": BASE + 2 * H + 1200 * S,
            },
        ),
        "t3": (
            open_,
            {
                "department_id": sales,
                "assignee_id": agent2,
                "created_at": BASE + D,
                "first_response_at": BASE + D + 30 * S,
            },
        ),
        "t4": (pending, {"department_id": sales, "created_at": BASE + 2 * D}),
        "t5": (pending, {"created_at": BASE + 3 * D}),  # still in the greeting menu
        "t6": (
            open_,
            {
                "department_id": lab,
                "assignee_id": agent,
                "created_at": BASE + 3 * D,
                "first_response_at": BASE + 3 * D + 300 * S,
            },
        ),
        # Created before the range, closed inside it: counts only as closed by the agent.
        "before": (
            closed,
            {
                "department_id": lab,
                "assignee_id": agent,
                "created_at": BASE - D,
                "first_response_at": BASE - D + 10 * S,
                "closed_at": BASE + 4 * D,
            },
        ),
        "waiting": (
            pending,
            {"department_id": sales, "assignee_id": agent2, "created_at": BASE - 2 * D},
        ),
        "held": (open_, {"department_id": sales, "assignee_id": sup, "created_at": BASE - 3 * D}),
        # After the range: nowhere in it.
        "after": (
            closed,
            {
                "department_id": lab,
                "assignee_id": agent,
                "created_at": BASE + 8 * D,
                "first_response_at": BASE + 8 * D + S,
                "closed_at": BASE + 8 * D + H,
            },
        ),
    }
    ids = {name: await _ticket(live, t, sid, status, **kw) for name, (status, kw) in specs.items()}
    inn, out = MessageDirection.INBOUND, MessageDirection.OUTBOUND
    for at, direction, note in [
        (BASE, inn, False),  # 03-04 00:00:00 local
        (BASE + D - S, out, False),  # 03-04 23:59:59 local
        (BASE + D, inn, False),  # 03-05 00:00:00 local
        (BASE - S, inn, False),  # before the range
        (BASE + D + H, out, True),  # an internal note: not volume
        (UNTIL - S, out, False),  # 03-10 23:59:59 local
        (UNTIL, inn, False),  # the range is half-open
    ]:
        await _message(live, ids["t1"], at, direction, note=note)
    for at, direction in [(BASE + 2 * D + 5 * H, inn)] * 2 + [(BASE + 2 * D + 6 * H, out)]:
        await _message(live, ids["t3"], at, direction)
    # Another company's activity in the same range must not show.
    other = await live.tenant("Outra")
    osid = await seed.session(live, other.company_id)
    oid = await _ticket(live, other, osid, pending, department_id=other.lab_id, created_at=BASE + H)
    await _message(live, oid, BASE + H, inn)
    return World(t, ids)


async def _get(client: httpx.AsyncClient, endpoint: str, **params: Any) -> dict[str, Any]:
    r = await client.get(f"/api/v1/metrics/{endpoint}", params={**RANGE, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_ticket_counts_by_status_and_department(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.supervisor, "tickets")
    assert body["total"] == 6
    assert body["by_status"] == [
        {"status": 0, "count": 2},
        {"status": 1, "count": 2},
        {"status": 2, "count": 2},
    ]
    assert body["by_department"] == [
        {"department_id": str(t.lab_id), "name": "Laboratório", "count": 3},
        {"department_id": str(t.sales_id), "name": "Comercial", "count": 2},
        {"department_id": None, "name": None, "count": 1},
    ]
    assert _parse(body["range"]["since"]) == SINCE and _parse(body["range"]["until"]) == UNTIL
    assert body["range"]["timezone"] == "America/Sao_Paulo"
    lab = await _get(t.admin, "tickets", department_id=str(t.lab_id))
    assert lab["total"] == 3 and lab["range"]["department_id"] == str(t.lab_id)
    assert [s["count"] for s in lab["by_status"]] == [0, 1, 2]
    assert lab["by_department"] == [
        {"department_id": str(t.lab_id), "name": "Laboratório", "count": 3}
    ]


async def test_response_times_mean_and_percentiles(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.supervisor, "response-times")
    # First responses 60, 120, 30, 300 s; resolutions 600, 1200 s.
    assert body["first_response"] == {"count": 4, "mean": 127.5, "p50": 90.0, "p90": 246.0}
    assert body["resolution"] == {"count": 2, "mean": 900.0, "p50": 900.0, "p90": 1140.0}
    lab = await _get(t.supervisor, "response-times", department_id=str(t.lab_id))
    assert lab["first_response"] == {"count": 3, "mean": 160.0, "p50": 120.0, "p90": 264.0}
    # A window with no ticket: counts of zero, no figures.
    empty = await _get(
        t.supervisor,
        "response-times",
        since=(BASE + 20 * D).isoformat(),
        until=(BASE + 21 * D).isoformat(),
    )
    assert empty["first_response"] == {"count": 0, "mean": None, "p50": None, "p90": None}
    if live.backend == "postgresql":
        # The very same figures from PostgreSQL's own percentile_cont.
        async with live.kernel.read() as db:
            row = (
                await db.execute(
                    text(
                        "SELECT avg(d), percentile_cont(0.5) WITHIN GROUP (ORDER BY d),"
                        " percentile_cont(0.9) WITHIN GROUP (ORDER BY d) FROM ("
                        " SELECT extract(epoch FROM first_response_at - created_at) AS d"
                        " FROM tickets WHERE company_id = :c AND created_at >= :s"
                        " AND created_at < :u AND first_response_at IS NOT NULL) AS x"
                    ),
                    {"c": t.company_id, "s": SINCE, "u": UNTIL},
                )
            ).one()
        mean, p50, p90 = (round(float(v), 3) for v in row)
        assert body["first_response"] == {"count": 4, "mean": mean, "p50": p50, "p90": p90}


async def test_volume_per_day_in_the_company_time_zone(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.admin, "volume")
    days = {d["day"]: (d["inbound"], d["outbound"]) for d in body["days"]}
    assert list(days) == [f"2024-03-{d:02d}" for d in range(4, 11)]
    assert days == {
        "2024-03-04": (1, 1),
        "2024-03-05": (1, 0),
        "2024-03-06": (2, 1),
        "2024-03-07": (0, 0),
        "2024-03-08": (0, 0),
        "2024-03-09": (0, 0),
        "2024-03-10": (0, 1),
    }
    assert (body["inbound"], body["outbound"]) == (4, 3)
    lab = await _get(t.admin, "volume", department_id=str(t.lab_id))
    assert (lab["inbound"], lab["outbound"]) == (2, 2)
    assert lab["days"][2] == {"day": "2024-03-06", "inbound": 0, "outbound": 0}
    # A range that starts and ends mid-day: partial first and last days.
    part = await _get(
        t.admin,
        "volume",
        since="2024-03-04T12:00:00-03:00",
        until="2024-03-06T12:00:00-03:00",
    )
    assert [(d["day"], d["inbound"], d["outbound"]) for d in part["days"]] == [
        ("2024-03-04", 0, 1),
        ("2024-03-05", 1, 0),
        ("2024-03-06", 2, 1),
    ]


async def test_day_buckets_follow_dst_and_odd_offsets(live: Live) -> None:
    t = await live.tenant("Fuso")
    sid = await seed.session(live, t.company_id)
    tid = await _ticket(live, t, sid, TicketStatus.OPEN, department_id=t.lab_id)
    inn = MessageDirection.INBOUND

    async def set_zone(zone: str) -> None:
        async with live.kernel.tx() as db:
            await db.execute(
                update(Company).where(Company.id == t.company_id).values(timezone=zone)
            )

    # New York springs forward on 2024-03-10: that day is 23 hours long.
    await set_zone("America/New_York")
    for at in ("2024-03-11T03:59:59Z", "2024-03-11T04:00:00Z", "2024-03-10T04:59:59Z"):
        await _message(live, tid, _parse(at), inn)
    body = await _get(
        t.admin, "volume", since="2024-03-09T00:00:00-05:00", until="2024-03-12T00:00:00-04:00"
    )
    assert body["range"]["timezone"] == "America/New_York"
    assert [(d["day"], d["inbound"]) for d in body["days"]] == [
        ("2024-03-09", 1),  # 23:59:59 EST
        ("2024-03-10", 1),  # 23:59:59 EDT
        ("2024-03-11", 1),  # 00:00:00 EDT
    ]
    # Kathmandu is UTC+05:45.
    await set_zone("Asia/Kathmandu")
    for at in ("2024-05-01T18:14:59Z", "2024-05-01T18:15:00Z"):
        await _message(live, tid, _parse(at), inn)
    body = await _get(
        t.admin, "volume", since="2024-05-01T00:00:00+05:45", until="2024-05-03T00:00:00+05:45"
    )
    assert [(d["day"], d["inbound"]) for d in body["days"]] == [
        ("2024-05-01", 1),
        ("2024-05-02", 1),
    ]


async def test_load_per_agent(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.supervisor, "agents")
    loads = [(a["name"], a["open"], a["pending"], a["closed"]) for a in body["agents"]]
    assert loads == [
        ("Agent2", 1, 1, 0),
        ("Agent", 1, 0, 3),
        ("Supervisor", 1, 0, 0),  # holds a ticket, so listed though not an agent
    ]
    first = body["agents"][0]
    assert first["user_id"] == str(t.users["agent2"]) and first["role"] == 2
    assert first["max_concurrent_tickets"] == 5 and first["active"] is True
    lab = await _get(t.supervisor, "agents", department_id=str(t.lab_id))
    assert [(a["name"], a["open"], a["pending"], a["closed"]) for a in lab["agents"]] == [
        ("Agent", 1, 0, 3)
    ]
    sales = await _get(t.supervisor, "agents", department_id=str(t.sales_id))
    assert [(a["name"], a["open"], a["pending"]) for a in sales["agents"]] == [
        ("Agent2", 1, 1),
        ("Supervisor", 1, 0),
    ]


async def test_queues_wait_now(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.supervisor, "queues")
    as_of = _parse(body["range"]["as_of"])
    assert abs((datetime.now(UTC) - as_of).total_seconds()) < 60

    def wait(oldest: datetime) -> float:
        return round((as_of - oldest).total_seconds(), 3)

    assert [
        (q["department_id"], q["pending"], q["longest_wait_seconds"]) for q in body["queues"]
    ] == [
        (str(t.lab_id), 0, None),
        (str(t.sales_id), 2, wait(BASE - 2 * D)),
        (None, 1, wait(BASE + 3 * D)),
    ]
    assert _parse(body["queues"][1]["oldest_created_at"]) == BASE - 2 * D
    assert body["queues"][1]["name"] == "Comercial"
    lab = await _get(t.supervisor, "queues", department_id=str(t.sales_id))
    assert [(q["name"], q["pending"]) for q in lab["queues"]] == [("Comercial", 2)]


async def test_summary_holds_every_report(live: Live) -> None:
    w = await _world(live)
    t = w.t
    body = await _get(t.admin, "summary")
    assert body["tickets"]["total"] == 6
    assert body["response_times"]["resolution"]["p90"] == 1140.0
    assert (body["volume"]["inbound"], body["volume"]["outbound"]) == (4, 3)
    assert [a["name"] for a in body["agents"]] == ["Agent2", "Agent", "Supervisor"]
    assert [q["pending"] for q in body["queues"]] == [0, 2, 1]
    # A global admin names the company and sees the same figures.
    assert live.root is not None
    r = await live.root.get("/api/v1/metrics/summary", params=RANGE)
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    root = await _get(live.root, "summary", company_id=str(t.company_id))
    for key in ("tickets", "response_times", "volume", "agents"):
        assert root[key] == body[key], key
    # Default range: the last seven days up to now.
    r = await t.admin.get("/api/v1/metrics/tickets")
    assert r.status_code == 200
    rng = r.json()["range"]
    until, since = _parse(rng["until"]), _parse(rng["since"])
    assert until - since == timedelta(days=7)
    assert abs((datetime.now(UTC) - until).total_seconds()) < 60
    assert r.json()["total"] == 0  # everything seeded is in 2024


async def test_roles_and_tenancy(live: Live) -> None:
    w = await _world(live)
    t = w.t
    other = await live.tenant("Terceira")
    for endpoint in ENDPOINTS:
        path = f"/api/v1/metrics/{endpoint}"
        for agent in (t.agent, t.clients["agent2"]):
            r = await agent.get(path, params=RANGE)
            assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN", endpoint
        for who in (t.admin, t.supervisor):
            assert (await who.get(path, params=RANGE)).status_code == 200, endpoint
        # Another company's id or department: 404, never its data.
        r = await t.admin.get(path, params={**RANGE, "company_id": str(other.company_id)})
        assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", endpoint
        r = await t.supervisor.get(path, params={**RANGE, "department_id": str(other.lab_id)})
        assert r.status_code == 404, endpoint
        assert (await live.client().get(path)).status_code == 401
    theirs = await _get(other.admin, "summary")
    assert theirs["tickets"]["total"] == 0 and theirs["volume"]["inbound"] == 0
    assert [a["name"] for a in theirs["agents"]] == ["Agent", "Agent2"]


async def test_bad_ranges_are_422(live: Live) -> None:
    t = await live.tenant()
    bad: list[dict[str, str]] = [
        {"since": "2024-03-04T00:00:00"},  # naive
        {"until": "2024-03-04T00:00:00"},  # naive
        {"since": "2024-03-05T00:00:00Z", "until": "2024-03-04T00:00:00Z"},
        {"since": "2024-03-04T00:00:00Z", "until": "2024-03-04T00:00:00Z"},
        {"since": "2023-01-01T00:00:00Z", "until": "2024-03-04T00:00:00Z"},  # > 366 days
        {"since": "yesterday"},
        {"until": "0001-01-01T00:00:00Z"},
        {"since": "9999-12-31T23:59:59Z"},
        {"since": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"until": "9999-12-31T23:00:00-05:00"},  # after year 9999 in UTC
        {"department_id": "not-a-uuid"},
    ]
    for endpoint in ("summary", "volume"):
        for params in bad:
            r = await t.admin.get(f"/api/v1/metrics/{endpoint}", params=params)
            assert r.status_code == 422, (endpoint, params, r.text)
            assert r.json()["error"] == "ERR_VALIDATION" and "Traceback" not in r.text
    # A full year is fine (leap year: 366 days).
    r = await t.admin.get(
        "/api/v1/metrics/volume",
        params={"since": "2024-01-01T00:00:00-03:00", "until": "2025-01-01T00:00:00-03:00"},
    )
    assert r.status_code == 200 and len(r.json()["days"]) == 366
