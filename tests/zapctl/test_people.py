"""`zapctl dept ...` and `zapctl user ...` against a real zapd, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import child_env, free_port, one_line, run_cli
from tests.zapctl.instance import (
    PASSWORD,
    Instance,
    Tenant,
    check_help,
    failed,
    instance_fixture,
    ok,
    run_on_tty,
    run_parallel,
)
from zapctl.dept import format_hours, parse_hours
from zapctl.errors import CliError


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


def can_log_in(inst: Instance, email: str, password: str) -> int:
    """Return the status of a login attempt."""
    resp = httpx.post(
        inst.server + "/api/v1/auth/login",
        json={"email": email, "password": password},
        timeout=30,
    )
    return resp.status_code


# --------------------------------------------------------------------------- departments


def test_dept_add_list_show_update_remove(inst: Instance) -> None:
    t = inst.tenant()
    fin = inst.json(
        "dept", "add", "Financeiro", "--keyword", "boleto", "--keyword", "pagamento",
        "--hours", "mon-fri 08:00-12:00,13:00-18:00", "--hours", "sab 9:00-13:00",
        "--auto-assign", "round-robin", "--timezone", "America/Recife", "--order", "1",
        env=t.admin,
    )  # fmt: skip
    week = [["08:00", "12:00"], ["13:00", "18:00"]]
    assert fin["business_hours"] == {
        "mon": week,
        "tue": week,
        "wed": week,
        "thu": week,
        "fri": week,
        "sat": [["09:00", "13:00"]],
    }
    assert fin["slug"] == "financeiro"
    assert fin["keywords"] == ["boleto", "pagamento"]
    assert fin["auto_assign"] == "ROUND_ROBIN"  # by name in --json (1 on the wire)
    assert fin["timezone"] == "America/Recife"
    assert fin["company_id"] == t.id
    sup = inst.ok(
        "dept", "add", "Suporte Técnico", "--timeout", "300", "--fallback", "FINANCEIRO",
        "--greeting", "Olá! Suporte aqui.", "--order", "2", env=t.admin,
    )  # fmt: skip
    assert sup.out.startswith("created department Suporte Técnico (slug suporte-tecnico)  id ")

    listed, table, shown, dup, unknown, agent_add, agent_list, bad_fallback = inst.many(
        (t.admin, ["--json", "dept", "list"]),
        (t.admin, ["dept", "list"]),
        (t.admin, ["dept", "show", "suporte tecnico"]),  # name, case and accents ignored
        (t.admin, ["dept", "add", "Financeiro", "--slug", "fin-2"]),
        (t.admin, ["dept", "show", "vendas"]),
        (t.agent, ["dept", "add", "Vendas"]),
        (t.agent, ["--json", "dept", "list"]),
        (t.admin, ["dept", "add", "Vendas", "--fallback", "nao-existe"]),
    )
    rows = ok(listed).json()
    assert [d["name"] for d in rows] == ["Financeiro", "Suporte Técnico"]
    assert rows[1]["fallback_department_id"] == fin["id"]
    assert rows[1]["response_timeout_seconds"] == 300
    lines = ok(table).out.splitlines()
    assert lines[0].split() == [
        "#",
        "NAME",
        "SLUG",
        "ACTIVE",
        "AUTO-ASSIGN",
        "HOURS",
        "KEYWORDS",
        "ID",
    ]
    assert "mon-fri 08:00-12:00,13:00-18:00; sat 09:00-13:00" in lines[1]
    assert "round-robin" in lines[1] and "boleto, pagamento" in lines[1]
    assert "always open" in lines[2]
    assert lines[0].index("SLUG") == lines[1].index("financeiro") == lines[2].index("suporte")
    out = ok(shown).out
    assert "fallback:             Financeiro\n" in out
    assert "response timeout:     300 s\n" in out
    assert "greeting:             Olá! Suporte aqui.\n" in out
    assert failed(dup, 1) == "zapctl: a department with name 'Financeiro' already exists"
    assert failed(unknown, 3) == "zapctl: no department 'vendas'"
    assert failed(agent_add, 4) == "zapctl: this needs the ADMIN role or higher"
    assert len(ok(agent_list).json()) == 2  # every role may read them
    assert failed(bad_fallback, 3) == "zapctl: no department 'nao-existe'"

    upd = inst.json(
        "dept", "update", "suporte-tecnico", "--name", "Suporte", "--hours", "always",
        "--timeout", "0", "--fallback", "none", "--greeting", "", "--inactive",
        "--auto-assign", "least-loaded", env=t.admin,
    )  # fmt: skip
    assert upd["name"] == "Suporte"
    assert upd["slug"] == "suporte-tecnico"  # kept
    assert upd["business_hours"] == {}
    assert upd["response_timeout_seconds"] is None
    assert upd["fallback_department_id"] is None
    assert upd["greeting"] is None
    assert upd["active"] is False
    assert upd["auto_assign"] == "LEAST_LOADED"
    # Only what was given changed.
    fin2 = inst.json("dept", "update", fin["id"], "--no-keywords", env=t.admin)
    assert fin2["keywords"] == []
    assert fin2["business_hours"] == fin["business_hours"]

    # Removing asks first: no terminal and no --yes is a usage error.
    assert failed(inst.cli("dept", "remove", "suporte", env=t.admin), 2) == (
        "zapctl: refusing without confirmation: pass --yes (no terminal)"
    )
    tty = run_on_tty(["--server", inst.server, "dept", "remove", "Suporte"], t.admin, "y\n")
    assert tty.code == 0, tty.err
    assert "Remove department Suporte (suporte-tecnico)? [y/N]" in tty.err
    assert tty.out == "removed department Suporte\n"
    gone, again = inst.many(
        (t.admin, ["--json", "dept", "remove", "financeiro", "--yes"]),
        (t.admin, ["dept", "show", upd["id"]]),
    )
    assert ok(gone).json() == {"id": fin["id"], "deleted": True}
    assert failed(again, 3) == "zapctl: department not found"


def test_departments_of_other_companies_and_global_admins(inst: Instance) -> None:
    a, b = inst.tenant(), inst.tenant()
    a_dep = add_dept(inst, a, "Comercial")
    add_dept(inst, b, "Comercial")
    foreign, ambiguous, named, by_root = inst.many(
        (b.admin, ["dept", "show", a_dep]),
        ["dept", "show", "comercial"],
        ["--json", "dept", "show", "comercial", "--company", a.cnpj],
        ["--json", "dept", "add", "Pós-venda", "--company", b.id],
    )
    assert failed(foreign, 3) == "zapctl: department not found"
    assert failed(ambiguous, 2) == (
        "zapctl: 'comercial' names departments of 2 companies: pass --company or the id"
    )
    assert ok(named).json()["id"] == a_dep
    made = ok(by_root).json()
    assert (made["company_id"], made["slug"]) == (b.id, "pos-venda")
    # A global admin must say which company a department goes to.
    assert failed(inst.cli("dept", "add", "Solta"), 2) == (  # a usage mistake: names the flag
        "zapctl: missing --company: a global admin must say which company (name, id or CNPJ)"
    )


# --------------------------------------------------------------------------- users


def test_user_add_list_show_update(inst: Instance) -> None:
    t = inst.tenant()
    fin = add_dept(inst, t, "Financeiro")
    sup = add_dept(inst, t, "Suporte Técnico")
    ana = inst.json(
        "user", "add", "Ana@Acme.com.br", "--name", "Ana Souza", "--role", "agent",
        "--dept", "financeiro", "--dept", "Suporte Técnico", "--max-tickets", "3", "--generate",
        env=t.admin,
    )  # fmt: skip
    assert ana["email"] == "ana@acme.com.br"
    assert ana["role"] == "AGENT"  # by name in --json (2 on the wire)
    assert ana["company_id"] == t.id
    assert ana["max_concurrent_tickets"] == 3
    assert sorted(ana["department_ids"]) == sorted([fin, sup])
    generated = ana["password"]
    assert len(generated) >= 12
    assert can_log_in(inst, "ana@acme.com.br", generated) == 200

    bia = inst.ok(
        "user", "add", "bia@acme.com.br", "--name", "Bia", "--role", "supervisor",
        "--password", "bia-pass-123", env=t.admin,
    )  # fmt: skip
    assert bia.out.startswith("added supervisor Bia <bia@acme.com.br>  id ")
    assert "password" not in bia.out  # a chosen password is never echoed
    assert can_log_in(inst, "bia@acme.com.br", "bia-pass-123") == 200

    agents, table, in_fin, show, show_json, search = inst.many(
        (t.admin, ["--json", "user", "list", "--role", "agent"]),
        (t.admin, ["user", "list"]),
        (t.admin, ["--json", "user", "list", "--dept", "financeiro"]),
        (t.admin, ["user", "show", "ANA@acme.com.br"]),
        (t.supervisor, ["--json", "user", "show", ana["id"]]),
        (t.admin, ["--json", "user", "list", "--q", "souza", "--active"]),
    )
    assert {u["email"] for u in ok(agents).json()} == {"ana@acme.com.br", t.emails["agent"]}
    lines = ok(table).out.splitlines()
    assert lines[0].split() == ["E-MAIL", "NAME", "ROLE", "ACTIVE", "DEPARTMENTS", "MAX", "ID"]
    ana_line = next(x for x in lines if x.startswith("ana@acme.com.br"))
    assert "Ana Souza" in ana_line and " agent " in ana_line
    assert "Financeiro, Suporte Técnico" in ana_line or "Suporte Técnico, Financeiro" in ana_line
    assert lines[0].index("ROLE") == ana_line.index("agent")
    assert [u["email"] for u in ok(in_fin).json()] == ["ana@acme.com.br"]
    assert "e-mail:           ana@acme.com.br\n" in ok(show).out
    assert "max tickets:      3\n" in show.out
    assert ok(show_json).json()["id"] == ana["id"]
    assert [u["email"] for u in ok(search).json()] == ["ana@acme.com.br"]

    upd = inst.json(
        "user", "update", "ana@acme.com.br", "--role", "supervisor", "--max-tickets", "8",
        "--name", "Ana S.", env=t.admin,
    )  # fmt: skip
    assert (upd["role"], upd["max_concurrent_tickets"], upd["name"]) == ("SUPERVISOR", 8, "Ana S.")
    assert sorted(upd["department_ids"]) == sorted([fin, sup])  # untouched
    moved = inst.ok("user", "set-departments", ana["id"], "financeiro", env=t.admin)
    assert moved.out == "departments of ana@acme.com.br: Financeiro\n"
    none = inst.json("user", "set-departments", "ana@acme.com.br", "--none", env=t.admin)
    assert none["department_ids"] == []


def test_user_disable_enable_and_passwords(inst: Instance) -> None:
    t = inst.tenant()
    email = t.emails["agent"]
    off = inst.ok("user", "disable", email, env=t.admin)
    assert off.out == f"disabled (their logins end now): Agent <{email}>\n"
    assert can_log_in(inst, email, PASSWORD) != 200
    # Their live credentials died too.
    assert inst.cli("dept", "list", env=t.agent).code == 4
    on = inst.json("user", "enable", email, env=t.admin)
    assert on["active"] is True
    assert can_log_in(inst, email, PASSWORD) == 200

    gen = inst.ok("user", "reset-password", email, "--generate", env=t.admin)
    first, second = gen.out.splitlines()
    assert first == f"password of {email} changed (their logins end now)"
    assert second.startswith("password: ") and second.endswith("  (shown only now)")
    new = second.split()[1]
    assert can_log_in(inst, email, new) == 200
    assert can_log_in(inst, email, PASSWORD) != 200
    doc = inst.json("user", "reset-password", email, "--password", "chosen-pass-1", env=t.admin)
    assert doc["generated"] is False and doc["password"] is None and doc["email"] == email
    assert can_log_in(inst, email, "chosen-pass-1") == 200


def test_user_errors(inst: Instance) -> None:
    t = inst.tenant()
    other = inst.tenant()
    results = inst.many(
        (t.admin, ["user", "add", t.emails["agent"], "--name", "X", "--role", "agent",
                   "--password", PASSWORD]),
        (t.admin, ["user", "show", "nobody@acme.com.br"]),
        (t.admin, ["user", "show", str(uuid.uuid4())]),
        (t.admin, ["user", "show", other.emails["admin"]]),
        (t.admin, ["user", "disable", "not-an-email"]),
        (t.agent, ["user", "add", "x@acme.com.br", "--name", "X", "--role", "agent",
                   "--generate"]),
        (t.supervisor, ["user", "update", t.emails["agent"], "--role", "admin"]),
        (t.admin, ["user", "add", "x@acme.com.br", "--name", "X", "--role", "agent",
                   "--generate", "--dept", "nao-existe"]),
        (t.admin, ["user", "update", t.emails["agent"], "--max-tickets", "500"]),
    )  # fmt: skip
    dup, no_email, no_id, foreign, garbage, agent, sup, no_dept, too_many = results
    assert failed(dup, 1) == f"zapctl: a user with e-mail {t.emails['agent']} already exists"
    assert failed(no_email, 3) == "zapctl: no user with e-mail nobody@acme.com.br"
    assert failed(no_id, 3) == "zapctl: user not found"
    assert failed(foreign, 3) == f"zapctl: no user with e-mail {other.emails['admin']}"
    assert failed(garbage, 3) == "zapctl: no user 'not-an-email': give an id or an e-mail"
    assert failed(agent, 4) == "zapctl: this needs the ADMIN role or higher"
    assert failed(sup, 4) == "zapctl: this needs the ADMIN role or higher"
    assert failed(no_dept, 3) == "zapctl: no department 'nao-existe'"
    assert failed(too_many, 1).startswith("zapctl: max_concurrent_tickets: ")
    # Nothing was created or changed.
    emails = {u["email"] for u in inst.json("user", "list", env=t.admin)}
    assert emails == set(t.emails.values())


def test_global_admin_adds_users_to_a_named_company(inst: Instance) -> None:
    t = inst.tenant()
    dep = add_dept(inst, t, "Recepção")
    doc = inst.json(
        "user", "add", "caio@acme.com.br", "--name", "Caio", "--role", "admin",
        "--company", t.cnpj, "--dept", "recepcao", "--password", PASSWORD,
    )  # fmt: skip
    assert doc["company_id"] == t.id
    assert doc["department_ids"] == [dep]
    msg = failed(
        inst.cli("user", "add", "dani@acme.com.br", "--name", "D", "--role", "agent", "--generate"),
        2,
    )
    assert (
        msg == "zapctl: missing --company: a global admin must say which company (name, id or CNPJ)"
    )


# --------------------------------------------------------------------------- no server needed


def test_usage_errors_and_local_checks(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_whatever", ZAP_SERVER=dead)
    cases = [
        (["user", "add", "a@b.com", "--name", "A"], "Missing option '--role'"),
        (["user", "add", "a@b.com", "--name", "A", "--role", "owner"], "--role"),
        (["user", "add", "--name", "A", "--role", "agent"], "Missing argument"),
        (["dept", "add"], "Missing argument"),
        (["dept", "add", "X", "--auto-assign", "random"], "--auto-assign"),
    ]
    for (args, needle), res in zip(cases, run_parallel(env, *[c[0] for c in cases]), strict=True):
        assert res.code == 2, (args, res.err)
        assert needle in res.err and "Traceback" not in res.err
    one = [
        (["user", "add", "a@b.com", "--name", "A", "--role", "agent"],
         "zapctl: missing --password or --generate (no terminal to prompt on)"),
        (["user", "add", "a@b.com", "--name", "A", "--role", "agent", "--password", "x",
          "--generate"], "zapctl: give --password or --generate, not both"),
        (["user", "reset-password", "a@b.com"],
         "zapctl: missing --password or --generate (no terminal to prompt on)"),
        (["user", "update", "a@b.com"],
         "zapctl: nothing to change: give at least one option (see --help)"),
        (["user", "set-departments", "a@b.com"],
         "zapctl: give the departments, or --none to remove them all"),
        (["dept", "add", "X", "--hours", "mon-fri 8h-18h"],
         "zapctl: invalid --hours 'mon-fri 8h-18h': time '8h' is not HH:MM"),
        (["dept", "update", "x", "--hours", "always", "--hours", "sat 08:00-12:00"],
         "zapctl: invalid --hours 'always': 'always' cannot be combined with other --hours"),
        (["dept", "remove", "x"],
         "zapctl: refusing without confirmation: pass --yes (no terminal)"),
    ]  # fmt: skip
    for (args, message), res in zip(one, run_parallel(env, *[c[0] for c in one]), strict=True):
        assert res.code == 2, (args, res.err)
        assert one_line(res.err) == message
    # A too-short password is refused before asking the server (exit 1).
    res = run_cli("user", "add", "a@b.com", "--name", "A", "--role", "agent", "--password", "x",
                  env=env)  # fmt: skip
    assert res.code == 1
    assert one_line(res.err) == "zapctl: the password needs at least 8 characters"
    # The server is asked (and is down) once the input is fine.
    res = run_cli("user", "show", "a@b.com", env=env)
    assert res.code == 5
    assert one_line(res.err) == f"zapctl: cannot reach zapd at {dead} — is it running?"


def test_help_has_examples() -> None:
    check_help(
        "user",
        {"add", "list", "show", "update", "disable", "enable", "reset-password", "set-departments"},
    )
    check_help("dept", {"add", "list", "show", "update", "remove"})


def test_parse_hours() -> None:
    week = [("08:00", "12:00"), ("13:00", "18:00")]
    hours = parse_hours(["mon-fri 08:00-12:00,13:00-18:00", "sat 9:00-13:00"])
    assert hours == {d: week for d in ("mon", "tue", "wed", "thu", "fri")} | {
        "sat": [("09:00", "13:00")]
    }
    assert format_hours(hours) == "mon-fri 08:00-12:00,13:00-18:00; sat 09:00-13:00"
    # Portuguese days, lists, wrap-around ranges, spaces, merged specs, 24:00.
    assert parse_hours(["seg,qua 08:00 - 12:00", "sab-dom 10:00-24:00", "seg 14:00-15:00"]) == {
        "mon": [("08:00", "12:00"), ("14:00", "15:00")],
        "wed": [("08:00", "12:00")],
        "sat": [("10:00", "24:00")],
        "sun": [("10:00", "24:00")],
    }
    assert parse_hours(["fri-mon 08:00-09:00"]).keys() == {"fri", "sat", "sun", "mon"}
    # Night shifts cross midnight: 18:00 to 08:00 the next morning.
    assert parse_hours(["mon-fri 08:00-12:00,18:00-08:00"])["tue"] == [
        ("08:00", "12:00"),
        ("18:00", "08:00"),
    ]
    assert parse_hours(["always"]) == {}
    assert format_hours({}) == "always open"
    for bad, why in (
        ("mon", 'expected "DAYS HH:MM-HH:MM[,HH:MM-HH:MM...]"'),
        ("xyz 08:00-09:00", "unknown day 'xyz'"),
        ("mon 09:00", "range '09:00' is not HH:MM-HH:MM"),
        ("mon 08:00-08:00", "08:00-08:00 is not a range"),
        ("mon 24:00-08:00", "24:00-08:00 is not a range"),
        ("mon 18:00-08:00,20:00-21:00", "mon: ranges overlap"),
        ("mon 25:00-26:00", "time '25:00' is not a time of day"),
        ("mon 08:60-09:00", "time '08:60' is not a time of day"),
        ("mon,,tue 08:00-09:00", "empty day in the day list"),
        ("mon 08:00-12:00,11:00-13:00", "mon: ranges overlap"),
    ):
        with pytest.raises(CliError) as err:
            parse_hours([bad])
        assert err.value.code == 2
        assert err.value.message.startswith(f"invalid --hours {bad!r}: {why}")
