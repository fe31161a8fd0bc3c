"""Customers through the sandbox, then `zapctl ticket ...`, `send` and `outbox` as each role.

A real zapd per backend (the `Stack` of test_session_cli.py): customers write with
`zapctl sandbox say`, tickets are worked by the users the roles allow, what the agents
send is read back from the simulated customer's phone with `zapctl sandbox inbox`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import child_env, free_port, one_line, run_cli
from tests.zapctl.test_session_cli import (
    ROLES,
    Stack,
    add_session,
    eventually,
    link_sandbox,
    stack_fixture,
)

SESSION = "Atendimento"
_phones = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from stack_fixture(request, tmp_path_factory)


@pytest.fixture(scope="module")
def line(stack: Stack) -> str:
    """A connected sandbox session (the company's WhatsApp line); return its name."""
    doc = add_session(stack, SESSION, "--engine", "sandbox")
    link_sandbox(stack, SESSION, "+551130000100")
    stack.ids["line"] = doc["id"]
    return SESSION


def new_phone() -> str:
    return f"+551198765{next(_phones):04d}"


# The tests' own observations go straight to the API: each zapctl start costs about a
# second of CPU, and polling through it would dominate the run. What zapctl shows is
# asserted on its own output.


def inbox(stack: Stack, phone: str, session_id: str | None = None) -> list[dict[str, Any]]:
    """What the simulated customer's phone received from a session."""
    sid = session_id or stack.ids["line"]
    return list(stack.api("admin", f"/sandbox/{sid}/inbox", phone=phone))


def received(stack: Stack, phone: str, *texts: str) -> list[dict[str, Any]]:
    """Wait until the customer's phone got messages containing each of `texts`."""

    def check() -> list[dict[str, Any]] | None:
        got = inbox(stack, phone)
        bodies = [m["body"] or "" for m in got]
        return got if all(any(t in b for b in bodies) for t in texts) else None

    return eventually(check, within=20, what=f"{phone} receiving {texts}")


def outbound(stack: Stack, ticket_id: str) -> list[str]:
    """Return the ids of what a ticket sent its customer (no notes, no system lines)."""
    page = stack.api("supervisor", f"/tickets/{ticket_id}/messages", limit=200)
    return [
        m["id"]
        for m in page["items"]
        if m["direction"] == 1 and not m["is_note"] and m["type"] != 9
    ]


def find_ticket(stack: Stack, who: str, phone: str, **filters: Any) -> dict[str, Any]:
    """Wait until `who` can list the ticket of `phone` (with `filters`); return it."""

    def check() -> dict[str, Any] | None:
        page = stack.api(who, "/tickets", q=phone[-8:], **filters)
        return next((t for t in page["items"] if t["client"]["phone"] == phone), None)

    return eventually(check, within=20, what=f"a ticket for {phone}")


# --------------------------------------------------------------------------- ticket life


def test_a_customer_is_served_transferred_and_closed(stack: Stack, line: str) -> None:
    phone = new_phone()
    said = stack.ok("admin", "sandbox", "say", line, phone, "Oi, bom dia", "--name", "Maria Souza")
    assert said.out.startswith(f"{phone} said it: SBX")
    received(stack, phone, "Olá, Maria!", "*1* - Suporte")  # the greeting menu
    stack.ok("admin", "sandbox", "say", line, phone[3:], "1")  # national form: same customer

    # The ticket waits in Suporte: its agent sees it, the Financeiro agent does not.
    ticket = find_ticket(stack, "agent", phone, department_id=stack.ids["suporte"])
    number = f"#{ticket['number']}"
    assert ticket["department"]["name"] == "Suporte" and ticket["assignee"] is None
    assert "Maria Souza" in (ticket["client"]["name"], ticket["client"]["profile_name"])
    listed, shown, hidden, table, assign = stack.parallel(
        [
            ("agent", ("--json", "ticket", "list", "--status", "pending", "--dept", "suporte")),
            ("agent", ("--json", "ticket", "show", number)),
            ("agent2", ("ticket", "show", number)),
            ("agent", ("ticket", "list", "--status", "pending")),
            ("agent", ("ticket", "assign", number, ROLES["agent"][0])),
        ]
    )
    assert ticket["id"] in [t["id"] for t in listed.json()]
    doc = shown.json()
    assert doc["id"] == ticket["id"] and doc["status"] == "PENDING"  # --json: by name
    bodies = [m["body"] for m in doc["messages"]]
    assert bodies[0] == "Oi, bom dia" and "1" in bodies  # oldest first
    assert doc["messages"][0]["direction"] == "INBOUND"
    assert hidden.code == 3 and one_line(hidden.err) == f"zapctl: no ticket {number}"
    header = table.out.splitlines()[0].split()
    assert header == [
        "#", "STATUS", "CLIENT", "PHONE", "DEPARTMENT", "ASSIGNEE", "UNREAD", "LAST", "MESSAGE"
    ]  # fmt: skip
    row = next(r for r in table.out.splitlines() if r.startswith(f"{number} "))
    assert "PENDING" in row and "Maria Souza" in row and phone in row and "Suporte" in row
    assert assign.code == 4 and "SUPERVISOR" in assign.err  # agents do not assign

    accepted = stack.json("agent", "ticket", "accept", number)
    assert accepted["status"] == "OPEN" and accepted["assignee"]["id"] == stack.ids["agent"]
    read = stack.json("agent", "ticket", "read", number)  # issue 9: ticket read
    assert read["id"] == ticket["id"] and read["unread_count"] == 0
    sent, note = stack.parallel(
        [
            ("agent", ("--json", "send", "--ticket", number, "Olá Maria, sou a Agent")),
            ("agent", ("--json", "send", "--ticket", ticket["id"], "--note", "cliente VIP")),
        ]
    )
    assert sent.code == 0 and note.code == 0, (sent, note)
    assert sent.json()["ticket_id"] == ticket["id"] and sent.json()["is_note"] is False
    assert note.json()["is_note"] is True and note.json()["body"] == "cliente VIP"
    got = received(stack, phone, "Olá Maria, sou a Agent")
    assert not any("VIP" in (m["body"] or "") for m in got)  # notes never leave

    moved = stack.json(
        "agent", "ticket", "transfer", number, "--dept", "Financeiro",
        "--message", "Vou te passar para o financeiro",
    )  # fmt: skip
    assert moved["status"] == "PENDING" and moved["department"]["name"] == "Financeiro"
    assert moved["assignee"] is None
    gone, taken = stack.parallel(
        [("agent", ("ticket", "show", number)), ("agent2", ("ticket", "accept", number))]
    )
    assert gone.code == 3  # no longer in the agent's queues
    assert taken.code == 0 and taken.out.startswith(f"ticket {number} accepted: OPEN")
    assert "with Agent2" in taken.out

    closed = stack.json(
        "agent2", "ticket", "close", number, "--category", "resolvido",
        "--message", "Obrigado, até logo!",
    )  # fmt: skip
    assert closed["status"] == "CLOSED" and closed["category_id"] == stack.ids["resolvido"]
    received(stack, phone, "Vou te passar para o financeiro", "Obrigado, até logo!")

    # A supervisor reopens it, gives it back to the first agent, and closes it silently.
    reopened = stack.ok("supervisor", "ticket", "reopen", number).out
    assert reopened.startswith(f"ticket {number} reopened: OPEN")
    assigned = stack.json("supervisor", "ticket", "assign", number, ROLES["agent"][0])
    assert assigned["assignee"]["id"] == stack.ids["agent"]
    mine = stack.json("agent", "ticket", "list", "--mine")
    assert [t["id"] for t in mine] == [ticket["id"]]
    before = outbound(stack, ticket["id"])
    done = stack.json("supervisor", "ticket", "close", ticket["id"], "--no-farewell")
    assert done["status"] == "CLOSED"
    history = stack.json("supervisor", "ticket", "list", "--status", "closed", "--q", "maria")
    assert ticket["id"] in [t["id"] for t in history]
    assert outbound(stack, ticket["id"]) == before  # --no-farewell: nothing more for the customer


def test_ticket_errors(stack: Stack, line: str) -> None:
    phone = new_phone()
    inbound = f"/sandbox/{stack.ids['line']}/inbound"
    stack.post("admin", inbound, {"from": phone, "text": "Olá", "name": "João"})
    received(stack, phone, "*2* - Financeiro")
    stack.post("admin", inbound, {"from": phone, "text": "2"})
    ticket = find_ticket(stack, "agent2", phone, department_id=stack.ids["financeiro"])
    number = f"#{ticket['number']}"
    errors = stack.many(
        [
            (3, "agent", ("ticket", "show", "#99999")),
            (3, "agent", ("ticket", "accept", str(uuid.uuid4()))),
            (3, "agent", ("ticket", "accept", number)),  # not in the agent's departments
            (2, "agent", ("ticket", "show", "abc")),
            (2, "agent2", ("ticket", "transfer", number)),
            (
                2,
                "agent2",
                ("ticket", "transfer", number, "--dept", "x", "--quiet", "--message", "y"),
            ),
            (2, "agent2", ("ticket", "close", number, "--no-farewell", "--message", "tchau")),
            (2, "agent", ("ticket", "list", "--status", "lost")),
            (3, "supervisor", ("ticket", "assign", number, "nobody@acme.com.br")),
            (3, "supervisor", ("ticket", "transfer", number, "--dept", "Jurídico")),
            (1, "supervisor", ("ticket", "reopen", number)),  # it is not closed
            (3, "supervisor", ("ticket", "close", number, "--category", "Inexistente")),
        ]
    )
    assert errors[0] == "zapctl: no ticket #99999"
    assert errors[1] == "zapctl: ticket not found"
    assert errors[2] == f"zapctl: no ticket {number}"
    assert errors[3] == "zapctl: not a ticket id or number: 'abc' (use #123 or a UUID)"
    assert errors[4] == "zapctl: give --dept, --to or both"
    assert "--quiet" in errors[5] and "--no-farewell" in errors[6]
    assert "'lost' is not one of" in errors[7]
    assert errors[8] == "zapctl: no user with e-mail nobody@acme.com.br"
    assert errors[9] == "zapctl: no department 'Jurídico'"
    assert errors[11] == "zapctl: no category 'Inexistente'"
    # Nothing changed.
    again = stack.json("agent2", "ticket", "show", number, "--messages", "0")
    assert again["status"] == "PENDING" and again["assignee"] is None and again["messages"] == []
    assert again["department"]["name"] == "Financeiro"


# --------------------------------------------------------------------------- send


def test_send_to_a_phone_with_text_file_and_idempotency(
    stack: Stack, line: str, tmp_path: Path
) -> None:
    phone = new_phone()
    national = f"({phone[3:5]}) {phone[5:10]}-{phone[10:]}"
    first = stack.json(
        "admin", "send", "--session", line, "--to", national, "Promoção de março",
        "--idempotency-key", f"promo-{phone}",
    )  # fmt: skip
    pdf = tmp_path / "boleto.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    again, with_file = stack.parallel(
        [
            (
                "supervisor",
                (
                    "--json", "send", "--session", line, "--to", phone, "Promoção de março",
                    "--idempotency-key", f"promo-{phone}",
                ),
            ),
            ("admin", ("send", "--session", line, "--to", phone, "--file", str(pdf), "Segue")),
        ]
    )  # fmt: skip
    assert again.code == 0 and with_file.code == 0, (again, with_file)
    assert again.json()["id"] == first["id"]  # the same key: the same message, nothing new
    assert first["direction"] == "OUTBOUND" and first["session_id"] == stack.ids["line"]
    assert with_file.out.startswith("message queued (queued): ")
    got = received(stack, phone, "Promoção de março", "Segue")
    assert sum("Promoção de março" in (m["body"] or "") for m in got) == 1
    assert [m["type"] for m in got if "Segue" in (m["body"] or "")] == [4]  # a document

    # What zapctl shows of it: the phone's inbox, and the outbox.
    shown, table, entries, outbox_table = stack.parallel(
        [
            ("admin", ("--json", "sandbox", "inbox", line, phone[3:])),
            ("admin", ("sandbox", "inbox", line, phone)),
            ("admin", ("--json", "outbox", "list", "--session", line, "--limit", "300")),
            ("admin", ("outbox", "list", "--limit", "2")),  # this test queued two
        ]
    )
    assert [m["wa_message_id"] for m in shown.json()] == [m["wa_message_id"] for m in got]
    rows = table.out.splitlines()
    assert rows[0].split() == ["AT", "TYPE", "BODY", "ID"] and len(rows) == len(got) + 1
    assert "document" in rows[-1] and "Segue" in rows[-1]
    ours = [e for e in entries.json() if e["message_id"] == first["id"]]
    assert len(ours) == 1 and ours[0]["idempotency_key"].endswith(f"promo-{phone}")
    assert ours[0]["state"] == "SENT" and ours[0]["to"].startswith(phone[1:])
    header = outbox_table.out.splitlines()
    assert header[0].split() == ["ID", "STATE", "TRIES", "TO", "TEXT", "LAST", "ERROR", "CREATED"]
    assert len(header) == 3 and "SENT" in header[1]

    count = len(stack.api("admin", "/outbox", limit=200)["items"])
    big = tmp_path / "grande.pdf"  # over zapd's 16 MiB media limit
    big.write_bytes(b"%PDF-1.4\n" + b"0" * 20_000_000)
    errors = stack.many(
        [
            (1, "admin", ("send", "--session", line, "--to", "123", "oi")),
            (1, "admin", ("send", "--session", line, "--to", "+55 11 1234", "oi")),
            (4, "agent", ("send", "--session", line, "--to", phone, "oi")),
            (3, "admin", ("send", "--session", "Nenhuma", "--to", phone, "oi")),
            (3, "agent", ("send", "--ticket", "#99999", "oi")),
            (2, "admin", ("send", "oi")),
            (2, "admin", ("send", "--session", line, "oi")),
            (2, "admin", ("send", "--session", line, "--ticket", "#1", "--to", phone, "oi")),
            (2, "admin", ("send", "--session", line, "--to", phone, "--note", "oi")),
            (2, "admin", ("send", "--session", line, "--to", phone)),
            (2, "admin", ("send", "--session", line, "--to", phone, "--file", "/nope.pdf")),
            (1, "admin", ("send", "--session", line, "--to", phone, "--file", str(big), "x")),
        ]
    )
    assert errors[0] == "zapctl: invalid phone number '123': is too short"
    assert errors[1].startswith("zapctl: invalid phone number '+55 11 1234'")
    assert errors[2] == "zapctl: this needs the SUPERVISOR role or higher"
    assert errors[3] == "zapctl: no session named 'Nenhuma'"
    assert errors[5] == errors[7] == "zapctl: give either --ticket, or --session and --to"
    assert errors[6] == "zapctl: --session needs --to PHONE"
    assert "internal notes belong to a ticket" in errors[8]
    assert errors[9] == "zapctl: give the TEXT to send, --file PATH or --template NAME"
    assert "/nope.pdf" in errors[10]
    # A refused upload is zapd's 413 read and said, not "cannot reach zapd" (issue 9).
    assert errors[11].startswith(f"zapctl: too large for zapd at {stack.server}: "), errors[11]
    assert errors[11].endswith("nothing was stored")
    assert len(stack.api("admin", "/outbox", limit=200)["items"]) == count  # none queued


