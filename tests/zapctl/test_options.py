"""Enum options take `shared.enums` members by name (any case); `--json` names members.

The command-line checks run the real console script against a closed port: parsing
happens before any connection, so an accepted value ends in "cannot reach zapd" (exit
5) and a refused one in a usage error (exit 2) naming the option.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from shared.enums import AutoAssignMode, Engine, LogLevel, OutboxState, Role, TicketStatus
from tests.helpers import child_env, free_port, one_line, run_cli
from zapctl.options import by_name
from zapctl.output import dump, plain


@pytest.mark.parametrize(
    ("enum", "typed", "member"),
    [
        (TicketStatus, "pending", TicketStatus.PENDING),
        (TicketStatus, "PENDING", TicketStatus.PENDING),
        (TicketStatus, "Pending", TicketStatus.PENDING),
        (AutoAssignMode, "round-robin", AutoAssignMode.ROUND_ROBIN),
        (AutoAssignMode, "ROUND_ROBIN", AutoAssignMode.ROUND_ROBIN),
        (Role, " agent ", Role.AGENT),
        (LogLevel, "30", LogLevel.WARNING),  # the API's value, for scripts
        (OutboxState, "dead", OutboxState.DEAD),
    ],
)
def test_members_by_name_in_any_case(enum: type, typed: str, member: object) -> None:
    assert by_name(enum)(typed) is member


@pytest.mark.parametrize("typed", ["", "pendente", "7", "-1", "open closed"])
def test_anything_else_is_a_usage_error_listing_the_names(typed: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        by_name(TicketStatus)(typed)
    assert "pending, open, closed" in str(caught.value)


def test_json_names_enum_members_everywhere() -> None:
    when = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    ident = uuid.uuid4()
    data = {
        "status": TicketStatus.OPEN,
        "nested": [{"engine": Engine.CLOUD, "at": when, "id": ident}],
        "count": 3,
        "flag": True,
    }
    assert plain(data) == {
        "status": "OPEN",
        "nested": [{"engine": "CLOUD", "at": when.isoformat(), "id": str(ident)}],
        "count": 3,
        "flag": True,
    }
    assert json.loads(json.dumps(plain(data)))["status"] == "OPEN"


def test_dump_of_a_wire_model_names_its_enums() -> None:
    from shared.protocol.auth import Me

    me = Me.model_validate(
        {
            "id": str(uuid.uuid4()),
            "company_id": str(uuid.uuid4()),
            "email": "ana@acme.com.br",
            "name": "Ana",
            "role": 2,
            "presence": 1,
            "is_global_admin": False,
        }
    )
    doc = dump(me)
    assert (doc["role"], doc["presence"]) == ("AGENT", "ONLINE")
    assert me.model_dump(mode="json")["role"] == 2  # the wire keeps the integer


@pytest.mark.parametrize(
    "args",
    [
        ("ticket", "list", "--status", "pending", "--status", "CLOSED"),
        ("session", "list", "--status", "Waiting_QR"),
        ("outbox", "list", "--state", "DEAD"),
        ("user", "list", "--role", "Supervisor"),
        ("session", "logs", "x", "--level", "warning"),
    ],
)
def test_the_cli_accepts_names_in_any_case(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_test")
    got = run_cli("--server", f"127.0.0.1:{free_port()}", *args, env=env)
    assert got.code == 5, got  # parsed fine; only the daemon is missing
    assert "cannot reach zapd" in one_line(got.err)


def test_a_bad_name_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_test")
    got = run_cli("ticket", "list", "--status", "pendente", env=env)
    assert got.code == 2
    assert "--status" in got.err and "pending, open, closed" in got.err
    assert "Traceback" not in got.err
