"""`zapctl doctor`, `zapctl backup`, `zapctl events replay` and shell completion.

Real console scripts against a seeded instance with a real zapd on loopback, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import email.utils
import json
import re
import sqlite3
import stat
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Zapd, free_port, one_line, run_cli, running_zapd
from tests.zapctl.test_export import (
    CNPJ_A,
    World,
    cli_env,
    pg_or_sqlite_url,  # noqa: F401 - a fixture, used by name
    seed,
)
from tests.zapctl.test_lgpd import load, one


@pytest.fixture(scope="module")
def instance(
    pg_or_sqlite_url: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[World, Zapd, dict[str, str]]]:
    """A seeded instance with zapd serving it, for the whole module."""
    tmp = tmp_path_factory.mktemp("doctor")
    env = cli_env(tmp / "home")
    world = seed(tmp, pg_or_sqlite_url, env)
    with running_zapd(*world.where, env=env, log_path=tmp / "zapd.log") as zapd:
        yield world, zapd, env


def doctor(world: World, env: dict[str, str], server: str, *extra: str) -> tuple[int, Any]:
    result = run_cli("--server", server, "--json", "doctor", *world.where, *extra, env=env)
    assert "Traceback" not in result.err
    return result.code, {c["check"]: c for c in result.json()}


def test_doctor_healthy(instance: tuple[World, Zapd, dict[str, str]]) -> None:
    world, zapd, env = instance
    code, checks = doctor(world, env, zapd.base_url)
    assert code == 0, checks
    assert list(checks) == [
        "daemon",
        "database",
        "state dir",
        "clock",
        "chromium",
        "wa-js",
        "keyring",
    ]
    assert checks["daemon"]["status"] == "pass"
    assert zapd.base_url in checks["daemon"]["detail"]
    assert checks["database"]["status"] == "pass"
    assert "(current)" in checks["database"]["detail"]
    assert checks["state dir"]["status"] == "pass"
    assert checks["clock"]["status"] == "pass"
    # Not installed here is a warning, not a failure (no webjs engine yet).
    assert checks["chromium"]["status"] in ("pass", "warn")
    if not (Path("/usr/bin/chromium").exists() or _on_path("chromium")):
        assert checks["chromium"]["status"] == "warn"
        assert "not installed" in checks["chromium"]["detail"]
    assert checks["keyring"]["status"] in ("pass", "warn")

    code, out, err = run_cli("--server", zapd.base_url, "doctor", *world.where, env=env)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert lines[1].startswith("daemon") and "PASS" in lines[1]
    assert lines[-1] == "all checks passed"


def _on_path(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


def test_doctor_failures(instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path) -> None:
    world, zapd, env = instance
    # zapd not there: the daemon fails, the clock cannot be compared.
    code, checks = doctor(world, env, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert checks["daemon"]["status"] == "fail"
    assert "cannot reach zapd" in checks["daemon"]["detail"]
    assert checks["clock"]["status"] == "skip"
    assert checks["database"]["status"] == "pass"

    # A state dir or secret others can read fails.
    secret = world.state_dir / "jwt.secret"
    try:
        world.state_dir.chmod(0o755)
        secret.chmod(0o644)
        code, checks = doctor(world, env, zapd.base_url)
        assert code == 1
        detail = checks["state dir"]["detail"]
        assert checks["state dir"]["status"] == "fail"
        assert f"{world.state_dir} is 0755, want 0700" in detail
        assert f"{secret} is 0644, want 0600" in detail
        result = run_cli("--server", zapd.base_url, "doctor", *world.where, env=env)
        assert result.code == 1
        assert result.out.splitlines()[-1] == "1 check(s) failed"
    finally:
        world.state_dir.chmod(0o700)
        secret.chmod(0o600)

    # A database whose schema is behind (here: empty) fails.
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, checks = doctor(world, env, zapd.base_url, "--db", f"sqlite:///{empty}")
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert "schema (empty)" in checks["database"]["detail"]
    assert "zapctl db upgrade" in checks["database"]["detail"]


class _SkewedHealth(BaseHTTPRequestHandler):
    skew = 0.0

    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response_only(200)
        self.send_header("Date", email.utils.formatdate(time.time() + self.skew, usegmt=True))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("skew", "status"), [(120.0, "warn"), (-95.0, "warn")])
def test_doctor_clock_skew(
    instance: tuple[World, Zapd, dict[str, str]], skew: float, status: str
) -> None:
    world, _, env = instance
    if world.db_args:
        pytest.skip("the same on every backend: checked on SQLite")
    handler = type("Skewed", (_SkewedHealth,), {"skew": skew})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, checks = doctor(world, env, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0  # a skewed clock warns, it does not fail
    assert checks["clock"]["status"] == status, checks["clock"]
    if status == "warn":  # the Date header has one-second resolution
        detail = checks["clock"]["detail"]
        match = re.search(r"clock is (\d+)s (ahead|behind)", detail)
        assert match, detail
        assert abs(int(match.group(1)) - abs(skew)) <= 2
        assert match.group(2) == ("ahead" if skew > 0 else "behind")
        assert "check NTP" in detail


@pytest.mark.parametrize(
    ("script", "status", "text"),
    [
        ("echo 'Chromium 120.0.6099.224 built on Debian 12.4'", "pass", "Chromium 120.0"),
        ("echo 'cannot open display' >&2; exit 3", "fail", "exited 3: cannot open display"),
    ],
)
def test_doctor_chromium(
    instance: tuple[World, Zapd, dict[str, str]],
    tmp_path: Path,
    script: str,
    status: str,
    text: str,
) -> None:
    world, zapd, env = instance
    if world.db_args:
        pytest.skip("the same on every backend: checked on SQLite")
    fake = tmp_path / "bin" / "chromium"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    code, checks = doctor(world, dict(env, ZAP_CHROMIUM=str(fake)), zapd.base_url)
    assert checks["chromium"]["status"] == status
    assert text in checks["chromium"]["detail"]
    assert code == (1 if status == "fail" else 0)


def test_doctor_chromium_named_but_missing(
    instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path
) -> None:
    world, zapd, env = instance
    if world.db_args:
        pytest.skip("the same on every backend: checked on SQLite")
    missing = tmp_path / "no-such-chromium"
    code, checks = doctor(world, dict(env, ZAP_CHROMIUM=str(missing)), zapd.base_url)
    assert checks["chromium"]["status"] == "fail"
    assert checks["chromium"]["detail"] == f"ZAP_CHROMIUM={missing} is not an executable file"
    assert code == 1


def test_doctor_wajs_bundle(instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path) -> None:
    from zapd.connectors.webjs import bundle

    world, zapd, env = instance
    if world.db_args:
        pytest.skip("the same on every backend: checked on SQLite")
    pinned = bundle.pin()
    code, checks = doctor(world, env, zapd.base_url)
    assert checks["wa-js"]["status"] == "pass"  # ./dev setup fetched it
    assert f"wa-js {pinned.version}" in checks["wa-js"]["detail"]
    assert "sha256 matches the pin" in checks["wa-js"]["detail"]
    tampered = tmp_path / "wppconnect-wa.js"
    tampered.write_bytes(bundle.default_path().read_bytes() + b"\n// changed\n")
    code, checks = doctor(world, dict(env, ZAP_WAJS_PATH=str(tampered)), zapd.base_url)
    assert (code, checks["wa-js"]["status"]) == (1, "fail")
    assert "the pin wants wa-js" in checks["wa-js"]["detail"]
    missing = tmp_path / "nope.js"
    code, checks = doctor(world, dict(env, ZAP_WAJS_PATH=str(missing)), zapd.base_url)
    assert checks["wa-js"] == {
        "check": "wa-js",
        "status": "fail",
        "detail": f"ZAP_WAJS_PATH={missing} is not a file",
    }


# --------------------------------------------------------------------------- backup


def test_backup(instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path) -> None:
    world, _, env = instance  # zapd keeps running: the copy must still be consistent
    target = tmp_path / "zap.tar.gz"
    result = run_cli("--json", "backup", "-o", str(target), *world.where, env=env)
    assert result.code == 0, result.err
    doc = result.json()
    sqlite = not world.db_args
    db_name = "zap.db" if sqlite else "zap.pgdump"
    assert doc["database"] == ("sqlite" if sqlite else "postgresql")
    assert doc["media_files"] == 3
    assert doc["size"] == target.stat().st_size
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        assert {"manifest.json", db_name, "jwt.secret"} <= names
        assert {f"media/{k}" for k in world.keys.values()} <= names
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest["database"] == doc["database"]
        secret = tar.extractfile("jwt.secret").read()  # type: ignore[union-attr]
        assert secret == (world.state_dir / "jwt.secret").read_bytes()
        tar.extract(db_name, tmp_path / "out", filter="data")
    copy = tmp_path / "out" / db_name
    if sqlite:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM messages").fetchone() == (10,)
            emails = {r[0] for r in conn.execute("SELECT email FROM users")}
            assert "root@zap.com.br" in emails
    else:
        listing = subprocess.run(
            ["pg_restore", "--list", str(copy)], capture_output=True, text=True, check=True
        ).stdout
        assert "TABLE DATA public messages" in listing

    # No silent overwrite.
    again = run_cli("backup", "-o", str(target), *world.where, env=env)
    assert again.code == 1
    assert one_line(again.err) == f"zapctl: {target} exists (use --force to overwrite)"
    assert run_cli("backup", "-o", str(target), "--force", *world.where, env=env).code == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".zap-backup")] == []


def test_backup_without_pg_dump(
    instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path
) -> None:
    world, _, env = instance
    if not world.db_args:
        pytest.skip("PostgreSQL only")
    result = run_cli(
        "backup", "-o", str(tmp_path / "x.tar.gz"), *world.where, env=dict(env, PATH="/nonexistent")
    )
    assert result.code == 1
    assert one_line(result.err).startswith("zapctl: pg_dump not found on PATH")
    assert not (tmp_path / "x.tar.gz").exists()


# --------------------------------------------------------------------------- events replay


def test_events_replay(database_url: str, tmp_path: Path) -> None:
    from shared.enums import WebhookEventState

    env = cli_env(tmp_path / "home")
    world = seed(tmp_path, database_url, env)
    ids = world.ids

    result = run_cli("--json", "events", "replay", "--company", CNPJ_A, *world.where, env=env)
    assert result.code == 0, result.err
    assert result.json() == {
        "marked": 1,  # raw_failed; company B's stays
        "by_company": {str(ids["company_a"]): 1},
        "unreadable": [str(ids["raw_old_failed"])],  # it would not parse: left FAILED
        "unreadable_count": 1,
        "processed_at_next_start": True,
    }
    assert one(world, "WebhookEvent", ids["raw_old_failed"]).state == WebhookEventState.FAILED
    row = one(world, "WebhookEvent", ids["raw_failed"])
    assert (row.state, row.error, row.attempts) == (WebhookEventState.PENDING, None, 2)
    assert one(world, "WebhookEvent", ids["raw_failed_b"]).state == WebhookEventState.FAILED

    code, out, err = run_cli(
        "events", "replay", "--id", str(ids["raw_failed_b"]), *world.where, env=env
    )
    assert (code, err) == (0, "")
    assert out == (
        "marked 1 event pending; zapd processes them at its next start "
        "(restart it: systemctl restart zapd)\n"
    )
    code, out, _ = run_cli("events", "replay", *world.where, env=env)
    assert code == 0
    assert out.splitlines()[0] == "no events to replay; nothing changed"
    assert "skipped 1 event whose stored payload no longer parses" in out
    audit_rows = load(world, "AuditLog", action="webhook_event.replay")
    assert sorted(r.data["count"] for r in audit_rows) == [1, 1]
    assert all(r.user_id is None and r.data["by"] == "zapctl" for r in audit_rows)

    for args, code, message in [
        (["--id", "nope"], 2, "--id: 'nope' is not an id (UUID)"),
        (["--id", str(uuid.UUID(int=5))], 3, f"event {uuid.UUID(int=5)} not found"),
        (["--session", str(uuid.UUID(int=6))], 3, f"session {uuid.UUID(int=6)} not found"),
        (["--company", "nope"], 2, "neither a company id nor a CNPJ"),
        (["--state", "processed"], 2, "processed"),
    ]:
        result = run_cli("events", "replay", *args, *world.where, env=env)
        assert result.code == code, (args, result)
        assert message in result.err

    # zapd processes them when it starts.
    with running_zapd(*world.where, env=env, log_path=tmp_path / "zapd.log"):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pending = load(world, "WebhookEvent", state=WebhookEventState.PENDING)
            if not pending:
                break
            time.sleep(0.2)
    assert load(world, "WebhookEvent", state=WebhookEventState.PENDING) == []
    done = one(world, "WebhookEvent", ids["raw_failed"])
    assert (done.state, done.attempts, done.error) == (WebhookEventState.PROCESSED, 3, None)
    done = one(world, "WebhookEvent", ids["raw_failed_b"])
    assert (done.state, done.attempts) == (WebhookEventState.PROCESSED, 2)


# --------------------------------------------------------------------------- completion


def test_shell_completion(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    code, out, err = run_cli("--show-completion", "bash", env=env)
    assert (code, err) == (0, "")
    assert "_zapctl_completion()" in out
    assert "complete -o default -F _zapctl_completion zapctl" in out
    # The script really completes: ask it for the commands after "zapctl pu".
    completion_env = dict(
        env, _ZAPCTL_COMPLETE="complete_bash", COMP_WORDS="zapctl pu", COMP_CWORD="1"
    )
    code, out, _ = run_cli(env=completion_env)
    assert code == 0
    assert "purge" in out.split()


def test_doctor_with_a_state_dir_checks_the_zapd_serving_it(
    instance: tuple[World, Zapd, dict[str, str]], tmp_path: Path
) -> None:
    # zapd listens where its configuration says (here zapd.toml: port = P); `doctor
    # --state-dir` with no --server must check that zapd, not the default URL (issue 9).
    world, zapd, env = instance
    config_home = tmp_path / "config"
    (config_home / "zap").mkdir(parents=True)
    (config_home / "zap" / "zapd.toml").write_text(f"port = {zapd.port}\n")
    env = {**env, "XDG_CONFIG_HOME": str(config_home)}
    env.pop("ZAP_SERVER", None)
    result = run_cli("--json", "doctor", *world.where, env=env)
    checks = {c["check"]: c for c in result.json()}
    assert checks["daemon"]["status"] == "pass", checks["daemon"]
    assert f"http://127.0.0.1:{zapd.port} " in checks["daemon"]["detail"]
    assert one_line(result.err) == (
        f"checking the zapd configured for {world.state_dir}: http://127.0.0.1:{zapd.port} "
        "(--server to pick another)"
    )
    # An explicit --server still wins, and the check names the URL it used.
    other = f"http://127.0.0.1:{free_port()}"
    result = run_cli("--server", other, "--json", "doctor", *world.where, env=env)
    checks = {c["check"]: c for c in result.json()}
    assert result.code == 1 and checks["daemon"]["status"] == "fail"
    assert checks["daemon"]["detail"].startswith(f"{other}: cannot reach zapd")