# --------------------------------------------------------------------------- outbox


def test_outbox_retry_and_drop(stack: Stack, line: str) -> None:
    # A line that was never started: what is sent to it waits in the outbox.
    idle = "Parada"
    idle_id = stack.session(idle)
    phone = new_phone()
    for sid, text in ((idle_id, "primeira"), (idle_id, "segunda"), (stack.ids["line"], "ok")):
        stack.post("admin", "/messages", {"session_id": sid, "to": phone, "body": text})

    def waiting() -> list[dict[str, Any]] | None:
        rows = stack.api("admin", "/outbox", session_id=idle_id, state=0)["items"]
        return rows if len(rows) == 2 and any(e["attempts"] for e in rows) else None

    # The older one was tried and failed (transient: it stays PENDING, with a backoff);
    # the newer one waits behind it (one chat's messages go out in order).
    rows = eventually(waiting, within=20, what="a failed attempt")
    first = next(e for e in rows if e["attempts"])
    second = next(e for e in rows if e is not first)
    assert first["last_error"] == "session is not running" and second["attempts"] == 0
    retried, dropped = stack.parallel(
        [
            ("admin", ("--json", "outbox", "retry", first["id"])),
            ("admin", ("outbox", "drop", second["id"], "--yes")),
        ]
    )
    assert retried.json()["state"] == "PENDING" and retried.json()["attempts"] == 0
    assert dropped.out == f"outbox entry {second['id']} dropped: CANCELLED\n"
    sent = eventually(
        lambda: stack.api("admin", "/outbox", session_id=stack.ids["line"], state=2)["items"],
        what="an entry sent",
    )[0]["id"]
    errors = stack.many(
        [
            (1, "admin", ("outbox", "drop", second["id"], "--yes")),  # already cancelled
            (1, "admin", ("outbox", "retry", sent)),
            (2, "admin", ("outbox", "drop", first["id"])),  # no terminal to confirm on
            (3, "admin", ("outbox", "retry", str(uuid.uuid4()))),
            (3, "admin", ("outbox", "drop", str(uuid.uuid4()), "--yes")),
            (2, "admin", ("outbox", "retry", "not-an-id")),
            (2, "admin", ("outbox", "list", "--state", "lost")),
            (4, "supervisor", ("outbox", "retry", first["id"])),
        ]
    )
    assert "only PENDING or DEAD entries can be dropped; this one is CANCELLED" in errors[0]
    assert "only DEAD or PENDING entries can be retried; this one is SENT" in errors[1]
    assert "--yes" in errors[2]
    cancelled = stack.json("admin", "outbox", "list", "--session", idle, "--state", "cancelled")
    assert [e["id"] for e in cancelled] == [second["id"]]
    assert cancelled[0]["message_status"] == "FAILED"  # its message


def test_daemon_down_answers_5(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_not_a_real_token", ZAP_SERVER=url)
    for args in (("ticket", "list"), ("send", "--ticket", "#1", "oi")):
        result = run_cli(*args, env=env)
        assert result.code == 5, result
        assert one_line(result.err) == f"zapctl: cannot reach zapd at {url} — is it running?"
