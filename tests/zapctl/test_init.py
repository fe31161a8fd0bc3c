"""`zapctl init`, run as the real console script, on SQLite and on PostgreSQL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.helpers import (
    CliResult,
    child_env,
    default_db_args,
    fetch_users,
    head_revision,
    is_sqlite,
    one_line,
    run_cli,
    schema_revision,
)
from zapd.security import verify_password

PASSWORD = "s3cret-pass"
OTHER_PASSWORD = "another-pass-9"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def target(database_url: str, state_dir: Path) -> tuple[list[str], str]:
    """(--db args, URL to inspect): SQLite uses the default file in the state dir."""
    if is_sqlite(database_url):
        return default_db_args(database_url, state_dir)
    # trust auth ignores the password: this checks it is masked in every output
    url = make_url(database_url).set(password="hunter2-pw").render_as_string(hide_password=False)
    return ["--db", url], database_url


def init(
    env: dict[str, str],
    state_dir: Path,
    db_args: list[str],
    *extra: str,
    email: str = "Admin@Example.COM",
    password: str = PASSWORD,
    json_out: bool = False,
) -> CliResult:
    args = ["--json"] if json_out else []
    args += ["init", "--state-dir", str(state_dir), *db_args]
    args += ["--admin-email", email, "--admin-password", password, *extra]
    return run_cli(*args, env=env)


def test_init_creates_a_private_instance_with_a_global_admin(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str]
) -> None:
    db_args, url = target
    code, out, err = init(env, state_dir, db_args)
    assert code == 0, err
    assert err == ""
    assert "admin@example.com (created)" in out
    assert f"next: zapd --state-dir {state_dir}" in out
    assert PASSWORD not in out
    assert "hunter2" not in out

    assert mode(state_dir) == 0o700
    secret_file = state_dir / "jwt.secret"
    assert mode(secret_file) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    assert secret not in out

    db_file = state_dir / "zap.db"
    if db_args:
        assert "--db" in out  # the hint repeats the URL zapd needs
        assert not db_file.exists()
    else:
        assert db_file.is_file()
        assert mode(db_file) == 0o600

    assert schema_revision(url) == head_revision()
    (admin,) = fetch_users(url)
    assert admin.email == "admin@example.com"
    assert admin.company_id is None
    assert admin.role is None
    assert admin.active is True
    assert admin.name == "Administrator"
    assert admin.password_hash.startswith("$argon2id$")
    assert PASSWORD not in admin.password_hash
    assert verify_password(admin.password_hash, PASSWORD)
    assert not verify_password(admin.password_hash, OTHER_PASSWORD)


def test_init_again_with_same_credentials_changes_nothing(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str]
) -> None:
    db_args, url = target
    first = init(env, state_dir, db_args, json_out=True)
    assert first.code == 0, first.err
    doc = first.json()
    assert doc == {
        "state_dir": str(state_dir),
        "database_url": doc["database_url"],
        "jwt_secret_file": str(state_dir / "jwt.secret"),
        "revision": head_revision(),
        "admin_email": "admin@example.com",
        "admin": "created",
    }
    assert "hunter2" not in doc["database_url"]
    if db_args:
        assert "***" in doc["database_url"]
    else:
        assert doc["database_url"].endswith(f"{state_dir / 'zap.db'}")
    secret = (state_dir / "jwt.secret").read_text()
    (before,) = fetch_users(url)

    # Same credentials (e-mail differently cased): a no-op, still one JSON document.
    again = init(env, state_dir, db_args, email="ADMIN@example.com", json_out=True)
    assert again.code == 0, again.err
    assert again.err == ""
    doc = again.json()
    assert doc["admin"] == "unchanged"
    assert doc["admin_email"] == "admin@example.com"
    assert (state_dir / "jwt.secret").read_text() == secret
    (after,) = fetch_users(url)
    assert after.id == before.id
    assert after.password_hash == before.password_hash
    assert after.token_version == before.token_version


def test_other_password_needs_force(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str]
) -> None:
    db_args, url = target
    assert init(env, state_dir, db_args).code == 0
    secret = (state_dir / "jwt.secret").read_text()
    (before,) = fetch_users(url)

    code, out, err = init(env, state_dir, db_args, password=OTHER_PASSWORD, json_out=True)
    assert code == 1
    assert out == ""
    line = one_line(err)
    assert line.startswith("zapctl: ")
    assert "--force" in line
    (unchanged,) = fetch_users(url)
    assert unchanged.password_hash == before.password_hash
    assert unchanged.token_version == before.token_version
    assert verify_password(unchanged.password_hash, PASSWORD)
    assert not verify_password(unchanged.password_hash, OTHER_PASSWORD)

    forced = init(env, state_dir, db_args, "--force", password=OTHER_PASSWORD, json_out=True)
    assert forced.code == 0, forced.err
    assert forced.json()["admin"] == "updated"
    (updated,) = fetch_users(url)
    assert updated.id == before.id
    assert verify_password(updated.password_hash, OTHER_PASSWORD)
    assert not verify_password(updated.password_hash, PASSWORD)
    assert updated.token_version == before.token_version + 1  # old tokens die
    assert (state_dir / "jwt.secret").read_text() == secret


def test_second_admin_needs_force(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str]
) -> None:
    db_args, url = target
    assert init(env, state_dir, db_args).code == 0

    code, out, err = init(env, state_dir, db_args, email="boss@example.com")
    assert code == 1
    assert out == ""
    line = one_line(err)
    assert "--force" in line
    assert "admin@example.com" in line
    assert [u.email for u in fetch_users(url)] == ["admin@example.com"]

    forced = init(env, state_dir, db_args, "--force", email="boss@example.com", json_out=True)
    assert forced.code == 0, forced.err
    assert forced.json()["admin"] == "created"
    users = fetch_users(url)
    assert [u.email for u in users] == ["admin@example.com", "boss@example.com"]
    assert all(u.company_id is None for u in users)


@pytest.mark.parametrize("missing", ["--admin-password", "--admin-email"])
def test_missing_credential_without_a_terminal_is_a_usage_error(
    env: dict[str, str],
    state_dir: Path,
    target: tuple[list[str], str],
    missing: str,
) -> None:
    db_args, url = target
    args = ["init", "--state-dir", str(state_dir), *db_args]
    if missing != "--admin-email":
        args += ["--admin-email", "admin@example.com"]
    if missing != "--admin-password":
        args += ["--admin-password", PASSWORD]
    code, out, err = run_cli(*args, env=env)  # stdin is /dev/null: no prompt possible
    assert code == 2
    assert out == ""
    assert missing in one_line(err)
    assert not state_dir.exists()
    if db_args:
        assert schema_revision(url) is None


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com"])
def test_bad_email_is_refused_cleanly(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str], email: str
) -> None:
    db_args, url = target
    code, out, err = init(env, state_dir, db_args, email=email, json_out=True)
    assert code == 1
    assert out == ""
    line = one_line(err)
    assert "e-mail" in line
    assert email in line
    assert not state_dir.exists()
    if db_args:
        assert schema_revision(url) is None


def test_short_password_is_refused(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str]
) -> None:
    db_args, url = target
    code, out, err = init(env, state_dir, db_args, password="7chars!", json_out=True)
    assert code != 0
    assert out == ""
    line = one_line(err)
    assert "password" in line
    assert "8" in line
    assert "7chars!" not in err
    assert not state_dir.exists()
    if db_args:
        assert schema_revision(url) is None


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_unreachable_database_is_one_line(
    env: dict[str, str], tmp_path: Path, state_dir: Path, backend: str
) -> None:
    if backend == "postgresql":
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'zap.db'}"
    for json_out in (False, True):
        code, out, err = init(env, state_dir, ["--db", url], json_out=json_out)
        assert code == 1
        assert out == ""
        assert "cannot open the database" in one_line(err)


@pytest.mark.parametrize("weak", ["12345678", "password", "        "])
def test_weak_password_is_refused_with_the_reason(
    env: dict[str, str], state_dir: Path, target: tuple[list[str], str], weak: str
) -> None:
    db_args, url = target
    code, out, err = init(env, state_dir, db_args, password=weak, json_out=True)
    assert code == 1 and out == ""
    line = one_line(err)
    assert line.startswith("zapctl: password is too weak: "), line
    assert "Traceback" not in err
    assert not state_dir.exists()
    if db_args:
        assert schema_revision(url) is None
