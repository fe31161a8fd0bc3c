"""The zapctl commands the first-day walk found missing (issue 9): `category ...`,
`client list|show|tag|block`, `session update|remove`, against a real zapd (SQLite and
PostgreSQL), as each role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.zapctl.instance import Instance, failed, instance_fixture, ok


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def inst(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    yield from instance_fixture(request, tmp_path_factory)


def test_categories_add_list_update_remove(inst: Instance) -> None:
    t = inst.tenant()
    made = inst.json("category", "add", "Resolvido", "--description", "Atendido", env=t.admin)
    assert (made["name"], made["company_id"], made["active"]) == ("Resolvido", t.id, True)
    inst.json("category", "add", "Sem retorno", env=t.admin)
    listed = ok(inst.cli("category", "list", env=t.agent)).out.splitlines()
    assert listed[0].split() == ["NAME", "ACTIVE", "DESCRIPTION", "ID"]
    assert any(line.startswith("Resolvido") for line in listed)
    # By name, any case and accents; --inactive retires it, --active lists the rest.
    done = inst.json("category", "update", "sem RETORNO", "--inactive", env=t.admin)
    assert done["active"] is False
    active = inst.json("category", "list", "--active", env=t.admin)
    assert [c["name"] for c in active] == ["Resolvido"]
    assert failed(inst.cli("category", "update", "Resolvido", env=t.admin), 2).startswith(
        "zapctl: nothing to change"
    )
    assert failed(inst.cli("category", "add", "X", env=t.agent), 4).startswith("zapctl: ")
    assert failed(inst.cli("category", "remove", "Nenhuma", "--yes", env=t.admin), 3) == (
        "zapctl: no category 'Nenhuma'"
    )
    gone = inst.json("category", "remove", "Sem retorno", "--yes", env=t.admin)
    assert gone == {"id": done["id"], "deleted": True}
    assert [c["name"] for c in inst.json("category", "list", env=t.admin)] == ["Resolvido"]
    # A global admin names the company, by name too.
    company = inst.http("GET", f"/api/v1/companies/{t.id}")["name"]
    root_made = inst.json("category", "add", "Spam", "--company", company)
    assert root_made["company_id"] == t.id


def test_clients_list_show_tag_block(inst: Instance) -> None:
    t = inst.tenant()
    phone = f"+55119{uuid.uuid4().int % 10**8:08d}"
    inst.http(
        "POST", "/api/v1/clients", json={"phone": phone, "name": "Lúcia Souza", "company_id": t.id}
    )
    inst.http("POST", "/api/v1/tags", json={"name": "VIP", "company_id": t.id})
    inst.http("POST", "/api/v1/tags", json={"name": "atacado", "company_id": t.id})
    national = f"({phone[3:5]}) {phone[5:10]}-{phone[10:]}"

    listed = inst.json("client", "list", "--q", "souza", env=t.agent)
    assert [c["phone"] for c in listed] == [phone]
    shown = inst.json("client", "show", national, env=t.agent)
    assert (shown["name"], shown["blocked"], shown["tag_ids"]) == ("Lúcia Souza", False, [])

    tagged = ok(inst.cli("client", "tag", national, "vip", "Atacado", env=t.agent))
    assert tagged.out == "client Lúcia Souza: VIP, atacado\n"
    untagged = inst.json("client", "tag", phone, "atacado", "--remove", env=t.agent)
    assert len(untagged["tag_ids"]) == 1
    assert [c["phone"] for c in inst.json("client", "list", "--tag", "VIP", env=t.agent)] == [phone]

    # Blocking needs a supervisor.
    assert failed(inst.cli("client", "block", phone, env=t.agent), 4).startswith("zapctl: ")
    assert ok(inst.cli("client", "block", phone, env=t.supervisor)).out == (
        "client Lúcia Souza blocked\n"
    )
    assert [c["phone"] for c in inst.json("client", "list", "--blocked", env=t.agent)] == [phone]
    assert inst.json("client", "block", phone, "--unblock", env=t.supervisor)["blocked"] is False
    missing = failed(inst.cli("client", "show", "+5511900000000", env=t.agent), 3)
    assert missing == "zapctl: no client with phone +5511900000000"


def test_sessions_update_and_remove(inst: Instance) -> None:
    t = inst.tenant()
    name = f"Linha {uuid.uuid4().hex[:6]}"
    sid = inst.http(
        "POST", "/api/v1/sessions", json={"name": name, "engine": 0, "company_id": t.id}
    )["id"]
    inst.http("POST", "/api/v1/departments", json={"name": "Suporte", "company_id": t.id})
    renamed = inst.json(
        "session", "update", name, "--name", f"{name} SP", "--dept", "suporte", env=t.admin
    )
    assert renamed["id"] == sid and renamed["name"] == f"{name} SP"
    assert renamed["default_department_id"] is not None
    rotated = ok(
        inst.cli(
            "session", "update", sid, "--webhook-url", "https://hooks.example.com/zap",
            "--rotate-webhook-secret", env=t.admin,
        )
    )  # fmt: skip
    assert "webhook secret (shown only now): whsec_" in rotated.out
    assert failed(inst.cli("session", "update", sid, env=t.admin), 2).startswith(
        "zapctl: nothing to change"
    )
    assert failed(inst.cli("session", "remove", sid, "--yes", env=t.agent), 4).startswith(
        "zapctl: "
    )
    gone = inst.json("session", "remove", f"{name} SP", "--yes", env=t.admin)
    assert gone == {"id": sid, "deleted": True}
    assert failed(inst.cli("session", "show", sid, env=t.admin), 3).startswith("zapctl: ")
