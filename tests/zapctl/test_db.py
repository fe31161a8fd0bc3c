"""`zapctl db ...` and zapctl's help, run as the real console script, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.helpers import (
    child_env,
    default_db_args,
    head_revision,
    is_sqlite,
    run_cli,
    schema_revision,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return child_env(home)


def test_current_and_check_after_init(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    state_dir = tmp_path / "state"
    db_args, _ = default_db_args(database_url, state_dir)
    where = ["--state-dir", str(state_dir), *db_args]
    code, _, err = run_cli(
        "init",
        *where,
        "--admin-email",
        "a@example.com",
        "--admin-password",
        "Cedro-azul-no-quintal",
        env=env,
    )
    assert code == 0, err
    head = head_revision()

    code, out, err = run_cli("db", "current", *where, env=env)
    assert (code, err) == (0, "")
    assert out == f"current {head}  head {head}\n"  # no "(run: zapctl db upgrade)" hint

    current = run_cli("--json", "db", "current", *where, env=env)
    assert current.code == 0, current.err
    assert current.json() == {"current": head, "head": head, "up_to_date": True}

    check = run_cli("--json", "db", "check", *where, env=env)
    assert check.code == 0, check.out
    assert check.json() == {"current": head, "head": head, "ok": True, "differences": []}

    # The same database found through the environment instead of flags.
    via_env = dict(env, ZAP_STATE_DIR=str(state_dir))
    if not is_sqlite(database_url):
        via_env["ZAP_DATABASE_URL"] = database_url
    current = run_cli("--json", "db", "current", env=via_env)
    assert current.code == 0, current.err
    assert current.json()["up_to_date"] is True


def test_upgrade_an_empty_database(env: dict[str, str], home: Path, database_url: str) -> None:
    head = head_revision()
    db = ["--db", database_url]

    if database_url.startswith("sqlite"):
        # Read-only commands never create a database file: they say there is none.
        path = Path(make_url(database_url).database or "")
        code, out, err = run_cli("db", "current", *db, env=env)
        assert (code, out) == (1, "")
        assert err == f"zapctl: no database at {path} (run: zapctl init or zapctl db upgrade)\n"
        assert not path.exists()
        sqlite3.connect(path).close()  # an empty database file, as after a failed start

    current = run_cli("--json", "db", "current", *db, env=env)

    assert current.code == 0, current.err
    assert current.json() == {"current": None, "head": head, "up_to_date": False}
    code, out, _ = run_cli("db", "current", *db, env=env)
    assert code == 0
    assert "(empty)" in out
    assert "zapctl db upgrade" in out

    check = run_cli("--json", "db", "check", *db, env=env)
    assert check.code == 1
    doc = check.json()
    assert doc["ok"] is False
    assert doc["current"] is None
    assert doc["differences"]  # every table is missing

    upgrade = run_cli("--json", "db", "upgrade", *db, env=env)
    assert upgrade.code == 0, upgrade.err
    doc = upgrade.json()
    assert (doc["from"], doc["to"]) == (None, head)
    assert schema_revision(database_url) == head

    assert run_cli("db", "upgrade", *db, env=env) == (0, f"schema already at {head}\n", "")

    # Offline commands given --db never create a state dir behind the user's back.
    assert not (home / ".local" / "state" / "zap").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["Usage: zapctl", "init", "db", "--json"]),
        (["db", "--help"], ["upgrade", "current", "check"]),
        (["init", "--help"], ["Examples", "--admin-email", "--admin-password", "--force"]),
        (["db", "upgrade", "--help"], ["--db", "--state-dir"]),
    ],
)
def test_help(env: dict[str, str], args: list[str], expected: list[str]) -> None:
    code, out, err = run_cli(*args, env=env)
    assert (code, err) == (0, "")
    for text in expected:
        assert text in out
