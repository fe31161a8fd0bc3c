"""`zapd` run as the real console script on a loopback port, on both backends."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from tests.helpers import (
    ZAPD,
    child_env,
    default_db_args,
    fetch_users,
    free_port,
    head_revision,
    is_sqlite,
    one_line,
    run,
    run_cli,
    running_zapd,
    schema_revision,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def assert_error(resp: object, status: int, code: str) -> str:
    """Check the contract's error shape and return its message."""
    import httpx

    assert isinstance(resp, httpx.Response)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) >= {"error", "message"}
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "Traceback" not in resp.text
    return str(body["message"])


def test_serves_probes_and_error_shapes_then_stops_on_sigterm(
    env: dict[str, str], tmp_path: Path, state_dir: Path, database_url: str
) -> None:
    db_args, _ = default_db_args(database_url, state_dir)
    code, _, err = run_cli(
        "init",
        "--state-dir",
        str(state_dir),
        *db_args,
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        "Cedro-azul-no-quintal",
        env=env,
    )
    assert code == 0, err

    with running_zapd(
        "--state-dir", str(state_dir), *db_args, env=env, log_path=tmp_path / "zapd.log"
    ) as zapd:
        resp = zapd.get("/healthz")
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok"}

        resp = zapd.get("/readyz")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "ready", "schema": head_revision()}

        assert_error(zapd.get("/no/such/path"), 404, "ERR_NOT_FOUND")
        assert_error(zapd.get("/api/v1/no-such-thing"), 404, "ERR_NOT_FOUND")
        resp = zapd.request("POST", "/healthz")
        assert_error(resp, 405, "ERR_METHOD_NOT_ALLOWED")
        assert resp.headers.get("allow") == "GET"

        resp = zapd.get("/api/v1/openapi.json")
        assert resp.status_code == 200
        spec = resp.json()
        assert spec["openapi"].startswith("3.")
        assert "/healthz" in spec["paths"]
        assert zapd.get("/docs").status_code == 404  # no interactive docs exposed

        started = time.monotonic()
        code = zapd.stop()
        assert time.monotonic() - started < 15
        assert code == 0, zapd.log()  # a clean stop, not death by the signal
        log = zapd.log()
        assert "zapd ready" in log
        assert "zapd stopped" in log  # the lifespan closed the database
        assert "Traceback" not in log


def test_sigterm_exits_zero(env: dict[str, str], tmp_path: Path, state_dir: Path) -> None:
    # Regression: uvicorn re-raises a captured SIGTERM after its graceful shutdown, which
    # made zapd die by the signal (-15) until zapd/main.py installed its own handler.
    with running_zapd(
        "--state-dir", str(state_dir), env=env, log_path=tmp_path / "zapd.log", check_exit=False
    ) as zapd:
        code = zapd.stop()
        assert "zapd stopped" in zapd.log()
        assert code == 0


def test_help(env: dict[str, str]) -> None:
    code, out, err = run(ZAPD, "--help", env=env)
    assert (code, err) == (0, "")
    for flag in ("--state-dir", "--db", "--port", "--host", "--config", "--no-migrate"):
        assert flag in out
    assert "ZAP_STATE_DIR" in out


def test_configured_through_environment_only(
    env: dict[str, str], tmp_path: Path, state_dir: Path, database_url: str
) -> None:
    port = free_port()
    zap_env = dict(env, ZAP_PORT=str(port), ZAP_STATE_DIR=str(state_dir))
    if not is_sqlite(database_url):
        zap_env["ZAP_DATABASE_URL"] = database_url
    with running_zapd(env=zap_env, port=port, log_path=tmp_path / "zapd.log") as zapd:
        resp = zapd.get("/readyz")
        assert resp.status_code == 200, resp.text
    assert mode(state_dir) == 0o700
    assert (state_dir / "zap.db").exists() == is_sqlite(database_url)
    url = default_db_args(database_url, state_dir)[1]
    assert schema_revision(url) == head_revision()


