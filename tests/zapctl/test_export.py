"""`zapctl export ...`, run as the real console script on a seeded database, both backends.

Also holds `seed()`, the small but complete world (two companies, clients with both BR
phone spellings, chats, tickets, messages with tricky text, media, raw events, audit
rows) that the LGPD and maintenance tests reuse.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ZAPCTL, child_env, one_line, run_cli
from tests.zapctl.instance import FAST_HASH, Initialised, init_instance, process_database

CNPJ_A = "11222333000181"
CNPJ_B = "98765432000198"
PHONE_1 = "+5511987654321"  # also written +551187654321 (no 9th digit)
PHONE_1_OLD = "+551187654321"
PHONE_2 = "+5521998887777"
TRICKY = 'Olá, "preço" é R$ 10,00;\nsegunda linha ✓ — ação'
NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=400)
MESSAGES_A = ("msg_in", "msg_out", "msg_note", "msg_img", "msg_pdf1", "msg_jpg", "msg_queued")
MESSAGES_A += ("msg_c2", "msg_c2_pdf")


@dataclass
class World(Initialised):
    """What `seed` created: ids by name, on top of the instance `zapctl init` made."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # media storage keys

    @property
    def media_dir(self) -> Path:
        return self.state_dir / "media"


def _key(n: int) -> str:
    digest = f"{n:064x}"
    return f"{digest[:2]}/{digest}"


