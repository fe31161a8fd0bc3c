"""What the zapctl tests share: a database a child process can open, an instance made
with `zapctl init`, and a zapd serving it.

The CLI tests drive the real console scripts, so each module gets one database for all
its tests: a SQLite file, or a fresh PostgreSQL *database* (a URL cannot carry the
per-test schema the in-process tests use).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pty
import random
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from shared.cnpj import cnpj_check_digits
from tests.conftest import IN_CI, PG_URL, _pg_admin, _pg_probe
from tests.helpers import (
    ZAPCTL,
    CliResult,
    Zapd,
    child_env,
    default_db_args,
    one_line,
    run_cli,
    running_zapd,
)

ROOT_EMAIL = "root@zap.com.br"
ROOT_PASSWORD = "root-pass-1"
# Fast password hashing, and access tokens that outlive a test module.
FAST_HASH = {
    "ZAP_ARGON2_TIME_COST": "1",
    "ZAP_ARGON2_MEMORY_KIB": "64",
    "ZAP_ACCESS_TOKEN_TTL": "3600",
}
PASSWORD = "team-pass-123"  # every user the tests create
_homes = itertools.count()


@contextmanager
def process_database(backend: str, tmp: Path) -> Iterator[str]:
    """Yield a database URL another process can open: a SQLite file or a new PG database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'proc.db'}"
        return
    problem = asyncio.run(_pg_probe())
    if problem:  # with CI=true the session has already failed on this
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"zt_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL unusable: {exc}")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Initialised:
    """An instance `zapctl init` made: where it lives and how to reach its database."""

    url: str  # async SQLAlchemy URL, to inspect the database directly
    state_dir: Path
    db_args: list[str]  # CLI args selecting the database ([] for SQLite in the state dir)

    @property
    def where(self) -> list[str]:
        """The `--state-dir DIR [--db URL]` arguments of offline commands and zapd."""
        return ["--state-dir", str(self.state_dir), *self.db_args]


def init_instance(tmp: Path, database_url: str, env: dict[str, str]) -> Initialised:
    """Run `zapctl init` on a new state dir in `tmp` with the root admin; return it."""
    state_dir = tmp / "state"
    db_args, url = default_db_args(database_url, state_dir)
    init = run_cli(
        "init", *["--state-dir", str(state_dir), *db_args],
        "--admin-email", ROOT_EMAIL, "--admin-password", ROOT_PASSWORD, env=env,
    )  # fmt: skip
    assert init.code == 0, init.err
    return Initialised(url=url, state_dir=state_dir, db_args=db_args)


@contextmanager
def served_instance(backend: str, tmp: Path) -> Iterator[tuple[Zapd, dict[str, str]]]:
    """Init an instance on `backend`, run zapd on it; yield zapd and the root's environment."""
    env = child_env(tmp / "home-root", **FAST_HASH)
    with process_database(backend, tmp) as url:
        made = init_instance(tmp, url, env)
        with running_zapd(*made.where, env=env, log_path=tmp / "zapd.log") as zapd:
            yield zapd, env


# --------------------------------------------------------------------------- Instance
# One zapd per test module, a logged-in global admin, tenants made on demand
# (test_company.py, test_people.py, test_catalog_cli.py).


def new_cnpj() -> str:
    """Return a random valid CNPJ (digits only)."""
    base = f"{random.randrange(10**7, 10**8)}0001"
    return base + cnpj_check_digits(base)


@dataclass
class Tenant:
    """A company with an admin, a supervisor and an agent, each with a zapctl environment."""

    id: str
    cnpj: str
    admin: dict[str, str]
    supervisor: dict[str, str]
    agent: dict[str, str]
    emails: dict[str, str]


