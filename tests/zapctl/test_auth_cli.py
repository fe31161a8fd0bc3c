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


def test_one_login_per_server_however_typed_and_the_last_one_is_remembered(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(
        home,
        ZAP_ARGON2_TIME_COST="1",
        ZAP_ARGON2_MEMORY_KIB="64",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    env.pop("ZAP_SERVER", None)
    state = tmp_path / "state"
    init = run_cli(
        "init", "--state-dir", str(state), "--admin-email", ADMIN[0],
        "--admin-password", ADMIN[1], env=env,
    )  # fmt: skip
    assert init.code == 0, init.err
    port = free_port()
    with running_zapd(
        "--state-dir",
        str(state),
        "--port",
        str(port),
        port=port,
        env=env,
        log_path=tmp_path / "zapd.log",
    ) as zapd:
        assert zapd.base_url == f"http://127.0.0.1:{port}"
        typed = f"127.0.0.1:{port}"  # what people type
        done = run_cli(
            "--server", typed, "login", "--email", ADMIN[0], "--password", ADMIN[1], env=env
        )
        assert done.code == 0, done.err
        assert done.out == f"logged in to http://127.0.0.1:{port}\n"
        # Another spelling of the same server uses the same login...
        for spelling in (f"http://127.0.0.1:{port}/", f"HTTP://127.0.0.1:{port}"):
            me = run_cli("--server", spelling, "--json", "whoami", env=env)
            assert me.code == 0, (spelling, me.err)
        # ...and without --server, the server last logged in to is the one used.
        me = run_cli("--json", "whoami", env=env)
        assert me.code == 0, me.err
        assert me.json()["email"] == ADMIN[0]
        # Logging out of it forgets it: back to the default server (nothing listens there
        # in the test, or another zapd does: either way not this login).
        assert run_cli("logout", env=env).code == 0
        again = run_cli("--json", "whoami", env=env)
        assert again.code in (4, 5), again
        assert f":{port}" not in again.err
