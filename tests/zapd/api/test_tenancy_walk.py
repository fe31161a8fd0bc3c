"""Multi-tenant isolation: every route, fed another company's ids, answers 404.

The walk reads the route table from the OpenAPI document, so a new route with a path
parameter is walked automatically; a parameter the walk cannot fill fails the test
instead of being skipped.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select

from shared.enums import TicketStatus
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.db.models import AuditLog, Category, Chat, Message, QuickReply, Tag, Ticket
from zapd.services.delivery import outbox

# Bodies that pass validation, so the request reaches the ownership check.
BODIES: dict[tuple[str, str], Any] = {
    ("put", "/api/v1/users/{user_id}/departments"): {"department_ids": []},
    ("put", "/api/v1/clients/{client_id}/tags"): {"tag_ids": []},
    ("post", "/api/v1/users/{user_id}/reset-password"): {"password": "another-pass-1"},
    ("post", "/api/v1/tickets/{ticket_id}/assign"): {"user_id": str(uuid.uuid4())},
    ("post", "/api/v1/sandbox/{session_id}/inbound"): {"from": "+5511912345678", "text": "oi"},
    ("post", "/api/v1/sessions/{session_id}/pair"): {"phone": "+5511912345678"},
    ("post", "/api/v1/sandbox/{session_id}/pair"): {"code": "ABCD-EFGH"},
}
# Required query parameters, for the same reason.
PARAMS: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/api/v1/sandbox/{session_id}/inbox"): {"phone": "+5511912345678"},
}


async def _victim_ids(live: Live) -> tuple[dict[str, uuid.UUID], Any]:
    b = await live.tenant("Victim")
    session_id = await seed.session(live, b.company_id)
    client_id = await seed.client(live, b.company_id, "+5511987650001", "Cliente B")
    ticket_id = await seed.ticket(
        live,
        b.company_id,
        session_id,
        client_id,
        department_id=b.lab_id,
        status=TicketStatus.PENDING,
    )
    message_ids = await seed.messages(live, ticket_id, 2)
    async with live.kernel.tx() as db:
        cat = Category(company_id=b.company_id, name="Resolvido")
        tag = Tag(company_id=b.company_id, name="VIP", color="#FF0000")
        qr = QuickReply(company_id=b.company_id, shortcut="oi", body="Olá!")
        db.add_all([cat, tag, qr])
        await db.flush()
        extra = {"category_id": cat.id, "tag_id": tag.id, "reply_id": qr.id}
    async with live.kernel.tx() as db:
        chat = await db.scalar(
            select(Chat).join(Ticket, Ticket.chat_id == Chat.id).where(Ticket.id == ticket_id)
        )
        assert chat is not None
        queued = await outbox.enqueue(db, chat, "segredo da empresa B")
        assert queued.outbox is not None
        extra["outbox_id"] = queued.outbox.id
    r = await b.admin.post(
        "/api/v1/media", files={"file": ("laudo.pdf", b"%PDF-1.4\n% victim\n", "application/pdf")}
    )
    assert r.status_code == 201, r.text
    extra["media_id"] = uuid.UUID(r.json()["id"])
    r = await b.admin.post("/api/v1/api-tokens", json={"name": "b-script"})
    assert r.status_code == 201
    ids = {
        "company_id": b.company_id,
        "user_id": b.users["agent"],
        "department_id": b.lab_id,
        "session_id": session_id,
        "client_id": client_id,
        "ticket_id": ticket_id,
        "message_id": message_ids[0],
        "token_id": uuid.UUID(r.json()["id"]),
        **extra,
    }
    return ids, b


async def _audit_count(live: Live, company_id: uuid.UUID) -> int:
    async with live.kernel.read() as db:
        return int(
            await db.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.company_id == company_id)
            )
            or 0
        )


async def test_every_route_hides_other_companies(live: Live) -> None:
    ids, b = await _victim_ids(live)
    a = await live.tenant("Attacker")
    r = await a.admin.post("/api/v1/api-tokens", json={"name": "a-script", "role": 0})
    attackers = {
        "admin": a.admin,
        "supervisor": a.supervisor,
        "agent": a.agent,
        "api-token": live.client(r.json()["token"]),
    }
    spec = (await live.client().get("/api/v1/openapi.json")).json()
    before = await _audit_count(live, b.company_id)
    walked, failures = 0, []
    for template, ops in spec["paths"].items():
        params = re.findall(r"{(\w+)}", template)
        if not params:
            continue
        missing = [p for p in params if p not in ids]
        assert not missing, f"the walk has no foreign id for {missing} in {template}"
        path = template
        for p in params:
            path = path.replace("{" + p + "}", str(ids[p]))
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            body = BODIES.get(
                (method, template), {} if method in ("post", "put", "patch") else None
            )
            for who, client in attackers.items():
                params = PARAMS.get((method, template))
                resp = await client.request(method.upper(), path, json=body, params=params)

                walked += 1
                if resp.status_code != 404 or resp.json().get("error") != "ERR_NOT_FOUND":
                    failures.append(
                        f"{who} {method.upper()} {template} -> {resp.status_code} {resp.text[:120]}"
                    )
    assert walked >= 60
    assert not failures, "\n".join(failures)
    # Nothing of the victim changed, and nothing was written in its name.
    assert await _audit_count(live, b.company_id) == before
    dep = (await b.admin.get(f"/api/v1/departments/{b.lab_id}")).json()
    assert dep["name"] == "Laboratório"
    assert (await b.agent.get("/api/v1/auth/me")).status_code == 200


async def test_listings_never_show_other_companies(live: Live) -> None:
    ids, b = await _victim_ids(live)
    a = await live.tenant("Attacker")
    spec = (await live.client().get("/api/v1/openapi.json")).json()
    victim = {str(v) for v in ids.values()} | {str(b.company_id)}
    uuid_re = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    checked = 0
    for template, ops in spec["paths"].items():
        if "{" in template or "get" not in ops or template in ("/healthz", "/readyz", "/metrics"):
            continue
        declared = {q["name"] for q in ops["get"].get("parameters", []) if q["in"] == "query"}
        for params in ({}, {"company_id": str(b.company_id)}):
            resp = await a.admin.get(template, params=params)
            leaked = victim & set(uuid_re.findall(resp.text))
            assert not leaked, f"GET {template} {params} leaks {leaked}"
            if params and "company_id" in declared:
                # A foreign company filter is refused, never honoured.
                assert resp.status_code == 404, (template, resp.status_code)
            checked += 1
    assert checked >= 20


# Every id a request body may carry, with a body that is valid but for that one foreign
# id (placeholders: "{own:<name>}" is the attacker's own id, "{victim:<name>}" the
# victim's). `test_foreign_ids_in_bodies_answer_404` fails when the OpenAPI document
# grows a body id field this table does not cover.
BODY_IDS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("post", "/api/v1/users", "department_ids"): {
        "email": "novo.{tag}@acme.com.br",
        "name": "Novo",
        "password": "uma-senha-longa-1",
        "role": 2,
        "department_ids": ["{victim:department_id}"],
    },
    ("post", "/api/v1/users", "company_id"): {
        "email": "outro.{tag}@acme.com.br",
        "name": "Outro",
        "password": "uma-senha-longa-1",
        "role": 2,
        "company_id": "{victim:company_id}",
    },
    ("patch", "/api/v1/users/{own:user_id}", "department_ids"): {
        "department_ids": ["{victim:department_id}"]
    },
    ("put", "/api/v1/users/{own:user_id}/departments", "department_ids"): {
        "department_ids": ["{victim:department_id}"]
    },
    ("post", "/api/v1/api-tokens", "company_id"): {
        "name": "t-{tag}",
        "company_id": "{victim:company_id}",
    },
    ("post", "/api/v1/departments", "fallback_department_id"): {
        "name": "Fila {tag}",
        "fallback_department_id": "{victim:department_id}",
    },
    ("post", "/api/v1/departments", "company_id"): {
        "name": "Fila B {tag}",
        "company_id": "{victim:company_id}",
    },
    ("patch", "/api/v1/departments/{own:department_id}", "fallback_department_id"): {
        "fallback_department_id": "{victim:department_id}"
    },
    ("post", "/api/v1/categories", "company_id"): {
        "name": "Cat {tag}",
        "company_id": "{victim:company_id}",
    },
    ("post", "/api/v1/tags", "company_id"): {
        "name": "Tag {tag}",
        "color": "#00FF00",
        "company_id": "{victim:company_id}",
    },
    ("post", "/api/v1/quick-replies", "department_id"): {
        "shortcut": "q{tag}",
        "body": "Olá",
        "department_id": "{victim:department_id}",
    },
    ("post", "/api/v1/quick-replies", "company_id"): {
        "shortcut": "r{tag}",
        "body": "Olá",
        "company_id": "{victim:company_id}",
    },
    ("patch", "/api/v1/quick-replies/{own:reply_id}", "department_id"): {
        "department_id": "{victim:department_id}"
    },
    ("post", "/api/v1/clients", "company_id"): {
        "phone": "+5511987659{tag4}",
        "company_id": "{victim:company_id}",
    },
    ("put", "/api/v1/clients/{own:client_id}/tags", "tag_ids"): {"tag_ids": ["{victim:tag_id}"]},
    ("post", "/api/v1/sessions", "default_department_id"): {
        "name": "S {tag}",
        "engine": 0,
        "default_department_id": "{victim:department_id}",
    },
    ("post", "/api/v1/sessions", "company_id"): {
        "name": "S2 {tag}",
        "engine": 0,
        "company_id": "{victim:company_id}",
    },
    ("patch", "/api/v1/sessions/{own:session_id}", "default_department_id"): {
        "default_department_id": "{victim:department_id}"
    },
    ("patch", "/api/v1/tickets/{own:ticket_id}", "tag_ids"): {"tag_ids": ["{victim:tag_id}"]},
    ("post", "/api/v1/tickets/{own:ticket_id}/assign", "user_id"): {"user_id": "{victim:user_id}"},
    ("post", "/api/v1/tickets/{own:ticket_id}/transfer", "department_id"): {
        "department_id": "{victim:department_id}"
    },
    ("post", "/api/v1/tickets/{own:ticket_id}/transfer", "user_id"): {
        "user_id": "{victim:user_id}"
    },
    ("post", "/api/v1/tickets/{own:ticket_id}/close", "category_id"): {
        "category_id": "{victim:category_id}"
    },
    ("post", "/api/v1/messages", "ticket_id"): {"ticket_id": "{victim:ticket_id}", "body": "oi"},
    ("post", "/api/v1/messages", "session_id"): {
        "session_id": "{victim:session_id}",
        "to": "+5511987650001",
        "body": "oi",
    },
    ("post", "/api/v1/messages", "media_id"): {
        "ticket_id": "{own:ticket_id}",
        "media_id": "{victim:media_id}",
    },
    ("post", "/api/v1/messages", "quoted_message_id"): {
        "ticket_id": "{own:ticket_id}",
        "body": "oi",
        "quoted_message_id": "{victim:message_id}",
    },
}
# Body fields ending in _id that name no row (a WhatsApp id chosen by the caller).
NOT_ROW_IDS = {"wa_message_id"}


def _fill(value: Any, own: dict[str, Any], victim: dict[str, Any], tag: int) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, own, victim, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, own, victim, tag) for v in value]
    if not isinstance(value, str):
        return value
    for name, v in own.items():
        value = value.replace("{own:" + name + "}", str(v))
    for name, v in victim.items():
        value = value.replace("{victim:" + name + "}", str(v))
    return value.replace("{tag4}", f"{tag % 10000:04d}").replace("{tag}", str(tag))


def _body_id_fields(spec: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Every (method, path, field) whose JSON body has a field naming a row by id."""
    schemas = spec["components"]["schemas"]
    found = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = content.get("schema", {})
            refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
            for ref in filter(None, refs):
                for field in schemas[ref.split("/")[-1]].get("properties", {}):
                    if field.endswith(("_id", "_ids")) and field not in NOT_ROW_IDS:
                        found.add((method, path, field))
    return found


