"""LGPD from the command line: `client export`, `client erase`, and retention (`purge`).

Real console scripts on a seeded database (tests/zapctl/test_export.py `seed`), on
SQLite and PostgreSQL. Every erasure is checked in the database, row by row.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import one_line, run_cli
from tests.zapctl.test_export import (
    CNPJ_A,
    CNPJ_B,
    MESSAGES_A,
    PHONE_1,
    PHONE_1_OLD,
    PHONE_2,
    TRICKY,
    World,
    cli_env,
    pg_or_sqlite_url,  # noqa: F401 - a fixture, used by name
    seed,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home")


@pytest.fixture
def world(database_url: str, tmp_path: Path, env: dict[str, str]) -> World:
    """A freshly seeded instance per test (these tests change it)."""
    return seed(tmp_path, database_url, env)


@pytest.fixture(scope="module")
def shared_world(pg_or_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> World:  # noqa: F811
    """One seeded instance per backend for the tests that change nothing."""
    tmp = tmp_path_factory.mktemp("lgpd")
    return seed(tmp, pg_or_sqlite_url, cli_env(tmp / "home"))


async def _load(world: World, model_name: str, **where: Any) -> list[Any]:
    from sqlalchemy import select

    from zapd.db import models
    from zapd.db.engine import create_engine, session_factory

    model = getattr(models, model_name)
    engine = create_engine(world.url)
    try:
        async with session_factory(engine)() as db:
            stmt = select(model)
            for key, value in where.items():
                column = getattr(model, key)
                stmt = stmt.where(column.in_(value) if isinstance(value, list) else column == value)
            return list((await db.scalars(stmt)).all())
    finally:
        await engine.dispose()


def load(world: World, model_name: str, **where: Any) -> list[Any]:
    """Return the rows of a model matching `where` (lists mean IN), read directly."""
    rows: list[Any] = asyncio.run(_load(world, model_name, **where))
    return rows


def one(world: World, model_name: str, row_id: uuid.UUID) -> Any:
    rows = load(world, model_name, id=row_id)
    return rows[0] if rows else None


# --------------------------------------------------------------------------- export


def test_client_export(shared_world: World, env: dict[str, str], tmp_path: Path) -> None:
    world = shared_world
    ids = world.ids
    # The old 8-digit spelling, national format: the same person.
    result = run_cli(
        "--json", "client", "export", "(11) 8765-4321", "--company", CNPJ_A, *world.where, env=env
    )
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["format"] == "zap.lgpd.client.v1"
    assert doc["company"] == {"id": str(ids["company_a"]), "name": "Acme Ltda", "cnpj": CNPJ_A}
    client = doc["client"]
    assert client["id"] == str(ids["c1"])
    assert (client["name"], client["email"], client["phone"]) == (
        "Maria Silva",
        "maria@example.com",
        PHONE_1,
    )
    assert client["custom_fields"] == {"cpf": "123.456.789-00"}
    assert sorted(i["value"] for i in doc["identities"]) == sorted(
        [PHONE_1, PHONE_1_OLD, "99887766554433@lid"]
    )
    assert [t["name"] for t in doc["tags"]] == ["VIP"]
    assert [c["id"] for c in doc["chats"]] == [str(ids["chat1"])]
    tickets = {t["number"]: t for t in doc["tickets"]}
    assert set(tickets) == {1, 2}
    assert tickets[1]["department_name"] == "Vendas"
    assert tickets[1]["status"] == 2  # CLOSED
    messages = {m["id"]: m for m in doc["messages"]}
    mine = ("msg_in", "msg_out", "msg_note", "msg_img", "msg_pdf1", "msg_jpg", "msg_queued")
    assert set(messages) == {str(ids[n]) for n in mine}
    assert messages[str(ids["msg_in"])]["body"] == TRICKY
    media = {m["id"]: m for m in doc["media"]}
    assert set(media) == {str(ids[n]) for n in ("m1", "m2", "m3")}
    assert media[str(ids["m1"])]["filename"] == "rg-maria.png"
    assert "storage_key" not in media[str(ids["m1"])]
    audit_ids = {a["id"] for a in doc["audit"]}
    assert audit_ids == {str(ids[n]) for n in ("audit_create", "audit_send", "audit_media")}

    # To a private file, with a summary on stdout.
    target = tmp_path / "titular.json"
    code, out, err = run_cli(
        "client", "export", PHONE_1, "--company", CNPJ_A, "-o", str(target), *world.where, env=env
    )
    assert (code, err) == (0, "")
    assert out == (f"wrote the data of client {ids['c1']} (7 messages, 2 tickets) to {target}\n")
    assert json.loads(target.read_text(encoding="utf-8"))["client"]["id"] == str(ids["c1"])
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([PHONE_1], 2, f"is a client of 2 companies ({CNPJ_A}, {CNPJ_B}): name one with --company"),
        (["abc"], 1, "invalid phone number 'abc'"),
        (["+55 11 1234"], 1, "invalid phone number"),
        (["+5511955554444"], 3, "no client with phone +5511955554444"),
        ([PHONE_2, "--company", CNPJ_B], 3, f"no client with phone {PHONE_2} in company {CNPJ_B}"),
        ([PHONE_2, "--company", str(uuid.UUID(int=3))], 3, "not found"),
    ],
)
def test_client_export_errors(
    shared_world: World, env: dict[str, str], args: list[str], code: int, message: str
) -> None:
    for verb in ("export", "erase"):
        extra = ["--yes"] if verb == "erase" else []
        result = run_cli("client", verb, *args, *extra, *shared_world.where, env=env)
        assert result.code == code, (verb, result)
        assert result.out == ""
        assert message in one_line(result.err)


# --------------------------------------------------------------------------- erase


def test_erase_needs_confirmation(shared_world: World, env: dict[str, str]) -> None:
    world = shared_world
    result = run_cli("client", "erase", PHONE_1, "--company", CNPJ_A, *world.where, env=env)
    assert result.code == 2
    assert one_line(result.err) == "zapctl: refusing without confirmation: pass --yes (no terminal)"
    assert one(world, "Client", world.ids["c1"]).name == "Maria Silva"


def test_client_erase(world: World, env: dict[str, str]) -> None:
    ids = world.ids
    before = {m.id: m for m in load(world, "Message", id=[ids[n] for n in MESSAGES_A])}
    result = run_cli(
        "--json", "client", "erase", PHONE_1_OLD, "--company", "11.222.333/0001-81", "--yes",
        *world.where, env=env,
    )  # fmt: skip
    assert result.code == 0, result.err
    report = result.json()
    assert report == {
        "client_id": str(ids["c1"]),
        "company_id": str(ids["company_a"]),
        "raw_events_deleted": 2,
        "messages": 7,
        "media_deleted": 2,
        "events_redacted": 1,
        "audit_redacted": 3,
        "chats": 1,
        "tickets": 2,
        "tickets_closed": 1,  # the open one: closed with a system line
        "identities_deleted": 3,
        "tags_removed": 1,
        "files_deleted": 1,
    }

    from shared.enums import OutboxState

    c1 = one(world, "Client", ids["c1"])
    assert (c1.name, c1.profile_name, c1.email, c1.notes, c1.phone) == (None,) * 5
    assert (c1.wa_user_id, c1.lid, c1.custom_fields) == (None, None, {})
    assert c1.erased_at is not None
    assert abs(c1.erased_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert load(world, "ClientIdentity", client_id=ids["c1"]) == []
    assert load(world, "ClientTag", client_id=ids["c1"]) == []
    chat = one(world, "Chat", ids["chat1"])
    assert (chat.name, chat.wa_chat_id) == (None, f"erased:{ids['chat1']}")

    # Messages stay, anonymous: same statuses and times, no text, no files.
    after = {m.id: m for m in load(world, "Message", id=[ids[n] for n in MESSAGES_A])}
    assert set(after) == set(before)
    mine = {ids[n] for n in MESSAGES_A if not n.startswith("msg_c2")}
    for mid, m in after.items():
        old = before[mid]
        assert (m.status, m.direction, m.created_at, m.ticket_id) == (
            old.status,
            old.direction,
            old.created_at,
            old.ticket_id,
        )
        if mid in mine:
            assert (m.body, m.media_id, m.extra) == (None, None, {}), mid
        else:
            assert (m.body, m.media_id) == (old.body, old.media_id)  # João's untouched
    assert {t.id for t in load(world, "Ticket", client_id=ids["c1"])} == {ids["t1"], ids["t2"]}
    assert load(world, "Outbox", message_id=ids["msg_queued"])[0].state == OutboxState.CANCELLED

    # Media: m1 (only hers) gone with its file; m2 (shared with João) stays; m3's row goes
    # but its file stays, company B's m4 holds the same content.
    assert one(world, "Media", ids["m1"]) is None
    assert not (world.media_dir / world.keys["m1"]).exists()
    assert one(world, "Media", ids["m2"]) is not None
    assert (world.media_dir / world.keys["m2"]).exists()
    assert one(world, "Media", ids["m3"]) is None
    assert (world.media_dir / world.keys["m3"]).exists()

    # Raw inbound events that named her are gone; others stay.
    assert one(world, "WebhookEvent", ids["raw_c1_msg"]) is None
    assert one(world, "WebhookEvent", ids["raw_c1_contact"]) is None
    assert one(world, "WebhookEvent", ids["raw_c2_msg"]) is not None
    assert one(world, "WebhookEvent", ids["raw_failed"]) is not None
    # Realtime log: her message text is cleared.
    assert one(world, "Event", ids["ev_c1"]).data["body"] is None
    assert one(world, "Event", ids["ev_c2"]).data["body"] == "Oi, sou o João"

    # Audit rows that quoted her are redacted; a client.erase row records it.
    assert one(world, "AuditLog", ids["audit_create"]).data == {
        "redacted": "lgpd",
        "fields": ["name", "phone"],
    }
    send = one(world, "AuditLog", ids["audit_send"]).data
    assert (send["to"], send["body_length"]) == (None, 15)
    assert one(world, "AuditLog", ids["audit_media"]).data["changes"]["filename"] is None
    assert one(world, "AuditLog", ids["audit_c2"]).data == {
        "changes": {"name": [None, "João Souza"]}
    }
    erase_rows = load(world, "AuditLog", action="client.erase")
    assert len(erase_rows) == 1
    row = erase_rows[0]
    assert (row.user_id, row.entity_id, row.company_id) == (None, ids["c1"], ids["company_a"])
    assert row.data["by"] == "zapctl"
    assert row.data["messages"] == 7

    # The same person at company B, and João, are untouched.
    c3 = one(world, "Client", ids["c3"])
    assert (c3.name, c3.phone) == ("Maria em Beta", PHONE_1)
    assert one(world, "Client", ids["c2"]).phone == PHONE_2

    # She is gone: both commands now answer "not found"; the counts did not change but
    # for the system line that closed her open ticket.
    for verb, extra in (("export", []), ("erase", ["--yes"])):
        result = run_cli(
            "client", verb, PHONE_1, "--company", CNPJ_A, *extra, *world.where, env=env
        )  # fmt: skip
        assert result.code == 3, result
        assert f"no client with phone {PHONE_1} in company {CNPJ_A}" in one_line(result.err)
    code, out, err = run_cli(
        "export", "messages", "--company", CNPJ_A, "--format", "jsonl", *world.where, env=env
    )
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == len(MESSAGES_A) + 1
    assert [x["body"] for x in lines if x["id"] not in {str(ids[n]) for n in MESSAGES_A}] == [
        "Cliente apagado (LGPD): atendimento encerrado pelo sistema."
    ]


# --------------------------------------------------------------------------- retention


def test_purge_dry_run_then_apply(world: World, env: dict[str, str]) -> None:
    ids = world.ids
    result = run_cli("--json", "purge", "--older-than", "365d", *world.where, env=env)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["applied"] is False
    assert doc["counts"] == {
        "tickets": 2,  # t1 (company A) and t4 (company B), closed 400 days ago
        "messages": 5,  # t1's four and t4's one
        "message_status_history": 0,
        "assignments": 0,
        "webhook_events": 1,  # raw_old (processed); raw_old_failed is kept
        "events": 1,
        "session_logs": 1,
    }
    assert one(world, "Ticket", ids["t1"]) is not None  # a dry run deletes nothing

    code, out, err = run_cli(
        "purge", "--older-than", "1y", "--company", CNPJ_A, *world.where, env=env
    )
    assert (code, err) == (0, "")
    assert "dry run" in out and "closed tickets" in out and "add --apply" in out

    result = run_cli(
        "--json", "purge", "--older-than", "12m", "--company", CNPJ_A, "--apply", "--batch", "2",
        *world.where, env=env,
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["applied"] is True
    assert doc["deleted"] == {
        "tickets": 1,
        "messages": 4,
        "webhook_events": 1,
        "events": 1,
        "session_logs": 1,
    }
    assert one(world, "Ticket", ids["t1"]) is None
    assert load(world, "Message", ticket_id=ids["t1"]) == []
    assert one(world, "Message", ids["msg_in"]) is None
    assert one(world, "Ticket", ids["t2"]) is not None  # open
    assert one(world, "Ticket", ids["t4"]) is not None  # company B
    assert one(world, "WebhookEvent", ids["raw_old"]) is None
    assert one(world, "WebhookEvent", ids["raw_old_failed"]) is not None
    assert one(world, "Event", ids["ev_c1"]) is None
    audit_rows = load(world, "AuditLog", action="retention.purge")
    assert len(audit_rows) == 1
    assert audit_rows[0].company_id == ids["company_a"]
    assert audit_rows[0].user_id is None
    assert audit_rows[0].data["deleted"]["messages"] == 4
    assert audit_rows[0].data["by"] == "zapctl"

    # Nothing left to purge for company A.
    again = run_cli(
        "--json", "purge", "--older-than", "365d", "--company", CNPJ_A, *world.where, env=env
    )
    assert again.json()["counts"]["tickets"] == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "not a duration like 365d"),
        ("10", "not a duration"),
        ("0d", "at least 1"),
        ("-3d", "not a duration"),
        ("999999y", "reaches too far back"),
    ],
)
def test_purge_bad_duration(env: dict[str, str], tmp_path: Path, value: str, message: str) -> None:
    result = run_cli("purge", "--older-than", value, "--state-dir", str(tmp_path), env=env)
    assert result.code == 2, result
    assert message in one_line(result.err)


def test_parse_duration_calendar_units() -> None:
    from zapctl.maintenance import parse_duration

    now = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    assert parse_duration("365d", now) == now - timedelta(days=365)
    assert parse_duration("12w", now) == now - timedelta(weeks=12)
    assert parse_duration("1m", now) == datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert parse_duration("6 months", now) == datetime(2023, 9, 30, 12, 0, tzinfo=UTC)
    assert parse_duration("1y", datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2023, 2, 28, tzinfo=UTC
    )
    assert parse_duration("2Y", now) == datetime(2022, 3, 31, 12, 0, tzinfo=UTC)
