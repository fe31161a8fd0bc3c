"""`zapctl login | whoami | logout` against a real zapd, tokens kept in a 0600 file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.helpers import child_env, free_port, run_cli, running_zapd

ADMIN = ("root@zap.com.br", "root-pass-1")


def test_login_whoami_logout_and_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(
        home,
        ZAP_ARGON2_TIME_COST="1",
        ZAP_ARGON2_MEMORY_KIB="64",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    state = tmp_path / "state"
    init = run_cli(
        "init",
        "--state-dir",
        str(state),
        "--admin-email",
        ADMIN[0],
        "--admin-password",
        ADMIN[1],
        env=env,
    )
    assert init.code == 0, init.err
    with running_zapd("--state-dir", str(state), env=env, log_path=tmp_path / "zapd.log") as zapd:
        server = ["--server", zapd.base_url]
        code, out, err = run_cli(*server, "whoami", env=env)
        assert (code, out) == (4, "")
        assert err == f"zapctl: not logged in to {zapd.base_url} (run: zapctl login)\n"
        code, out, err = run_cli(
            *server, "login", "--email", ADMIN[0], "--password", "nope-nope", env=env
        )
        assert (code, err) == (4, "zapctl: wrong e-mail or password\n")
        code, out, err = run_cli(*server, "login", "--email", ADMIN[0], env=env)
        assert (code, err) == (2, "zapctl: missing --password (no terminal to prompt on)\n")
        done = run_cli(
            *server, "--json", "login", "--email", ADMIN[0], "--password", ADMIN[1], env=env
        )
        assert done.code == 0, done.err
        assert "no OS keyring available" in done.err  # said once, on stderr
        stored = Path(done.json()["stored_in"])
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert zapd.base_url in json.loads(stored.read_text())
        me = run_cli(*server, "--json", "whoami", env=env)
        assert me.code == 0 and me.json()["is_global_admin"] is True
        code, out, _ = run_cli(*server, "whoami", env=env)
        assert code == 0 and out.startswith("Administrator <root@zap.com.br>  GLOBAL ADMIN")
        assert run_cli(*server, "logout", env=env).code == 0
        assert zapd.base_url not in json.loads(stored.read_text())
        assert run_cli(*server, "whoami", env=env).code == 4
    down = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_cli(
        "--server", down, "login", "--email", ADMIN[0], "--password", ADMIN[1], env=env
    )
    assert (code, out) == (5, "")
    assert err == f"zapctl: cannot reach zapd at {down} — is it running?\n"
