"""`zapctl quick-reply | tag | token ...` against a real zapd, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers import child_env, free_port, one_line
from tests.zapctl.instance import (
    Instance,
    Tenant,
    check_help,
    failed,
    instance_fixture,
    ok,
    run_parallel,
)
from zapctl.errors import CliError
from zapctl.token import parse_expires


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def inst(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    yield from instance_fixture(request, tmp_path_factory)


def add_dept(inst: Instance, t: Tenant, name: str) -> str:
    """Create a department over HTTP (fast setup); return its id."""
    return str(
        inst.http("POST", "/api/v1/departments", json={"name": name, "company_id": t.id})["id"]
    )


# --------------------------------------------------------------------------- quick replies


def test_quick_replies(inst: Instance) -> None:
    t = inst.tenant()
    fin = add_dept(inst, t, "Financeiro")
    ola = inst.json("quick-reply", "add", "ola", "Olá! Como posso ajudar?", env=t.admin)
    assert (ola["shortcut"], ola["department_id"], ola["company_id"]) == ("ola", None, t.id)
    boleto = inst.ok(
        "quick-reply", "add", "/boleto", "Segue a segunda via do boleto.", "--dept", "financeiro",
        env=t.admin,
    )  # fmt: skip
    assert boleto.out.startswith("added quick reply /boleto  id ")
    boleto_id = boleto.out.split()[-1]

    listed, table, prefix, in_dept, agent_list, dup, bad, agent_add, unknown = inst.many(
        (t.admin, ["--json", "quick-reply", "list"]),
        (t.admin, ["quick-reply", "list"]),
        (t.admin, ["--json", "quick-reply", "list", "--q", "/bol"]),
        (t.admin, ["--json", "quick-reply", "list", "--dept", "Financeiro"]),
        (t.agent, ["--json", "quick-reply", "list"]),  # the agent works no department
        (t.admin, ["quick-reply", "add", "ola", "Outro texto"]),
        (t.admin, ["quick-reply", "add", "Com Espaço", "x"]),
        (t.agent, ["quick-reply", "add", "oi", "Oi!"]),
        (t.admin, ["quick-reply", "remove", "/nao-existe"]),
    )
    rows = ok(listed).json()
    assert [(r["shortcut"], r["department_id"]) for r in rows] == [("boleto", fin), ("ola", None)]
    lines = ok(table).out.splitlines()
    assert lines[0].split() == ["SHORTCUT", "DEPARTMENT", "BODY", "ID"]
    assert lines[1].startswith("/boleto") and "Financeiro" in lines[1]
    assert "Segue a segunda via do boleto." in lines[1]
    assert lines[2].startswith("/ola") and "(all)" in lines[2]
    assert lines[0].index("BODY") == lines[1].index("Segue") == lines[2].index("Olá")
    assert [r["shortcut"] for r in ok(prefix).json()] == ["boleto"]
    assert len(ok(in_dept).json()) == 2  # company-wide ones count in every department
    assert [r["shortcut"] for r in ok(agent_list).json()] == ["ola"]
    assert failed(dup, 1) == "zapctl: the shortcut /ola is already in use there"
    assert failed(bad, 1).startswith("zapctl: shortcut: ")
    assert failed(agent_add, 4) == "zapctl: this needs the ADMIN role or higher"
    assert failed(unknown, 3) == "zapctl: no quick reply /nao-existe"

    upd = inst.json("quick-reply", "update", "/ola", "--body", "Oi! Tudo bem?", env=t.admin)
    assert (upd["id"], upd["body"], upd["shortcut"]) == (ola["id"], "Oi! Tudo bem?", "ola")
    moved = inst.json(
        "quick-reply", "update", boleto_id, "--shortcut", "2via", "--dept", "none", env=t.admin
    )
    assert (moved["shortcut"], moved["department_id"]) == ("2via", None)
    # The same shortcut may exist company-wide and in a department: then it needs the id.
    inst.ok("quick-reply", "add", "ola", "Olá, financeiro!", "--dept", fin, env=t.admin)
    ambiguous, foreign, gone = inst.many(
        (t.admin, ["quick-reply", "remove", "ola"]),
        (inst.tenant().admin, ["quick-reply", "update", ola["id"], "--body", "x"]),
        (t.admin, ["--json", "quick-reply", "remove", "/2via"]),
    )
    assert failed(ambiguous, 2).startswith("zapctl: /ola exists in 2 places")
    assert failed(foreign, 3) == "zapctl: quick reply not found"
    assert ok(gone).json() == {"id": boleto_id, "deleted": True}
    assert failed(inst.cli("quick-reply", "remove", boleto_id, env=t.admin), 3) == (
        "zapctl: quick reply not found"
    )


# --------------------------------------------------------------------------- tags


def test_tags(inst: Instance) -> None:
    t = inst.tenant()
    vip = inst.json("tag", "add", "VIP", "--color", "#FFD700", env=t.supervisor)
    assert (vip["name"], vip["color"], vip["company_id"]) == ("VIP", "#ffd700", t.id)
    listed, table, dup, color, agent, unknown, root_add = inst.many(
        (t.agent, ["--json", "tag", "list"]),
        (t.admin, ["tag", "list"]),
        (t.admin, ["tag", "add", "VIP"]),
        (t.admin, ["tag", "add", "Azul", "--color", "blue"]),
        (t.agent, ["tag", "add", "Novo"]),
        (t.admin, ["tag", "remove", "nao-existe"]),
        ["--json", "tag", "add", "Atacado", "--company", t.cnpj],
    )
    assert [x["name"] for x in ok(listed).json()] == ["VIP"]
    lines = ok(table).out.splitlines()
    assert lines[0].split() == ["NAME", "COLOR", "ID"]
    assert lines[1].split() == ["VIP", "#ffd700", vip["id"]]
    assert failed(dup, 1) == "zapctl: a tag named 'VIP' already exists"
    assert failed(color, 1) == "zapctl: color: color must look like #RRGGBB (hex digits)"
    assert failed(agent, 4) == "zapctl: this needs the SUPERVISOR role or higher"
    assert failed(unknown, 3) == "zapctl: no tag 'nao-existe'"
    assert ok(root_add).json()["company_id"] == t.id

    upd = inst.json("tag", "update", "vip", "--name", "Cliente VIP", env=t.admin)
    assert (upd["id"], upd["name"], upd["color"]) == (vip["id"], "Cliente VIP", "#ffd700")
    removed = inst.ok("tag", "remove", "cliente vip", env=t.supervisor)  # by name, any case
    assert removed.out == "removed tag Cliente VIP\n"
    assert [x["name"] for x in inst.json("tag", "list", env=t.admin)] == ["Atacado"]
    assert failed(inst.cli("tag", "remove", vip["id"], env=t.admin), 3) == "zapctl: tag not found"


# --------------------------------------------------------------------------- API tokens


def test_tokens(inst: Instance, tmp_path: Path) -> None:
    t = inst.tenant()
    made = inst.ok(
        "token", "create", "erp-sync", "--role", "supervisor", "--expires", "30d", env=t.admin
    )
    first, second, third = made.out.splitlines()
    assert first.startswith("created API token erp-sync (supervisor)  id ")
    secret = second.removeprefix("secret (shown only now, keep it safe): ")
    assert secret.startswith("zap_")
    assert third == f"use it with:  export ZAP_TOKEN={secret}"
    token_id = first.split()[-1]

    # The secret works as ZAP_TOKEN, with the token's role.
    env = child_env(tmp_path / "script", ZAP_TOKEN=secret)
    tag, user_add, listed, table, by_agent, bad_role = inst.many(
        (env, ["--json", "tag", "add", "via-token"]),
        (env, ["user", "add", "x@acme.com.br", "--name", "X", "--role", "agent", "--generate"]),
        (t.admin, ["--json", "token", "list"]),
        (t.admin, ["token", "list"]),
        (t.agent, ["token", "create", "mine"]),
        (t.admin, ["token", "create", "x", "--role", "owner"]),
    )
    assert ok(tag).json()["company_id"] == t.id
    assert failed(user_add, 4) == "zapctl: this needs the ADMIN role or higher"
    (row,) = ok(listed).json()
    assert (row["id"], row["name"], row["role"], row["revoked_at"]) == (
        token_id,
        "erp-sync",
        "SUPERVISOR",  # --json names enum members; the API keeps the integer
        None,
    )
    assert "token" not in row  # never the secret again
    expires = datetime.fromisoformat(row["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    lines = ok(table).out.splitlines()
    assert lines[0].split() == ["NAME", "PREFIX", "ROLE", "STATE", "EXPIRES", "LAST", "USED", "ID"]
    assert "erp-sync" in lines[1] and "supervisor" in lines[1] and " active " in lines[1]
    assert secret not in table.out
    assert failed(by_agent, 4) == "zapctl: this needs the ADMIN role or higher"
    assert bad_role.code == 2 and "--role" in bad_role.err

    revoked = inst.json("token", "revoke", "erp-sync", env=t.admin)  # by name
    assert revoked["id"] == token_id and revoked["revoked_at"] is not None
    after, again, unknown, past = inst.many(
        (env, ["tag", "list"]),
        (t.admin, ["token", "revoke", "erp-sync"]),  # names only match live tokens
        (t.admin, ["token", "revoke", str(uuid.uuid4())]),
        (t.admin, ["token", "create", "old", "--expires", "2020-01-01"]),
    )
    assert after.code == 4 and "Traceback" not in after.err
    assert failed(again, 3) == "zapctl: no API token 'erp-sync'"
    assert failed(unknown, 3) == "zapctl: API token not found"
    assert failed(past, 1) == "zapctl: expires_at must be in the future"
    listed_after = inst.ok("token", "list", env=t.admin).out
    assert " revoked " in listed_after


def test_tokens_json_and_global_admins(inst: Instance) -> None:
    t = inst.tenant()
    doc = inst.json("token", "create", "backup", "--company", t.id, "--expires", "2099-12-31")
    assert doc["company_id"] == t.id
    assert doc["role"] == "AGENT"  # by default
    assert doc["token"].startswith("zap_")
    assert doc["expires_at"].startswith("2099-12-3")  # local midnight, in UTC
    assert failed(inst.cli("token", "create", "loose"), 2) == (  # a usage mistake
        "zapctl: missing --company: a global admin must say which company (name, id or CNPJ)"
    )


# --------------------------------------------------------------------------- no server needed


def test_usage_errors_and_daemon_down(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_whatever", ZAP_SERVER=dead)
    down = f"cannot reach zapd at {dead} — is it running?"
    lines = [
        (["token", "create", "x", "--expires", "tomorrow"], 2,
         "invalid --expires 'tomorrow': give an ISO date (2026-12-31), date-time "
         "(2026-12-31T18:00-03:00) or a span like 30d, 12h, 2w"),
        (["quick-reply", "update", "/ola"], 2,
         "nothing to change: give --body, --shortcut or --dept"),
        (["tag", "update", "vip"], 2, "nothing to change: give --name or --color"),
        (["tag", "list"], 5, down),
        (["token", "list"], 5, down),
        (["quick-reply", "remove", "/ola"], 5, down),
    ]  # fmt: skip
    clicks = [["quick-reply", "add", "ola"], ["tag", "add"], ["token", "revoke"]]
    results = run_parallel(env, *[c[0] for c in lines], *clicks)
    for (args, code, message), res in zip(lines, results, strict=False):
        assert res.code == code, (args, res.err)
        assert one_line(res.err) == f"zapctl: {message}"
    for args, res in zip(clicks, results[len(lines) :], strict=True):
        assert res.code == 2 and "Missing argument" in res.err, (args, res.err)


def test_help_has_examples() -> None:
    check_help("quick-reply", {"add", "list", "update", "remove"})
    check_help("tag", {"add", "list", "update", "remove"})
    check_help("token", {"create", "list", "revoke"})


def test_parse_expires() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=-3)))
    assert parse_expires("30d", now) == now + timedelta(days=30)
    assert parse_expires("12h", now) == now + timedelta(hours=12)
    assert parse_expires("2w", now) == now + timedelta(weeks=2)
    aware = parse_expires("2026-12-31T18:00-03:00")
    assert aware.utcoffset() == timedelta(hours=-3) and aware.hour == 18
    naive = parse_expires("2026-12-31")  # local midnight
    assert naive.tzinfo is not None and (naive.hour, naive.minute) == (0, 0)
    for bad in ("tomorrow", "30x", "", "2026-13-01"):
        with pytest.raises(CliError) as err:
            parse_expires(bad, now)
        assert err.value.code == 2