def test_configured_through_a_toml_file(
    env: dict[str, str], tmp_path: Path, state_dir: Path
) -> None:
    port = free_port()
    config = tmp_path / "zapd.toml"
    config.write_text(f'port = {port}\nstate_dir = "{state_dir}"\n')
    with running_zapd(
        "--config", str(config), env=env, port=port, log_path=tmp_path / "zapd.log"
    ) as zapd:
        assert zapd.get("/readyz").status_code == 200
    assert (state_dir / "zap.db").is_file()


@pytest.mark.parametrize(
    ("args", "extra_env", "expected"),
    [
        (["--port", "notanumber"], {}, "--port"),
        ([], {"ZAP_PORT": "notanumber"}, "port"),
        (["--config", "{tmp}/missing.toml"], {}, "{tmp}/missing.toml"),
        ([], {"ZAP_CONFIG": "{tmp}/missing.toml"}, "{tmp}/missing.toml"),
        (["--config", "{tmp}/bad.toml"], {}, "{tmp}/bad.toml"),
    ],
)
def test_bad_command_line_or_configuration_exits_2(
    env: dict[str, str],
    tmp_path: Path,
    state_dir: Path,
    args: list[str],
    extra_env: dict[str, str],
    expected: str,
) -> None:
    (tmp_path / "bad.toml").write_text("port = [\n")
    args = [a.format(tmp=tmp_path) for a in args]
    extra_env = {k: v.format(tmp=tmp_path) for k, v in extra_env.items()}
    code, out, err = run(
        ZAPD, "--state-dir", str(state_dir), *args, env=dict(env, **extra_env), timeout=30
    )
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(("zapd: bad configuration:", "usage: zapd"))
    assert expected.format(tmp=tmp_path) in err
    assert not state_dir.exists()  # refused before touching anything


def test_missing_config_file_message(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    code, _, err = run(ZAPD, "--config", str(missing), env=env, timeout=30)
    assert code == 2
    assert one_line(err) == f"zapd: bad configuration: config file not found: {missing}"


def test_no_migrate_on_an_empty_database_is_alive_but_not_ready(
    env: dict[str, str], tmp_path: Path, state_dir: Path, database_url: str
) -> None:
    with running_zapd(
        "--state-dir",
        str(state_dir),
        "--db",
        database_url,
        "--no-migrate",
        env=env,
        log_path=tmp_path / "zapd.log",
    ) as zapd:
        resp = zapd.get("/healthz")
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok"}
        message = assert_error(zapd.get("/readyz"), 503, "ERR_UNAVAILABLE")
        assert "zapctl db upgrade" in message
        assert "zapctl db upgrade" in zapd.log()  # the start-up warning says so too
    assert schema_revision(database_url) is None  # --no-migrate really left it alone


def test_migrates_a_fresh_instance_by_default(
    env: dict[str, str], tmp_path: Path, state_dir: Path, database_url: str
) -> None:
    db_args, url = default_db_args(database_url, state_dir)
    with running_zapd(
        "--state-dir", str(state_dir), *db_args, env=env, log_path=tmp_path / "zapd.log"
    ) as zapd:
        resp = zapd.get("/readyz")
        assert resp.status_code == 200, resp.text
        assert resp.json()["schema"] == head_revision()
    assert mode(state_dir) == 0o700
    secret = state_dir / "jwt.secret"
    assert mode(secret) == 0o600
    assert secret.read_text().strip()
    assert schema_revision(url) == head_revision()
    assert fetch_users(url) == []  # no admin is invented: that is `zapctl init`'s job


def test_sqlite_file_zapd_creates_is_private(
    env: dict[str, str], tmp_path: Path, state_dir: Path
) -> None:
    with running_zapd("--state-dir", str(state_dir), env=env, log_path=tmp_path / "zapd.log"):
        pass
    assert mode(state_dir / "zap.db") == 0o600