@dataclass
class Instance:
    """A running zapd and a global admin logged in to it with zapctl."""

    server: str
    tmp: Path
    backend: str
    root: dict[str, str] = field(default_factory=dict)
    root_token: str = ""

    def cli(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        """Run `zapctl --server URL ARGS...` (as the global admin unless `env` says otherwise)."""
        return run_cli("--server", self.server, *args, env=env or self.root)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        """Run a command that must succeed."""
        result = self.cli(*args, env=env)
        assert result.code == 0, (args, result.err, result.out)
        assert "Traceback" not in result.out + result.err
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run a command with --json and return the parsed document."""
        return self.ok("--json", *args, env=env).json()

    def fail(self, code: int, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a command that must fail with `code` and one clean line; return that line."""
        result = self.cli(*args, env=env)
        assert result.code == code, (args, result.code, result.err, result.out)
        assert result.out == ""
        return one_line(result.err)

    def many(self, *calls: list[str] | tuple[dict[str, str], list[str]]) -> list[CliResult]:
        """Run independent commands concurrently (each `[args]` or `(env, [args])`), in order.

        zapctl's start-up dominates these tests on a busy machine; commands that do not
        depend on each other run side by side.
        """
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(self.cli, *c[1], env=c[0])
                if isinstance(c, tuple)
                else pool.submit(self.cli, *c)
                for c in calls
            ]
            return [f.result() for f in futures]

    def http(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """Call the API directly (fast test setup); return the JSON answer."""
        headers = {"Authorization": f"Bearer {token or self.root_token}"}
        resp = httpx.request(method, self.server + path, headers=headers, timeout=30, **kw)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    def token_env(self, email: str, password: str) -> dict[str, str]:
        """Log in over HTTP; return a zapctl environment using that access token."""
        resp = httpx.post(
            self.server + "/api/v1/auth/login",
            json={"email": email, "password": password},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        home = self.tmp / f"home-{next(_homes)}"
        return child_env(home, ZAP_TOKEN=resp.json()["access_token"])

    def tenant(self, name: str | None = None) -> Tenant:
        """Create a company with an admin, a supervisor and an agent (over HTTP)."""
        cnpj = new_cnpj()
        tag = uuid.uuid4().hex[:8]
        company = self.http(
            "POST", "/api/v1/companies", json={"name": name or f"Empresa {tag}", "cnpj": cnpj}
        )
        envs: dict[str, dict[str, str]] = {}
        emails: dict[str, str] = {}
        for role, value in (("admin", 0), ("supervisor", 1), ("agent", 2)):
            emails[role] = email = f"{role}-{tag}@acme.com.br"
            self.http(
                "POST",
                "/api/v1/users",
                json={
                    "email": email,
                    "name": role.title(),
                    "password": PASSWORD,
                    "role": value,
                    "company_id": company["id"],
                },
            )
            envs[role] = self.token_env(email, PASSWORD)
        return Tenant(company["id"], cnpj, envs["admin"], envs["supervisor"], envs["agent"], emails)


@contextmanager
def start_instance(backend: str, tmp: Path) -> Iterator[Instance]:
    """Init an instance, run zapd on it and log the global admin in with zapctl."""
    with served_instance(backend, tmp) as (zapd, env):
        inst = Instance(server=zapd.base_url, tmp=tmp, backend=backend, root=env)
        inst.ok("login", "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD)
        inst.root_token = inst.token_env(ROOT_EMAIL, ROOT_PASSWORD)["ZAP_TOKEN"]
        yield inst


def instance_fixture(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    """Body of each test module's module-scoped `inst` fixture (param: the backend)."""
    with start_instance(request.param, factory.mktemp(f"zap-{request.param}")) as inst:
        yield inst


def ok(result: CliResult) -> CliResult:
    """Check a command succeeded cleanly."""
    assert result.code == 0, (result.code, result.err, result.out)
    assert "Traceback" not in result.out + result.err
    return result


def failed(result: CliResult, code: int) -> str:
    """Check a command failed with `code` and one clean line on stderr; return that line."""
    assert result.code == code, (result.code, result.err, result.out)
    assert result.out == ""
    return one_line(result.err)


def run_parallel(env: dict[str, str], *argsets: list[str]) -> list[CliResult]:
    """Run independent `zapctl ARGS` side by side (no server involved); results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_cli(*args, env=env), argsets))


def help_texts(noun: str) -> dict[str, str]:
    """Return each `zapctl NOUN CMD --help` text, rendered in-process (fast)."""
    import typer.main

    from zapctl.main import app

    root: Any = typer.main.get_command(app)
    sub: Any = root.get_command(root.context_class(root, info_name="zapctl"), noun)  # lazy
    out = {}
    for name, cmd in sub.commands.items():
        ctx = cmd.context_class(cmd, info_name=f"zapctl {noun} {name}")
        out[name] = cmd.get_help(ctx)
    return out


def check_help(noun: str, commands: set[str]) -> None:
    """Check every command of `noun` has a one-line summary and examples of itself."""
    texts = help_texts(noun)
    assert set(texts) == commands
    for name, text in texts.items():
        assert "Examples:" in text or "Example:" in text, text
        assert f"zapctl {noun} {name}" in text.split("Example", 1)[1], text


def run_on_tty(args: list[str], env: dict[str, str], answer: str) -> CliResult:
    """Run zapctl with a terminal on stdin that types `answer`."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        proc = subprocess.run(
            [str(ZAPCTL), *args],
            env=env,
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