async def _seed(world: World) -> None:
    from shared.enums import (
        ClientIdentityKind,
        Engine,
        MessageDirection,
        MessageStatus,
        MessageType,
        OutboxState,
        Role,
        TicketStatus,
        WebhookEventState,
    )
    from zapd.db.engine import create_engine, session_factory
    from zapd.db.models import (
        AuditLog,
        Chat,
        Client,
        ClientIdentity,
        ClientTag,
        Company,
        Department,
        Event,
        Media,
        Message,
        Outbox,
        SessionLog,
        Tag,
        Ticket,
        User,
        WaSession,
        WebhookEvent,
    )

    ids = world.ids
    engine = create_engine(world.url)
    try:
        async with session_factory(engine)() as db, db.begin():
            a = Company(name="Acme Ltda", cnpj=CNPJ_A, last_event_seq=10)
            b = Company(name="Beta SA", cnpj=CNPJ_B)
            db.add_all([a, b])
            await db.flush()
            vendas = Department(company_id=a.id, name="Vendas", slug="vendas")
            suporte = Department(company_id=a.id, name="Suporte", slug="suporte")
            agent = User(
                company_id=a.id,
                email="agente@acme.com.br",
                name="Agente",
                password_hash="x",
                role=Role.AGENT,
            )
            sa = WaSession(company_id=a.id, name="principal", engine=Engine.SANDBOX)
            sb = WaSession(company_id=b.id, name="beta", engine=Engine.SANDBOX)
            db.add_all([vendas, suporte, agent, sa, sb])
            await db.flush()
            c1 = Client(
                company_id=a.id,
                phone=PHONE_1,
                wa_user_id=PHONE_1[1:] + "@s.whatsapp.net",
                lid="99887766554433@lid",
                name="Maria Silva",
                profile_name="Mari",
                email="maria@example.com",
                notes="prefere WhatsApp",
                custom_fields={"cpf": "123.456.789-00"},
            )
            c2 = Client(company_id=a.id, phone=PHONE_2, name="João Souza")
            c3 = Client(company_id=b.id, phone=PHONE_1, name="Maria em Beta")
            db.add_all([c1, c2, c3])
            await db.flush()
            for client, phones in (
                (c1, (PHONE_1, PHONE_1_OLD)),
                (c2, (PHONE_2,)),
                (c3, (PHONE_1,)),
            ):
                for i, value in enumerate(phones):
                    db.add(
                        ClientIdentity(
                            company_id=client.company_id,
                            client_id=client.id,
                            kind=ClientIdentityKind.PHONE
                            if i == 0
                            else ClientIdentityKind.PHONE_ALT,
                            value=value,
                        )
                    )
            db.add(
                ClientIdentity(
                    company_id=a.id,
                    client_id=c1.id,
                    kind=ClientIdentityKind.LID,
                    value="99887766554433@lid",
                )
            )
            vip = Tag(company_id=a.id, name="VIP")
            db.add(vip)
            await db.flush()
            db.add(ClientTag(client_id=c1.id, tag_id=vip.id, company_id=a.id))
            ch1 = Chat(
                company_id=a.id,
                session_id=sa.id,
                client_id=c1.id,
                wa_chat_id=PHONE_1[1:] + "@s.whatsapp.net",
                name="Mari",
                created_at=OLD,
                last_message_at=NOW,
            )
            ch2 = Chat(
                company_id=a.id,
                session_id=sa.id,
                client_id=c2.id,
                wa_chat_id=PHONE_2[1:] + "@s.whatsapp.net",
                name="João",
                created_at=NOW - timedelta(days=2),
            )
            ch3 = Chat(
                company_id=b.id,
                session_id=sb.id,
                client_id=c3.id,
                wa_chat_id=PHONE_1[1:] + "@s.whatsapp.net",
            )
            db.add_all([ch1, ch2, ch3])
            await db.flush()
            t1 = Ticket(
                company_id=a.id,
                number=1,
                client_id=c1.id,
                session_id=sa.id,
                chat_id=ch1.id,
                department_id=vendas.id,
                assignee_id=agent.id,
                status=TicketStatus.CLOSED,
                created_at=OLD,
                first_response_at=OLD + timedelta(minutes=3),
                closed_at=OLD + timedelta(hours=1),
            )
            t2 = Ticket(
                company_id=a.id,
                number=2,
                client_id=c1.id,
                session_id=sa.id,
                chat_id=ch1.id,
                department_id=suporte.id,
                status=TicketStatus.OPEN,
                created_at=NOW - timedelta(days=1),
            )
            t3 = Ticket(
                company_id=a.id,
                number=3,
                client_id=c2.id,
                session_id=sa.id,
                chat_id=ch2.id,
                department_id=vendas.id,
                status=TicketStatus.PENDING,
                created_at=NOW - timedelta(days=2),
            )
            t4 = Ticket(
                company_id=b.id,
                number=1,
                client_id=c3.id,
                session_id=sb.id,
                chat_id=ch3.id,
                status=TicketStatus.CLOSED,
                created_at=OLD,
                closed_at=OLD,
            )
            db.add_all([t1, t2, t3, t4])
            await db.flush()
            # m1: only c1 uses it; m2: c1 and c2; m3: c1's row, but its file is also
            # company B's m4.
            m1 = Media(
                company_id=a.id,
                storage_key=_key(1),
                mime="image/png",
                size=3,
                sha256=f"{1:064x}",
                filename="rg-maria.png",
            )
            m2 = Media(
                company_id=a.id,
                storage_key=_key(2),
                mime="application/pdf",
                size=3,
                sha256=f"{2:064x}",
                filename="tabela.pdf",
            )
            m3 = Media(
                company_id=a.id,
                storage_key=_key(3),
                mime="image/jpeg",
                size=3,
                sha256=f"{3:064x}",
                filename="foto.jpg",
            )
            m4 = Media(
                company_id=b.id,
                storage_key=_key(3),
                mime="image/jpeg",
                size=3,
                sha256=f"{3:064x}",
                filename="outra.jpg",
            )
            db.add_all([m1, m2, m3, m4])
            await db.flush()
            for n in (1, 2, 3):
                path = world.media_dir / _key(n)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"abc")
                world.keys[f"m{n}"] = _key(n)

            def msg(**kw: Any) -> Message:
                kw.setdefault("company_id", a.id)
                kw.setdefault("session_id", sa.id)
                kw.setdefault("status", MessageStatus.RECEIVED)
                kw.setdefault("direction", MessageDirection.INBOUND)
                row = Message(**kw)
                db.add(row)
                return row

            base = OLD + timedelta(seconds=1)
            rows = {
                "msg_in": msg(
                    chat_id=ch1.id,
                    ticket_id=t1.id,
                    body=TRICKY,
                    wa_message_id="WA-IN-1",
                    created_at=base,
                    extra={"k": "v"},
                ),
                "msg_out": msg(
                    chat_id=ch1.id,
                    ticket_id=t1.id,
                    body="Bom dia, Maria!",
                    direction=MessageDirection.OUTBOUND,
                    status=MessageStatus.READ,
                    author_id=agent.id,
                    wa_message_id="WA-OUT-1",
                    created_at=base + timedelta(minutes=3),
                ),
                "msg_note": msg(
                    chat_id=ch1.id,
                    ticket_id=t1.id,
                    body="cliente irritada",
                    direction=MessageDirection.OUTBOUND,
                    status=MessageStatus.SENT,
                    is_note=True,
                    author_id=agent.id,
                    created_at=base + timedelta(minutes=4),
                ),
                "msg_img": msg(
                    chat_id=ch1.id,
                    ticket_id=t1.id,
                    type=MessageType.IMAGE,
                    media_id=m1.id,
                    wa_message_id="WA-IN-2",
                    created_at=base + timedelta(minutes=5),
                ),
                "msg_pdf1": msg(
                    chat_id=ch1.id,
                    ticket_id=t2.id,
                    type=MessageType.DOCUMENT,
                    media_id=m2.id,
                    body="segue",
                    wa_message_id="WA-IN-3",
                    created_at=NOW - timedelta(days=1),
                ),
                "msg_jpg": msg(
                    chat_id=ch1.id,
                    ticket_id=t2.id,
                    type=MessageType.IMAGE,
                    media_id=m3.id,
                    wa_message_id="WA-IN-4",
                    created_at=NOW - timedelta(hours=20),
                ),
                "msg_queued": msg(
                    chat_id=ch1.id,
                    ticket_id=t2.id,
                    body="Aguarde",
                    direction=MessageDirection.OUTBOUND,
                    status=MessageStatus.QUEUED,
                    created_at=NOW - timedelta(hours=1),
                ),
                "msg_c2": msg(
                    chat_id=ch2.id,
                    ticket_id=t3.id,
                    body="Oi, sou o João",
                    wa_message_id="WA-C2-1",
                    created_at=NOW - timedelta(days=2),
                ),
                "msg_c2_pdf": msg(
                    chat_id=ch2.id,
                    ticket_id=t3.id,
                    type=MessageType.DOCUMENT,
                    media_id=m2.id,
                    wa_message_id="WA-C2-2",
                    created_at=NOW - timedelta(days=2),
                ),
                "msg_b": msg(
                    company_id=b.id,
                    session_id=sb.id,
                    chat_id=ch3.id,
                    ticket_id=t4.id,
                    body="Maria na Beta",
                    media_id=m4.id,
                    wa_message_id="WA-B-1",
                    created_at=OLD,
                ),
            }
            await db.flush()
            db.add(
                Outbox(
                    company_id=a.id,
                    session_id=sa.id,
                    message_id=rows["msg_queued"].id,
                    chat_id=rows["msg_queued"].chat_id,
                    idempotency_key="k-queued",
                    state=OutboxState.PENDING,
                )
            )

            def raw(payload: dict[str, Any], **kw: Any) -> WebhookEvent:
                kw.setdefault("company_id", a.id)
                kw.setdefault("session_id", sa.id)
                kw.setdefault("state", WebhookEventState.PROCESSED)
                row = WebhookEvent(
                    engine=Engine.SANDBOX, event_type=payload["kind"], payload=payload, **kw
                )
                db.add(row)
                return row

            raws = {
                "raw_c1_msg": raw(
                    {
                        "kind": "message",
                        "wa_message_id": "WA-IN-1",
                        "chat_jid": PHONE_1[1:] + "@s.whatsapp.net",
                        "sender_jid": PHONE_1[1:] + ":3@s.whatsapp.net",
                        "push_name": "Mari",
                        "body": TRICKY,
                    },
                    dedupe_key="WA-IN-1",
                ),
                "raw_c1_contact": raw(
                    {
                        "kind": "contact",
                        "jid": "99887766554433@lid",
                        "phone": PHONE_1_OLD,
                        "name": "Mari",
                    }
                ),
                "raw_c2_msg": raw(
                    {
                        "kind": "message",
                        "wa_message_id": "WA-C2-1",
                        "chat_jid": PHONE_2[1:] + "@s.whatsapp.net",
                        "sender_jid": PHONE_2[1:] + "@s.whatsapp.net",
                        "body": "Oi",
                    },
                    dedupe_key="WA-C2-1",
                ),
                "raw_failed": raw(  # a valid ack: zapd can process it once replayed
                    {
                        "kind": "ack",
                        "session_id": str(sa.id),
                        "at": NOW.isoformat(),
                        "wa_message_id": "WA-X",
                        "status": 2,
                    },
                    state=WebhookEventState.FAILED,
                    error="boom",
                    attempts=2,
                ),
                "raw_failed_b": raw(
                    {
                        "kind": "ack",
                        "session_id": str(sb.id),
                        "at": NOW.isoformat(),
                        "wa_message_id": "WA-Y",
                        "status": 2,
                    },
                    company_id=b.id,
                    session_id=sb.id,
                    state=WebhookEventState.FAILED,
                    error="boom",
                    attempts=1,
                ),
                "raw_old": raw(
                    {"kind": "ack", "wa_message_id": "WA-Z", "status": 2}, received_at=OLD
                ),
                "raw_old_failed": raw(  # written by an older zapd: no longer parses
                    {"kind": "ack", "wa_message_id": "WA-W", "status": 2},
                    received_at=OLD,
                    state=WebhookEventState.FAILED,
                    error="x",
                ),
            }
            evs = {
                "ev_c1": Event(
                    company_id=a.id,
                    seq=1,
                    type="message.new",
                    data={"id": str(rows["msg_in"].id), "chat_id": str(ch1.id), "body": TRICKY},
                    created_at=OLD,
                ),
                "ev_c2": Event(
                    company_id=a.id,
                    seq=2,
                    type="message.new",
                    data={
                        "id": str(rows["msg_c2"].id),
                        "chat_id": str(ch2.id),
                        "body": "Oi, sou o João",
                    },
                ),
            }
            db.add_all(evs.values())
            db.add(
                SessionLog(
                    company_id=a.id,
                    session_id=sa.id,
                    event="connected",
                    message="ok",
                    created_at=OLD,
                )
            )
            db.add(SessionLog(company_id=a.id, session_id=sa.id, event="connected", message="ok"))
            audits = {
                "audit_create": AuditLog(
                    company_id=a.id,
                    user_id=agent.id,
                    action="client.create",
                    entity_type="client",
                    entity_id=c1.id,
                    data={"changes": {"phone": [None, PHONE_1], "name": [None, "Maria Silva"]}},
                    created_at=OLD,
                ),
                "audit_send": AuditLog(
                    company_id=a.id,
                    user_id=agent.id,
                    action="message.send",
                    entity_type="message",
                    entity_id=rows["msg_out"].id,
                    data={"to": PHONE_1, "body_length": 15},
                ),
                "audit_media": AuditLog(
                    company_id=a.id,
                    user_id=agent.id,
                    action="media.create",
                    entity_type="media",
                    entity_id=m1.id,
                    data={"changes": {"filename": [None, "rg-maria.png"], "size": [None, 3]}},
                ),
                "audit_c2": AuditLog(
                    company_id=a.id,
                    user_id=agent.id,
                    action="client.create",
                    entity_type="client",
                    entity_id=c2.id,
                    data={"changes": {"name": [None, "João Souza"]}},
                ),
                "audit_b": AuditLog(
                    company_id=b.id,
                    action="client.create",
                    entity_type="client",
                    entity_id=c3.id,
                    data={"changes": {"name": [None, "Maria em Beta"]}},
                ),
            }
            db.add_all(audits.values())
            await db.flush()
            named = {
                "company_a": a, "company_b": b, "vendas": vendas, "suporte": suporte,
                "agent": agent, "session_a": sa, "session_b": sb, "c1": c1, "c2": c2,
                "c3": c3, "chat1": ch1, "chat2": ch2, "chat3": ch3, "t1": t1, "t2": t2,
                "t3": t3, "t4": t4, "m1": m1, "m2": m2, "m3": m3, "m4": m4,
                **rows, **raws, **evs, **audits,
            }  # fmt: skip
            ids.update({name: row.id for name, row in named.items()})
    finally:
        await engine.dispose()


