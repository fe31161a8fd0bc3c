"""`zapctl backup` / `zapctl restore` round trip (SQLite), the daemon's state lock, private
archive members, archive names, and offline commands finding the state dir like zapd:
ZAP_STATE_DIR, STATE_DIRECTORY, the config file, and a systemd host's install."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers import child_env, one_line, run_cli
from zapctl import offline

PASSWORD = "s3cret-pass-123"


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An initialised SQLite state dir and a clean environment."""
    sdir = tmp_path / "state"
    env = child_env(tmp_path / "home")
    r = run_cli(
        "init", "--state-dir", str(sdir), "--admin-email", "root@zap.com.br",
        "--admin-password", PASSWORD, env=env,
    )  # fmt: skip
    assert r.code == 0, r.err
    (sdir / "media" / "ab").mkdir(parents=True)
    (sdir / "media" / "ab" / ("ab" + "0" * 62)).write_bytes(b"foto")
    return sdir, env


def users(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT email FROM users")}


def test_backup_then_restore_round_trip(state: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    sdir, env = state
    archive = tmp_path / "zap.tar.gz"
    # No --state-dir: found through ZAP_STATE_DIR, as zapd would.
    r = run_cli("backup", "-o", str(archive), env=dict(env, ZAP_STATE_DIR=str(sdir)))
    assert r.code == 0, r.err
    with tarfile.open(archive) as tar:
        modes = {m.name: stat.S_IMODE(m.mode) for m in tar.getmembers()}
    assert modes["zap.db"] == 0o600 and set(modes.values()) == {0o600}

    target = tmp_path / "restored"
    r = run_cli("--json", "restore", str(archive), "--state-dir", str(target), env=env)
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["database"] == "sqlite" and doc["media_files"] == 1
    assert users(target / "zap.db") == users(sdir / "zap.db") == {"root@zap.com.br"}
    assert (target / "jwt.secret").read_bytes() == (sdir / "jwt.secret").read_bytes()
    for path in (target / "zap.db", target / "jwt.secret", target / "media/ab" / ("ab" + "0" * 62)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    # An existing database is replaced only with --force.
    again = run_cli("restore", str(archive), "--state-dir", str(target), env=env)
    assert again.code == 1
    assert "exists: restoring replaces it (use --force" in one_line(again.err)
    forced = run_cli("restore", str(archive), "--state-dir", str(target), "--force", env=env)
    assert forced.code == 0, forced.err


def test_restore_refuses_while_zapd_holds_the_state(
    state: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    sdir, env = state
    archive = tmp_path / "zap.tar.gz"
    assert run_cli("backup", "-o", str(archive), "--state-dir", str(sdir), env=env).code == 0
    before = (sdir / "zap.db").read_bytes()
    # What zapd does for its whole life (zapd.startup.StateLock): an exclusive flock on
    # <state>/zapd.lock, here held by another process.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(sdir / 'zapd.lock')!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        r = run_cli("restore", str(archive), "--state-dir", str(sdir), "--force", env=env)
        assert r.code == 1
        assert one_line(r.err) == (
            f"zapctl: zapd is running on {sdir} (it holds {sdir / 'zapd.lock'}): "
            "stop it first (systemctl stop zapd), then restore"
        )
        assert (sdir / "zap.db").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    # Once the daemon is gone, the restore goes through, and leaves the lock free.
    r = run_cli("restore", str(archive), "--state-dir", str(sdir), "--force", env=env)
    assert r.code == 0, r.err
    fd = os.open(sdir / "zapd.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_bad_archives_and_names(state: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    sdir, env = state
    r = run_cli("backup", "-o", str(tmp_path / "zap.zip"), "--state-dir", str(sdir), env=env)
    assert r.code == 2 and "name it *.tar.gz" in r.err
    assert not (tmp_path / "zap.zip").exists()
    r = run_cli("restore", str(tmp_path / "nope.tar.gz"), "--state-dir", str(sdir), env=env)
    assert r.code == 3 and "no such file" in r.err
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x"
    payload.write_text("boom")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="../../etc/x")
    r = run_cli("restore", str(evil), "--state-dir", str(tmp_path / "t"), env=env)
    assert r.code == 1 and "unexpected member" in r.err
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    r = run_cli("restore", str(junk), "--state-dir", str(tmp_path / "t"), env=env)
    assert r.code == 1 and "not a gzip'd tar" in r.err
    assert "Traceback" not in r.err


def test_offline_commands_find_the_state_like_zapd(
    state: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    sdir, env = state
    # systemd's STATE_DIRECTORY, and a config file naming state_dir.
    r = run_cli(
        "backup", "-o", str(tmp_path / "s.tar.gz"), env=dict(env, STATE_DIRECTORY=str(sdir))
    )
    assert r.code == 0, r.err
    config = tmp_path / "cfg" / "zap"
    config.mkdir(parents=True)
    (config / "zapd.toml").write_text(f'state_dir = "{sdir}"\n')
    r = run_cli(
        "backup",
        "-o",
        str(tmp_path / "c.tar.gz"),
        env=dict(env, XDG_CONFIG_HOME=str(tmp_path / "cfg")),
    )
    assert r.code == 0, r.err


def test_systemd_host_install_is_found(
    state: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root shell on a packaging/zapd.service host has no STATE_DIRECTORY: the offline
    commands look at /etc/zap and /var/lib/zap (here in tmp_path)."""
    sdir, _ = state
    for var in ("ZAP_STATE_DIR", "STATE_DIRECTORY", "ZAP_DATABASE_URL", "CONFIGURATION_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "no-state"))
    etc = tmp_path / "etc-zap"
    etc.mkdir()
    monkeypatch.setattr(offline, "SYSTEM_CONFIG_DIR", etc)
    monkeypatch.setattr(offline, "SYSTEM_STATE_DIR", sdir)
    # StateDirectory=zap: the state dir holds zapd's files.
    found, url = offline.resolve_db(None, None)
    assert found == sdir and url.endswith(f"{sdir}/zap.db")
    # The unit's EnvironmentFile wins over the default place.
    other = tmp_path / "elsewhere"
    (etc / "zapd.env").write_text(
        f"# comment\nZAP_PORT=8765\nZAP_STATE_DIR={other}\n"
        "ZAP_DATABASE_URL=postgresql://zap@db/zap\n"
    )
    found, url = offline.resolve_db(None, None)
    assert found == other and url.startswith("postgresql+asyncpg://zap@db/zap")
    # Anything the user names comes first.
    found, url = offline.resolve_db(tmp_path / "mine", "sqlite:///x.db")
    assert found == tmp_path / "mine" and url.endswith("x.db")
    # A machine without the install: the XDG default, as before.
    monkeypatch.setattr(offline, "SYSTEM_CONFIG_DIR", tmp_path / "none")
    monkeypatch.setattr(offline, "SYSTEM_STATE_DIR", tmp_path / "none-either")
    found, _ = offline.resolve_db(None, None)
    assert found == tmp_path / "no-state" / "zap"
    assert json.dumps(str(found))
