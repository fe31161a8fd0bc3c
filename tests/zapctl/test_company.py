"""`zapctl company ...` against a real zapd, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cnpj import format_cnpj
from tests.helpers import (
    child_env,
    free_port,
    one_line,
    run_cli,
)
from tests.zapctl.instance import (
    Instance,
    check_help,
    failed,
    instance_fixture,
    new_cnpj,
    ok,
    run_on_tty,
    run_parallel,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def inst(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    yield from instance_fixture(request, tmp_path_factory)


# --------------------------------------------------------------------------- tests


def test_create_list_show_update(inst: Instance) -> None:
    cnpj = new_cnpj()
    shown = format_cnpj(cnpj)
    # Created from the formatted CNPJ; human output shows it formatted.
    created = inst.ok(
        "company", "create", "Acme Ltda", "--cnpj", shown, "--timezone", "America/Manaus"
    )
    assert created.out.startswith(f"created company Acme Ltda ({shown})  id ")
    assert created.err == ""
    cid = created.out.split()[-1]

    by_cnpj, by_id, listed, table, human = inst.many(
        ["--json", "company", "show", cnpj],
        ["--json", "company", "show", cid],
        ["--json", "company", "list", "--q", cnpj[:8]],
        ["company", "list", "--q", "acme ltda"],
        ["company", "show", cid],
    )
    doc = ok(by_cnpj).json()
    assert doc["id"] == cid
    assert doc["name"] == "Acme Ltda"
    assert doc["cnpj"] == cnpj
    assert doc["cnpj_formatted"] == shown
    assert doc["timezone"] == "America/Manaus"
    assert doc["locale"] == "pt_BR"
    assert doc["active"] is True
    assert doc["settings"] == {
        "agent_name_prefix": True,
        "reopen_window_minutes": 15,
        "returning_client_days": 30,
        "menu_max_attempts": 3,
    }
    assert ok(by_id).json() == doc
    # Listing: JSON is a list of companies; human output is an aligned table.
    assert [r["id"] for r in ok(listed).json()] == [cid]
    lines = ok(table).out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CNPJ", "ACTIVE", "TIMEZONE", "LOCALE"]
    line = next(r for r in lines if cid in r)
    assert shown in line and "Acme Ltda" in line and "America/Manaus" in line
    assert lines[0].index("CNPJ") == line.index(shown)  # columns are aligned
    assert f"cnpj:                  {shown}\n" in ok(human).out
    assert "reopen window:         15 min\n" in human.out

    upd = inst.json(
        "company", "update", shown, "--name", "Acme SA", "--locale", "en",
        "--no-agent-prefix", "--reopen-window", "30", "--returning-days", "7",
        "--menu-attempts", "2",
    )  # fmt: skip
    assert upd["name"] == "Acme SA"
    assert upd["locale"] == "en"
    assert upd["timezone"] == "America/Manaus"  # untouched
    assert upd["settings"] == {
        "agent_name_prefix": False,
        "reopen_window_minutes": 30,
        "returning_client_days": 7,
        "menu_max_attempts": 2,
    }
    # A partial settings change keeps the other keys.
    again = inst.json("company", "update", cid, "--agent-prefix", "--inactive")
    assert again["settings"]["agent_name_prefix"] is True
    assert again["settings"]["reopen_window_minutes"] == 30
    assert again["active"] is False
    inactive, active = inst.many(
        ["--json", "company", "list", "--inactive"], ["--json", "company", "list", "--active"]
    )
    assert cid in [r["id"] for r in ok(inactive).json()]
    assert cid not in [r["id"] for r in ok(active).json()]


def test_duplicate_unknown_and_server_side_errors(inst: Instance) -> None:
    cnpj = new_cnpj()
    inst.ok("company", "create", "Primeira", "--cnpj", cnpj)
    unknown = format_cnpj(new_cnpj())
    dup, tz, attempts, missing_id, missing_cnpj, missing_upd, garbage = inst.many(
        ["company", "create", "Segunda", "--cnpj", format_cnpj(cnpj)],
        ["company", "update", cnpj, "--timezone", "Mars/Olympus"],
        ["company", "update", cnpj, "--menu-attempts", "99"],
        ["company", "show", str(uuid.uuid4())],
        ["company", "show", unknown],
        ["company", "update", str(uuid.uuid4()), "--name", "X"],
        ["company", "delete", "acme", "--yes"],
    )
    assert failed(dup, 1) == f"zapctl: a company with CNPJ {cnpj} already exists"
    assert failed(tz, 1) == "zapctl: timezone: unknown time zone 'Mars/Olympus'"
    assert failed(attempts, 1).startswith("zapctl: settings.menu_max_attempts: ")
    assert failed(missing_id, 3) == "zapctl: company not found"
    assert failed(missing_cnpj, 3) == f"zapctl: no company with CNPJ {unknown}"
    assert failed(missing_upd, 3) == "zapctl: company not found"
    assert failed(garbage, 3) == "zapctl: no company named 'acme' (give its name, id or CNPJ)"
    # Nothing changed.
    doc = inst.json("company", "show", cnpj)
    assert doc["name"] == "Primeira"
    assert doc["timezone"] == "America/Sao_Paulo"
    assert doc["settings"]["menu_max_attempts"] == 3


def test_company_users_see_only_their_own_and_cannot_manage_tenants(inst: Instance) -> None:
    t = inst.tenant("Loja Própria")
    other = inst.tenant()
    listed, foreign_id, foreign_cnpj, create, delete, agent_upd, deactivate = inst.many(
        (t.admin, ["--json", "company", "list"]),
        (t.admin, ["company", "show", other.id]),
        (t.agent, ["company", "show", other.cnpj]),
        (t.admin, ["company", "create", "X", "--cnpj", new_cnpj()]),
        (t.admin, ["company", "delete", t.id, "--yes"]),
        (t.agent, ["company", "update", t.id, "--reopen-window", "5"]),
        (t.admin, ["company", "update", t.id, "--inactive"]),
    )
    assert [r["id"] for r in ok(listed).json()] == [t.id]
    # Another company's id or CNPJ is "not found" (exit 3), never "forbidden".
    assert failed(foreign_id, 3) == "zapctl: company not found"
    assert failed(foreign_cnpj, 3).startswith("zapctl: no company with CNPJ")
    # Only global admins create or delete companies; agents change nothing.
    assert failed(create, 4) == "zapctl: only global admins may do this"
    assert failed(delete, 4) == "zapctl: only global admins may do this"
    assert failed(agent_upd, 4) == "zapctl: this needs the ADMIN role or higher"
    assert failed(deactivate, 4) == "zapctl: only global admins may change active"
    # A company admin may change their own settings (found by CNPJ).
    doc = inst.json("company", "update", t.cnpj, "--menu-attempts", "5", env=t.admin)
    assert doc["settings"]["menu_max_attempts"] == 5
    assert doc["active"] is True


def test_delete_confirms_on_a_terminal_and_needs_yes_without_one(inst: Instance) -> None:
    cnpj = new_cnpj()
    cid = inst.json("company", "create", "Apagar", "--cnpj", cnpj)["id"]
    # No terminal and no --yes: a usage error.
    msg = inst.fail(2, "company", "delete", cnpj)
    assert msg == "zapctl: refusing without confirmation: pass --yes (no terminal)"
    # On a terminal: "n" keeps it, "y" deletes it.
    args = ["--server", inst.server, "company", "delete", cnpj]
    kept = run_on_tty(args, inst.root, "n\n")
    assert (kept.code, kept.out) == (1, "")
    assert f"Delete company Apagar ({format_cnpj(cnpj)}) and everything it owns? [y/N]" in kept.err
    assert kept.err.endswith("zapctl: cancelled\n")
    gone = run_on_tty(args, inst.root, "y\n")
    assert gone.code == 0, gone.err
    assert gone.out == f"deleted company Apagar ({format_cnpj(cnpj)})\n"
    assert inst.fail(3, "company", "show", cid) == "zapctl: company not found"


def test_delete_with_yes_and_json(inst: Instance) -> None:
    t = inst.tenant()
    doc = inst.json("company", "delete", t.cnpj, "--yes", "--force")
    assert doc == {"id": t.id, "deleted": True, "force": True}
    # Its people went with it: their credentials no longer work.
    res = inst.cli("user", "list", env=t.admin)
    assert res.code == 4, res.err


def test_alphanumeric_cnpj(inst: Instance) -> None:
    # The Receita Federal's example of the alphanumeric CNPJ (issued since July 2026),
    # typed in lower case: stored upper-cased, shown formatted, found by either form.
    created = inst.ok("company", "create", "Alfa Num", "--cnpj", "12.abc.345/01de-35")
    assert created.out.startswith("created company Alfa Num (12.ABC.345/01DE-35)  id ")
    by_plain, by_formatted = inst.many(
        ["--json", "company", "show", "12ABC34501DE35"],
        ["--json", "company", "show", "12.abc.345/01DE-35"],
    )
    assert ok(by_plain).json()["cnpj"] == "12ABC34501DE35"
    assert ok(by_formatted).json()["cnpj_formatted"] == "12.ABC.345/01DE-35"


# ----------------------------------------------------------- no server needed (run once)


def test_bad_cnpj_is_refused_locally_without_asking_the_server(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_whatever", ZAP_SERVER=dead)
    bad = "11.222.333/0001-82"
    res = run_cli("company", "create", "X", "--cnpj", bad, env=env)
    assert res.code == 1 and res.out == ""
    assert one_line(res.err) == f"zapctl: invalid CNPJ {bad!r}: check digits do not match"
    res = run_cli("company", "update", new_cnpj(), "--cnpj", "123", env=env)
    assert res.code == 1
    assert one_line(res.err) == "zapctl: invalid CNPJ '123': must have 14 characters, got 3"


def test_usage_errors(tmp_path: Path) -> None:
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_whatever")
    cnpj = new_cnpj()
    no_cnpj, no_name, locale, window, nothing = run_parallel(
        env,
        ["company", "create", "X"],
        ["company", "create", "--cnpj", cnpj],
        ["company", "create", "X", "--cnpj", cnpj, "--locale", "fr"],
        ["company", "update", cnpj, "--reopen-window", "soon"],
        ["company", "update", cnpj],
    )
    assert no_cnpj.code == 2 and "Missing option '--cnpj'" in no_cnpj.err
    assert no_name.code == 2 and "Missing argument" in no_name.err
    assert locale.code == 2 and "--locale" in locale.err
    assert window.code == 2 and "--reopen-window" in window.err
    assert nothing.code == 2
    assert one_line(nothing.err) == (
        "zapctl: nothing to change: give at least one option (see --help)"
    )


def test_daemon_down_and_not_logged_in(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = child_env(tmp_path / "home-token", ZAP_TOKEN="zap_not-a-real-token")
    res = run_cli("--server", dead, "company", "show", new_cnpj(), env=env)
    assert res.code == 5 and res.out == ""
    assert one_line(res.err) == f"zapctl: cannot reach zapd at {dead} — is it running?"
    res = run_cli("--server", dead, "company", "list", env=child_env(tmp_path / "fresh"))
    assert res.code == 4
    assert one_line(res.err) == f"zapctl: not logged in to {dead} (run: zapctl login)"


def test_help_has_examples() -> None:
    check_help("company", {"create", "list", "show", "update", "delete"})


def test_company_by_name_on_any_noun_and_listings_that_mix_companies(inst: Instance) -> None:
    tag = uuid.uuid4().hex[:6]
    names = (f"Padaria Pão Quente {tag}", f"Oficina Beta {tag}")
    a, b = inst.tenant(names[0]), inst.tenant(names[1])
    for t, label in ((a, "vip"), (b, "atacado")):
        inst.http("POST", "/api/v1/tags", json={"name": f"{label}-{tag}", "company_id": t.id})

    # --company takes the name too: any case, accents or not.
    typed = f"padaria pao quente {tag}".upper()
    only_a = inst.json("tag", "list", "--company", typed)
    assert [t["name"] for t in only_a] == [f"vip-{tag}"]
    assert {t["company_id"] for t in only_a} == {a.id}
    # ...and on ticket commands.
    assert inst.json("ticket", "list", "--company", names[1]) == []
    missing = failed(inst.cli("ticket", "show", "#1", "--company", names[1]), 3)
    assert missing == "zapctl: no ticket #1"
    assert failed(inst.cli("tag", "list", "--company", f"Nenhuma {tag}"), 3) == (
        f"zapctl: no company named 'Nenhuma {tag}' (give its name, id or CNPJ)"
    )

    # The global admin's listing mixes companies: each row says whose it is.
    mixed = ok(inst.cli("tag", "list")).out.splitlines()
    assert mixed[0].split() == ["NAME", "COMPANY", "COLOR", "ID"]
    row_a = next(line for line in mixed if line.startswith(f"vip-{tag}"))
    row_b = next(line for line in mixed if line.startswith(f"atacado-{tag}"))
    assert names[0] in row_a and names[1] in row_b
    # A company user's listing is one company's: no such column.
    own = ok(inst.cli("tag", "list", env=a.admin)).out.splitlines()
    assert own[0].split() == ["NAME", "COLOR", "ID"]

    # On a narrow terminal the table fits, the name and the id stay whole.
    narrow = ok(inst.cli("tag", "list", env={**inst.root, "COLUMNS": "70"})).out.splitlines()
    assert all(len(line) <= 70 for line in narrow), narrow
    cut = next(line for line in narrow if line.startswith(f"vip-{tag}"))
    assert "…" in cut and only_a[0]["id"] in cut