def new_world(tmp: Path, database_url: str, env: dict[str, str]) -> World:
    """Run `zapctl init` on a new state dir (and database), return its empty World."""
    made = init_instance(tmp, database_url, env)
    return World(url=made.url, state_dir=made.state_dir, db_args=made.db_args)


def seed(tmp: Path, database_url: str, env: dict[str, str]) -> World:
    """Create an instance and fill it with the test world."""
    world = new_world(tmp, database_url, env)
    asyncio.run(_seed(world))
    return world


def cli_env(home: Path) -> dict[str, str]:
    """The environment every zapctl child of these tests gets."""
    return child_env(home, **FAST_HASH)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pg_or_sqlite_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL for the whole module: a SQLite file, or a fresh PostgreSQL database."""
    with process_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def world(pg_or_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("world")
    return seed(tmp, pg_or_sqlite_url, cli_env(tmp / "home"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home")


def read_csv(text: str) -> list[dict[str, str]]:
    """Parse CSV text (with its header) into dicts."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def ids_of(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


# --------------------------------------------------------------------------- tests


def test_messages_csv_round_trip(world: World, env: dict[str, str]) -> None:
    code, out, err = run_cli("export", "messages", "--company", CNPJ_A, *world.where, env=env)
    assert (code, err) == (0, "")
    # RFC 4180 line ends (the text captured above has them normalized to \n).
    raw = subprocess.run(
        [str(ZAPCTL), "export", "messages", "--company", CNPJ_A, *world.where],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    assert raw.count(b"\r\n") == 10  # header and 9 rows; TRICKY's own \n is kept quoted
    assert '"Olá, ""preço"" é R$ 10,00;\nsegunda'.encode() in raw
    assert raw.decode("utf-8").replace("\r\n", "\n") == out
    rows = read_csv(out)
    by_id = {r["id"]: r for r in rows}
    ids = world.ids
    expected = {str(ids[n]) for n in MESSAGES_A}
    assert set(by_id) == expected  # company B's message is not there
    tricky = by_id[str(ids["msg_in"])]
    assert tricky["body"] == 'Olá, "preço" é R$ 10,00;\nsegunda linha ✓ — ação'
    assert tricky["direction"] == "inbound"
    assert tricky["status"] == "received"
    assert tricky["client_phone"] == PHONE_1
    assert tricky["ticket_number"] == "1"
    assert tricky["department_id"] == str(ids["vendas"])
    assert tricky["is_note"] == "false"
    assert tricky["media_id"] == "" and tricky["author_email"] == ""
    assert tricky["created_at"] == (OLD + timedelta(seconds=1)).isoformat(
        timespec="microseconds"
    ).replace("+00:00", "Z")
    note = by_id[str(ids["msg_note"])]
    assert (note["is_note"], note["author_email"]) == ("true", "agente@acme.com.br")
    img = by_id[str(ids["msg_img"])]
    assert (img["type"], img["media_mime"], img["media_filename"], img["media_size"]) == (
        "image",
        "image/png",
        "rg-maria.png",
        "3",
    )
    # Rows come in id order.
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_header_matches_the_documented_columns(world: World, env: dict[str, str]) -> None:
    from zapd.services.compliance.exports import COLUMNS

    for kind in ("conversations", "messages", "tickets", "audit"):
        code, out, err = run_cli("export", kind, "--company", CNPJ_B, *world.where, env=env)
        assert code == 0, err
        header = out.split("\n", 1)[0].split(",")
        assert header == COLUMNS[kind]


@pytest.mark.parametrize("kind", ["conversations", "messages", "tickets", "audit"])
def test_help_documents_every_column(env: dict[str, str], kind: str) -> None:
    from zapd.services.compliance.exports import COLUMNS

    code, help_text, _ = run_cli("export", kind, "--help", env=env)
    assert code == 0
    for column in COLUMNS[kind]:
        assert f"  {column} " in help_text, (kind, column)
    assert "Examples:" in help_text


def test_jsonl_to_a_file_with_filters(world: World, env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "out" / "t.jsonl"
    target.parent.mkdir()
    args = ["export", "tickets", "--format", "jsonl", "--company", "11.222.333/0001-81"]
    result = run_cli("--json", *args, "--dept", "VENDAS", "-o", str(target), *world.where, env=env)
    assert result.code == 0, result.err
    assert result.json() == {"kind": "tickets", "format": "jsonl", "rows": 2, "file": str(target)}
    lines = target.read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines]
    assert {d["number"] for d in docs} == {1, 3}
    t1 = next(d for d in docs if d["number"] == 1)
    assert t1["status"] == "closed"
    assert t1["client_name"] == "Maria Silva"
    assert t1["department_name"] == "Vendas"
    assert t1["assignee_email"] == "agente@acme.com.br"
    assert t1["message_count"] == 4
    assert t1["closed_at"].endswith("Z")
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["t.jsonl"]  # no temp file left

    # --since/--until: only ticket 2 (created a day ago) of company A.
    since = (NOW - timedelta(days=1, hours=1)).isoformat()
    code, out, err = run_cli(
        "export", "tickets", "--company", CNPJ_A, "--since", since, *world.where, env=env
    )
    assert code == 0, err
    assert [r["number"] for r in read_csv(out)] == ["2"]
    code, out, _ = run_cli(
        "export", "tickets", "--until", OLD.date().isoformat(), *world.where, env=env
    )
    assert code == 0
    assert read_csv(out) == []  # nothing before the oldest ticket's day


def test_conversations_and_audit(world: World, env: dict[str, str]) -> None:
    code, out, err = run_cli(
        "export", "conversations", "--company", CNPJ_A, "--dept", "suporte", *world.where, env=env
    )
    assert code == 0, err
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [str(world.ids["chat1"])]
    assert rows[0]["message_count"] == "7"
    assert rows[0]["ticket_count"] == "2"
    assert rows[0]["session_name"] == "principal"
    assert rows[0]["type"] == "direct"

    code, out, err = run_cli(
        "export", "audit", "--format", "jsonl", "--company", CNPJ_A, *world.where, env=env
    )
    assert code == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    actions = {d["action"] for d in docs}
    assert {"client.create", "message.send", "media.create"} <= actions
    send = next(d for d in docs if d["action"] == "message.send")
    assert send["data"]["body_length"] == 15  # JSON stays JSON in jsonl
    assert send["user_email"] == "agente@acme.com.br"
    code, out, _ = run_cli("export", "audit", "--company", CNPJ_A, *world.where, env=env)
    row = next(r for r in read_csv(out) if r["action"] == "message.send")
    assert json.loads(row["data"])["body_length"] == 15  # and a JSON string in CSV


def test_metrics(world: World, env: dict[str, str]) -> None:
    since = (NOW - timedelta(days=3)).isoformat()
    code, out, err = run_cli(
        "export",
        "metrics",
        "--company",
        CNPJ_A,
        "--since",
        since,
        "--format",
        "jsonl",
        *world.where,
        env=env,
    )
    assert code == 0, err
    doc = json.loads(one_line(out))
    assert doc["tickets"]["total"] == 2  # tickets 2 and 3
    assert doc["volume"]["inbound"] == 4  # pdf1, jpg, c2, c2_pdf
    code, out, err = run_cli(
        "export", "metrics", "--company", CNPJ_A, "--since", since, *world.where, env=env
    )
    assert code == 0, err
    rows = read_csv(out)
    assert list(rows[0]) == ["section", "item", "metric", "value"]
    assert {"section": "tickets", "item": "", "metric": "total", "value": "2"} in rows
    assert {
        "section": "tickets.by_status",
        "item": "open",
        "metric": "count",
        "value": "1",
    } in rows


LOOKUP_ERRORS = [
    (["messages", "--company", str(uuid.UUID(int=7))], 3, "not found"),
    (["messages", "--company", "11.444.777/0001-61"], 3, "company 11.444.777/0001-61 not found"),
    (["messages", "--company", "acme"], 2, "neither a company id nor a CNPJ"),
    (["tickets", "--company", CNPJ_A, "--dept", "nope"], 3, "department nope not found"),
    (["tickets", "--dept", "vendas"], 2, "needs --company"),
    (["metrics", "--company", CNPJ_A, "--since", "2020-01-01"], 2, "366 days"),
]


def test_lookup_errors(world: World, env: dict[str, str]) -> None:
    for args, code, message in LOOKUP_ERRORS:
        result = run_cli("export", *args, *world.where, env=env)
        assert result.code == code, (args, result)
        assert result.out == ""
        assert message in one_line(result.err), args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["messages", "--since", "yesterday"], "not an ISO 8601"),
        (["messages", "--since", "2024-02-01", "--until", "2024-01-01"], "before --until"),
        (["metrics"], "--company"),
        (["messages", "--format", "xml"], "xml"),
        (["audit", "--dept", "x"], "No such option"),
    ],
)
def test_usage_errors(env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    # Refused before any database is opened (there is none here).
    result = run_cli("export", *args, "--state-dir", str(tmp_path / "none"), env=env)
    assert result.code == 2, result
    assert result.out == ""
    assert message in result.err
    assert "Traceback" not in result.err


def test_usage_and_file_errors(world: World, env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("--json", "export", "messages", *world.where, env=env)
    assert result.code == 2
    assert one_line(result.err) == (
        "zapctl: --json needs -o FILE (without it the export itself goes to stdout)"
    )
    missing = tmp_path / "no-such-dir" / "x.csv"
    result = run_cli("export", "messages", "-o", str(missing), *world.where, env=env)
    assert result.code == 1
    assert one_line(result.err).startswith(f"zapctl: cannot write {missing}")
    # An unknown company never leaves a partial file behind.
    target = tmp_path / "x.csv"
    result = run_cli(
        "export", "messages", "--company", str(uuid.UUID(int=1)), "-o", str(target), *world.where,
        env=env,
    )  # fmt: skip
    assert result.code == 3
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_no_database(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("export", "messages", "--state-dir", str(tmp_path / "nothing"), env=env)
    assert result.code == 1
    assert "no database at" in one_line(result.err)


def test_bom_for_excel(world: World, env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "msgs.csv"
    args = ["export", "messages", "--company", CNPJ_A, *world.where]
    code, _, err = run_cli(*args, "--bom", "-o", str(target), env=env)
    assert (code, err) == (0, "")
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfid,") and raw.count(b"\xef\xbb\xbf") == 1
    # Excel pt-BR decodes it as UTF-8 thanks to the mark: the accents survive.
    rows = read_csv(raw.decode("utf-8-sig"))
    assert any("ação" in r["body"] for r in rows)
    # To stdout too; without --bom nothing changes.
    piped = subprocess.run(
        [str(ZAPCTL), *args, "--bom"], env=env, capture_output=True, check=True
    ).stdout
    assert piped.startswith(b"\xef\xbb\xbf")
    plain = subprocess.run([str(ZAPCTL), *args], env=env, capture_output=True, check=True).stdout
    assert not plain.startswith(b"\xef\xbb\xbf")
    # JSON Lines never take one: a usage error, nothing written.
    code, _, err = run_cli(*args, "--format", "jsonl", "--bom", "-o", str(tmp_path / "x"), env=env)
    assert code == 2 and "--bom is for CSV" in err
    assert not (tmp_path / "x").exists()