async def test_foreign_ids_in_bodies_answer_404(live: Live) -> None:
    victim, b = await _victim_ids(live)
    async with live.kernel.read() as db:
        victim["message_id"] = await db.scalar(
            select(Message.id).where(Message.ticket_id == victim["ticket_id"]).limit(1)
        )
    a = await live.tenant("Attacker")
    session_id = await seed.session(live, a.company_id)
    client_id = await seed.client(live, a.company_id, "+5511987650002", "Cliente A")
    ticket_id = await seed.ticket(
        live,
        a.company_id,
        session_id,
        client_id,
        department_id=a.lab_id,
        status=TicketStatus.OPEN,
        assignee_id=a.users["agent"],
    )
    r = await a.admin.post("/api/v1/quick-replies", json={"shortcut": "meu", "body": "Olá"})
    assert r.status_code == 201, r.text
    own = {
        "user_id": a.users["agent2"],
        "department_id": a.sales_id,
        "reply_id": r.json()["id"],
        "client_id": client_id,
        "session_id": session_id,
        "ticket_id": ticket_id,
    }
    spec = (await live.client().get("/api/v1/openapi.json")).json()
    templated = {
        (m, re.sub(r"{(\w+)}", lambda g: "{own:" + g.group(1) + "}", p), f)
        for m, p, f in _body_id_fields(spec)
    }
    assert templated == set(BODY_IDS), (
        f"uncovered: {templated - set(BODY_IDS)}; stale: {set(BODY_IDS) - templated}"
    )
    before = await _audit_count(live, b.company_id)
    failures = []
    for n, ((method, template, field), body) in enumerate(sorted(BODY_IDS.items())):
        path = _fill(template, own, victim, n)
        resp = await a.admin.request(method.upper(), path, json=_fill(body, own, victim, n))
        if resp.status_code != 404 or resp.json().get("error") != "ERR_NOT_FOUND":
            failures.append(
                f"{method.upper()} {template} {field} -> {resp.status_code} {resp.text[:160]}"
            )
        elif field not in ("company_id", "ticket_id", "session_id"):
            assert field in resp.json()["message"], resp.text  # says which field
    assert not failures, "\n".join(failures)
    assert await _audit_count(live, b.company_id) == before
