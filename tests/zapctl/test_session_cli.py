"""`zapctl session ...` (and the sandbox linking) against a real zapd, SQLite and PostgreSQL.

The `Stack` here — one zapd per test module, a company seeded through the API, and one
logged-in HOME per role — is shared by test_tickets_cli.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pty
import select
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.helpers import (
    ZAPCTL,
    CliResult,
    Zapd,
    child_env,
    free_port,
    one_line,
    run_cli,
)
from tests.zapctl.instance import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, served_instance
from tests.zapctl.test_qr import decode, parse_drawing, same_modules

ROOT = (ROOT_EMAIL, ROOT_PASSWORD)
ROLES = {  # who: (e-mail, role, departments)
    "admin": ("admin@acme.com.br", "ADMIN", []),
    "supervisor": ("sup@acme.com.br", "SUPERVISOR", ["suporte"]),
    "agent": ("ana@acme.com.br", "AGENT", ["suporte"]),
    "agent2": ("bia@acme.com.br", "AGENT", ["financeiro"]),
}
_names = itertools.count(1)
T = TypeVar("T")


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A running zapd, a seeded company and one zapctl HOME logged in per role."""

    zapd: Zapd
    tmp: Path
    backend: str
    company_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # departments, users, category
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return self.zapd.base_url

    def env(self, who: str) -> dict[str, str]:
        """Return the environment `who` runs zapctl in (their access token in ZAP_TOKEN)."""
        return self.envs[who]

    def login(self, who: str, email: str, password: str) -> None:
        """Log `who` in through the API and keep the token for their zapctl runs.

        (`zapctl login` itself is tested with the auth commands; a token in ZAP_TOKEN
        saves a CLI start per role, which matters on a loaded two-core machine.)
        """
        token = asyncio.run(_access_token(self.server, email, password))
        home = self.tmp / f"home-{who}"
        self.envs[who] = child_env(home, ZAP_SERVER=self.server, ZAP_TOKEN=token)

    def api(self, who: str, path: str, **params: Any) -> Any:
        """GET an API path as `who` straight over HTTP (for the tests' own observations)."""
        token = self.envs[who]["ZAP_TOKEN"]
        response = httpx.get(
            f"{self.server}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, who: str, path: str, body: Any = None) -> Any:
        """POST to an API path as `who` over HTTP (setup the test is not about)."""
        token = self.envs[who]["ZAP_TOKEN"]
        response = httpx.post(
            f"{self.server}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code < 300, response.text
        return response.json()

    def session(self, name: str, *, start: bool = False, **fields: Any) -> str:
        """Add a session over HTTP (and start it); return its id."""
        sid = str(self.post("admin", "/sessions", {"name": name, "engine": 0} | fields)["id"])
        if start:
            self.post("admin", f"/sessions/{sid}/start")
            eventually(lambda: self.api("admin", f"/sessions/{sid}/qr")["qr"], what="a QR")
        return sid

    def many(self, calls: list[tuple[int, str, tuple[str, ...]]]) -> list[str]:
        """Run independent failing commands side by side: (exit code, who, args) each."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda c: self.fail(c[0], c[1], *c[2]), calls))

    def parallel(self, calls: list[tuple[str, tuple[str, ...]]]) -> list[CliResult]:
        """Run independent commands side by side: (who, args) each; return their results."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda c: self.cli(c[0], *c[1]), calls))

    def cli(self, who: str, *args: str, timeout: float = 60) -> CliResult:
        """Run `zapctl ARGS...` as `who` (root, admin, supervisor, agent, agent2)."""
        result = run_cli(*args, env=self.env(who), timeout=timeout)
        assert "Traceback" not in result.out + result.err, result
        return result

    def spawn(self, who: str, *args: str) -> subprocess.Popen[str]:
        """Start `zapctl ARGS...` as `who` in the background, its output piped as text."""
        return subprocess.Popen(
            [str(ZAPCTL), *args],
            env=self.env(who),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ok(self, who: str, *args: str) -> CliResult:
        """Run a command that must succeed."""
        result = self.cli(who, *args)
        assert result.code == 0, (args, result.code, result.err, result.out)
        return result

    def json(self, who: str, *args: str) -> Any:
        """Run a command with --json and return its one JSON document."""
        result = self.ok(who, "--json", *args)
        return result.json()

    def fail(self, code: int, who: str, *args: str) -> str:
        """Run a command that must fail with `code`, stdout empty; return its error line."""
        result = self.cli(who, *args)
        assert result.code == code, (args, result.code, result.err, result.out)
        assert result.out == "", result.out
        if code == 2 and result.err.startswith("Usage:"):  # click's own usage error
            return result.err.strip().splitlines()[-1]
        line = one_line(result.err)
        assert line.startswith("zapctl: "), line
        return line


async def _access_token(server: str, email: str, password: str) -> str:
    from shared.client import ZapClient

    async with ZapClient(server) as zap:
        return (await zap.login(email, password)).access_token


async def _seed(stack: Stack) -> None:
    from shared.client import ZapClient
    from shared.enums import Role
    from shared.protocol.catalog import CategoryCreate
    from shared.protocol.companies import CompanyCreate
    from shared.protocol.departments import DepartmentCreate
    from shared.protocol.users import UserCreate

    async with ZapClient(stack.server) as zap:
        await zap.login(*ROOT)
        company = await zap.create_company(CompanyCreate(name="Acme", cnpj="11222333000181"))
        cid = company.id
        stack.company_id = str(cid)
        for order, (slug, name) in enumerate(
            (("suporte", "Suporte"), ("financeiro", "Financeiro"))
        ):
            dep = await zap.create_department(
                DepartmentCreate(name=name, slug=slug, menu_order=order + 1, company_id=cid)
            )
            stack.ids[slug] = str(dep.id)
        category = await zap.create_category(CategoryCreate(name="Resolvido", company_id=cid))
        stack.ids["resolvido"] = str(category.id)
        for who, (email, role, deps) in ROLES.items():
            user = await zap.create_user(
                UserCreate(
                    email=email,
                    name=who.title(),
                    password=PASSWORD,
                    role=Role[role],
                    department_ids=[uuid.UUID(stack.ids[d]) for d in deps],
                    company_id=cid,
                )
            )
            stack.ids[who] = str(user.id)


@contextmanager
def start_stack(backend: str, tmp: Path) -> Iterator[Stack]:
    """Init an instance, run zapd, seed a company and log every role in."""
    with served_instance(backend, tmp) as (zapd, _):
        stack = Stack(zapd=zapd, tmp=tmp, backend=backend)
        asyncio.run(_seed(stack))
        stack.login("root", *ROOT)
        for who, (email, _, _) in ROLES.items():
            stack.login(who, email, PASSWORD)
        yield stack


def stack_fixture(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Body of each test module's module-scoped `stack` fixture."""
    with start_stack(request.param, factory.mktemp(f"zapctl-{request.param}")) as stack:
        yield stack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from stack_fixture(request, tmp_path_factory)


def eventually(check: Callable[[], T | None], within: float = 10, what: str = "") -> T:
    """Call `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.2)


def client_side_only(stack: Stack) -> None:
    """Run a test of zapctl's own behaviour once: the database cannot change it."""
    if stack.backend != "sqlite":
        pytest.skip("zapctl-side behaviour (drawing, timing): checked on the SQLite run")


def new_name(prefix: str = "Linha") -> str:
    return f"{prefix} {next(_names)}"


def add_session(stack: Stack, name: str, *extra: str) -> dict[str, Any]:
    """Add a session as the company admin; return it as JSON."""
    doc = stack.json("admin", "session", "add", name, *extra)
    assert doc["name"] == name
    return dict(doc)


def link_sandbox(stack: Stack, name: str, phone: str | None = None) -> str:
    """Start a sandbox session and scan its QR; return its id once connected."""
    sid = stack.json("admin", "session", "start", name)["id"]
    scan = ["--phone", phone] if phone else []
    eventually(
        lambda: stack.cli("admin", "sandbox", "scan", name, *scan).code == 0,
        what=f"sandbox scan {name}",
    )
    eventually(
        lambda: stack.api("admin", f"/sessions/{sid}")["status"] == 0, what=f"{name} connected"
    )
    return str(sid)


# --------------------------------------------------------------------------- CRUD


def test_add_list_show_status(stack: Stack) -> None:
    name = new_name()
    doc = add_session(stack, name, "--engine", "sandbox", "--dept", "Suporte")
    assert doc["engine"] == "SANDBOX" and doc["status"] == "DISCONNECTED"  # --json: by name
    assert doc["default_department_id"] == stack.ids["suporte"]
    assert doc["company_id"] == stack.company_id
    assert doc["webhook_secret"] is None
    sid = doc["id"]

    listed, table, shown, upper, human, status, plain = stack.parallel(
        [
            ("agent", ("--json", "session", "list")),  # every role may read sessions
            ("admin", ("session", "list")),
            ("admin", ("--json", "session", "show", sid)),
            ("admin", ("--json", "session", "show", name.upper())),  # names: any case
            ("admin", ("session", "show", name)),
            ("supervisor", ("--json", "session", "status", name)),
            ("admin", ("session", "status", sid)),
        ]
    )
    assert sid in [s["id"] for s in listed.json()]
    rows = table.out.splitlines()
    assert rows[0].split() == ["ID", "NAME", "ENGINE", "STATUS", "PHONE", "ACTIVE", "HEARTBEAT"]
    row = next(line for line in rows if sid in line)
    assert "sandbox" in row and "DISCONNECTED" in row
    assert rows[0].index("STATUS") == row.index("DISCONNECTED")  # aligned columns
    assert shown.json()["name"] == name and upper.json() == shown.json()
    assert f"name:               {name}\n" in human.out
    assert "status:             DISCONNECTED" in human.out
    assert status.json() == {
        "id": sid,
        "name": name,
        "status": 1,
        "status_name": "DISCONNECTED",
        "status_reason": None,
        "phone": None,
        "last_heartbeat_at": None,
    }
    assert plain.out == f"{name}: DISCONNECTED\n"


def test_add_prints_the_webhook_secret_once_and_checks_options(stack: Stack) -> None:
    name, cloud, bad = new_name("Webhook"), new_name("Cloud"), new_name("Ruim")
    hooked, clouded = stack.parallel(
        [
            ("admin", ("session", "add", name, "--engine", "webjs",
                       "--webhook-url", "https://crm.example.com/zap")),
            ("admin", ("--json", "session", "add", cloud, "--engine", "cloud",
                       "--cloud-phone-number-id", "1234567890",
                       "--cloud-token", "EAAG-secret-token",
                       "--cloud-app-secret", "app-secret-value")),
        ]
    )  # fmt: skip
    secret_line = next(line for line in hooked.out.splitlines() if "webhook secret" in line)
    secret = secret_line.rsplit(" ", 1)[1]
    assert secret.startswith("whsec_") and len(secret) > 20
    doc = clouded.json()
    assert doc["engine"] == "CLOUD"
    assert doc["config"]["phone_number_id"] == "1234567890"
    assert doc["config"]["access_token"] == "********"  # never echoed back

    shown, *errors = stack.parallel(
        [
            ("admin", ("session", "show", name)),
            # Usage errors, caught before anything is sent.
            ("admin", ("session", "add", bad, "--engine", "cloud")),
            ("admin", ("session", "add", bad, "--cloud-token", "x")),
            ("admin", ("session", "add", bad, "--engine", "telepathy")),
            # Refusals: a duplicate name, a bad URL, an unknown department, a role.
            ("admin", ("session", "add", name)),
            ("admin", ("session", "add", bad, "--webhook-url", "ftp://x")),
            ("admin", ("session", "add", bad, "--dept", "nope")),
            ("supervisor", ("session", "add", bad)),
        ]
    )
    assert secret not in shown.out and "webhook secret:     set" in shown.out
    assert [e.code for e in errors] == [2, 2, 2, 1, 1, 3, 4]
    assert all(e.out == "" for e in errors)
    lines = [e.err.strip().splitlines()[-1] for e in errors]
    assert lines[0] == "zapctl: the cloud engine needs --cloud-phone-number-id and --cloud-token"
    assert lines[1] == "zapctl: --cloud-* options are for --engine cloud"
    assert "'telepathy' is not one of" in lines[2]
    assert lines[3] == f"zapctl: a session named {name!r} already exists"
    assert lines[4].startswith("zapctl: webhook_url: ") and "http" in lines[4]
    assert lines[5] == "zapctl: no department 'nope'"
    assert lines[6] == "zapctl: this needs the ADMIN role or higher"
    names = [s["name"] for s in stack.api("admin", "/sessions")]
    assert bad not in names and names.count(name) == 1


def test_unknown_sessions_answer_3(stack: Stack) -> None:
    missing = str(uuid.uuid4())
    errors = stack.many(
        [
            (3, "admin", ("session", "show", missing)),
            (3, "admin", ("session", "start", "Nope", "--wait")),
            (3, "agent", ("session", "status", "Nope")),
            (3, "admin", ("sandbox", "say", "Nope", "+5511987654321", "oi")),
        ]
    )
    assert errors[0] == "zapctl: session not found"  # the server's 404
    assert errors[1] == errors[2] == errors[3] == "zapctl: no session named 'Nope'"


# --------------------------------------------------------------------------- linking


def test_start_wait_links_when_the_sandbox_phone_scans(stack: Stack) -> None:
    name = new_name()
    sid = add_session(stack, name)["id"]
    err = stack.fail(1, "admin", "session", "qr", name)
    assert err == (
        f"zapctl: session {name} is not started: there is no QR code"
        f" (run: zapctl session start {name!r} --wait)"
    )
    waiter = stack.spawn("admin", "--json", "session", "start", name, "--wait", "--timeout", "60")
    try:
        eventually(
            lambda: stack.api("admin", f"/sessions/{sid}/qr")["qr"], within=30, what="a QR code"
        )
        code = stack.json("admin", "session", "qr", name)
        assert code["qr"].startswith(f"zap-sandbox:{sid}:")
        assert code["sandbox"] is True and code["status"] == "WAITING_QR" and code["expires_at"]
        assert waiter.poll() is None  # still waiting for the scan
        scanned = stack.ok("admin", "sandbox", "scan", name, "--phone", "+55 11 3000-0042")
        assert scanned.out == f"session {name} linked to +551130000042\n"
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert err == ""  # --json: nothing but the one document
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert doc["id"] == sid and doc["status"] == "CONNECTED" and doc["phone"] == "+551130000042"
    assert doc["started"] is True

    # Connected now: no QR to show, and starting again is not an error.
    no_qr, again, status = stack.parallel(
        [
            ("admin", ("session", "qr", name)),
            ("admin", ("session", "start", name, "--wait")),
            ("agent", ("--json", "session", "status", name)),
        ]
    )
    assert no_qr.code == 1
    assert one_line(no_qr.err) == (
        f"zapctl: session {name} is already connected: there is no QR code to scan"
    )
    assert again.code == 0 and again.out == f"session {name} is connected (+551130000042)\n"
    assert status.json()["status_name"] == "CONNECTED" and status.json()["last_heartbeat_at"]


def test_qr_drawing_decodes_to_the_sessions_payload(stack: Stack) -> None:
    client_side_only(stack)
    name = new_name()
    stack.session(name, start=True)
    for _ in range(3):  # the code rotates every 20 s: both reads must see the same one
        drawn, as_json = stack.parallel(
            [("admin", ("session", "qr", name)), ("admin", ("--json", "session", "qr", name))]
        )
        payload = as_json.json()["qr"]
        art = "\n".join(line for line in drawn.out.splitlines() if set(line) <= set(" ▀▄█"))
        modules = parse_drawing(art)
        if decode(modules) == [payload]:
            break
    else:
        pytest.fail("the drawn QR never matched the session's payload")
    assert same_modules(modules, payload)  # exactly qrcode's matrix, quiet zone included
    assert f"SANDBOX: link it with: zapctl sandbox scan {name!r}" in drawn.out
    assert "expires " in drawn.out
    assert "\x1b[" not in drawn.out  # not a terminal: no colour codes
    errors = stack.many(
        [
            (4, "agent", ("session", "qr", name)),  # agents may not see the code
            (2, "admin", ("--json", "session", "qr", name, "--watch")),
        ]
    )
    assert "ADMIN" in errors[0] and "--json" in errors[1]


def test_wait_and_watch_time_out_with_6(stack: Stack) -> None:
    client_side_only(stack)
    name = new_name()
    stack.session(name, start=True)  # waiting on a started session is fine
    human, quiet, watched = stack.parallel(
        [
            ("admin", ("session", "start", name, "--wait", "--timeout", "1.5")),
            ("admin", ("--json", "session", "start", name, "--wait", "--timeout", "3")),
            ("admin", ("session", "qr", name, "--watch", "--timeout", "4")),
        ]
    )
    assert human.code == 6, human
    assert human.err.splitlines()[-1] == (
        f"zapctl: session {name} did not connect within 1.5s (status WAITING_QR)"
    )
    assert "session qr" in human.err.splitlines()[0]  # told where the QR is
    # --json: nothing on stdout, one error line.
    assert quiet.code == 6 and quiet.out == "", quiet
    assert one_line(quiet.err).endswith("did not connect within 3s (status WAITING_QR)")
    # The watcher drew the code, then gave up.
    assert watched.code == 6, watched
    assert watched.err == f"zapctl: session {name} was not linked within 4s\n"
    art = "\n".join(line for line in watched.out.splitlines() if set(line) <= set(" ▀▄█"))
    assert decode(parse_drawing(art))[0].startswith("zap-sandbox:")


def test_watch_ends_when_the_session_connects(stack: Stack) -> None:
    client_side_only(stack)
    name = new_name()
    stack.session(name, start=True)
    watcher = stack.spawn("admin", "session", "qr", name, "--watch", "--timeout", "60")
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # the watcher drew the code: now scan it
        assert first.startswith("SANDBOX (simulated WhatsApp): link it with"), first
        stack.ok("admin", "sandbox", "scan", name)
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert out.splitlines()[-1].startswith(f"session {name} is connected (+5511")


def read_until(fd: int, done: Callable[[bytes], bool], within: float = 30) -> bytes:
    """Read a pty until `done(everything read)` holds, or it closes; fail on timeout."""
    got = b""
    deadline = time.monotonic() + within
    while not done(got):
        left = deadline - time.monotonic()
        assert left > 0, got.decode(errors="replace")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        got += chunk
    return got


def test_start_wait_on_a_terminal_draws_the_code_in_colour(stack: Stack) -> None:
    client_side_only(stack)
    name = new_name()
    stack.session(name)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(ZAPCTL), "session", "start", name, "--wait", "--timeout", "60"],
        env=stack.env("admin"),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    try:
        paint = b"\x1b[30;107m"
        drawn = read_until(master, lambda b: b.count(paint) >= 20 and b.endswith(b"\n"))
        stack.ok("admin", "sandbox", "scan", name)
        rest = read_until(master, lambda b: b"is connected" in b and b.endswith(b"\n"))
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = drawn.decode().replace("\r", "")
    painted = [line for line in text.splitlines() if line.startswith("\x1b[30;107m")]
    # Black ink on a white background whatever the terminal's theme, and it decodes.
    assert decode(parse_drawing("\n".join(painted)))[0].startswith("zap-sandbox:")
    assert text.startswith("SANDBOX (simulated WhatsApp): link it with: zapctl sandbox scan")
    assert f"session {name} is connected (+5511" in rest.decode()


def test_pair_links_with_a_code_typed_on_the_phone(stack: Stack) -> None:
    name, quick = new_name("Par"), new_name("Par")
    add_session(stack, name)
    add_session(stack, quick)
    # --wait: the code shows at once, the command ends when the phone has typed it.
    proc = stack.spawn("admin", "session", "pair", name, "--phone", "11 91234-0001", "--wait")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"pairing code for {name}: "), first
        code = first.split(": ", 1)[1].split()[0]
        assert len(code) == 9 and code[4] == "-"
        assert "(for +5511912340001, expires " in first
        assert "Link with phone number instead" in proc.stdout.readline()
        assert proc.stdout.readline().strip() == (
            f"SANDBOX: type it with: zapctl sandbox pair {name!r} {code}"
        )
        wrong = stack.fail(1, "admin", "sandbox", "pair", name, "ZZZZ-ZZZ1")
        assert wrong == "zapctl: wrong pairing code"
        linked = stack.ok("admin", "sandbox", "pair", name, code).out
        assert linked == f"session {name} linked to +5511912340001\n"
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert rest == f"session {name} is connected (+5511912340001)\n"

    # --json without --wait: the code for a script, which types it later.
    doc = stack.json("admin", "session", "pair", quick, "--phone", "+5511912340002")
    assert doc["phone"] == "+5511912340002" and doc["sandbox"] is True
    assert doc["display"] == doc["code"][:4] + "-" + doc["code"][4:]
    typed = stack.json("admin", "sandbox", "pair", quick, doc["code"])
    assert typed == {"session": quick, "phone": "+5511912340002"}
    eventually(
        lambda: stack.api("admin", f"/sessions/{doc['session_id']}")["status"] == 0,
        what=f"{quick} connected",
    )
    again = stack.fail(1, "admin", "session", "pair", quick, "--phone", "+5511912340002")
    assert again == f"zapctl: session {quick} is already linked (+5511912340002)"


def test_engine_errors_stop_logout_logs_and_pair(stack: Stack) -> None:
    webjs, name = new_name("Web"), new_name()
    stack.session(webjs, engine=1)
    stack.session(name)
    link_sandbox(stack, name, "+551130000077")
    errors = stack.many(
        [
            # (A webjs session is never started here: it would load WhatsApp Web; the
            # engine's own tests drive it against the contract fake.)
            (1, "admin", ("session", "pair", webjs, "--phone", "12")),
            (1, "admin", ("sandbox", "scan", webjs)),
            (1, "admin", ("session", "pair", name, "--phone", "+5511987654321")),
        ]
    )
    assert errors[0] == "zapctl: invalid phone number '12': is too short"
    assert errors[1] == "zapctl: not a sandbox session"
    assert errors[2] == f"zapctl: session {name} is already linked (+551130000077)"

    stopped = stack.json("admin", "session", "stop", name)
    assert stopped["status"] == "DISCONNECTED" and stopped["status_reason"] == "stopped"
    errors = stack.many(
        [
            (1, "admin", ("session", "stop", name)),
            (2, "admin", ("session", "logout", name)),  # asks first: no terminal, no --yes
            (2, "admin", ("session", "logs", name, "--level", "loud")),
            (4, "agent", ("session", "logs", name)),
        ]
    )
    assert errors[0] == "zapctl: session is not running"
    assert "--yes" in errors[1]
    assert errors[3] == "zapctl: this needs the SUPERVISOR role or higher"
    out = stack.ok("admin", "session", "logout", name, "--yes").out
    assert out == f"session {name} logged out: link it again with a QR code\n"

    # The log, oldest first, filtered by level and cut to the last N lines.
    lines, human = stack.parallel(
        [
            ("supervisor", ("--json", "session", "logs", name, "--level", "info")),
            ("admin", ("session", "logs", name, "--limit", "2")),
        ]
    )
    statuses = [x["message"] for x in lines.json() if x["event"] == "status"]
    assert statuses == [
        "WAITING_QR: SANDBOX (simulated WhatsApp)",
        "AUTHENTICATING",
        "SYNCING",
        "CONNECTED: SANDBOX (simulated WhatsApp)",
        "DISCONNECTED: stopped",
        "DISCONNECTED: logged out",
    ]
    stamps = [x["created_at"] for x in lines.json()]
    assert stamps == sorted(stamps)
    assert all(x["level"] in ("INFO", "WARNING", "ERROR") for x in lines.json())  # by name
    last = human.out.splitlines()
    assert len(last) == 2
    assert last[-1].split()[2:] == ["INFO", "status:", "DISCONNECTED:", "logged", "out"]


def test_roles_on_admin_commands(stack: Stack) -> None:
    name = new_name()
    sid = stack.session(name)
    errors = stack.many(
        [
            (4, "agent", ("session", "start", name, "--wait")),
            (4, "supervisor", ("session", "stop", name)),
            (4, "supervisor", ("session", "logout", name, "--yes")),
            (4, "agent", ("sandbox", "scan", name)),
            (4, "supervisor", ("sandbox", "inbox", name, "+5511987654321")),
            (4, "agent", ("outbox", "list")),
        ]
    )
    assert all(e == "zapctl: this needs the ADMIN role or higher" for e in errors), errors
    assert stack.api("admin", f"/sessions/{sid}")["status"] == 1  # nothing happened


def test_other_companies_sessions_are_not_found(stack: Stack) -> None:
    """Another company's admin cannot see the seeded company's sessions (404, exit 3)."""
    from shared.protocol.companies import CompanyCreate
    from shared.protocol.users import UserCreate

    async def other_admin() -> None:
        from shared.client import ZapClient
        from shared.enums import Role

        async with ZapClient(stack.server) as zap:
            await zap.login(*ROOT)
            other = await zap.create_company(CompanyCreate(name="Outra", cnpj="11444777000161"))
            await zap.create_user(
                UserCreate(
                    email="admin@outra.com.br",
                    name="Outra",
                    password=PASSWORD,
                    role=Role.ADMIN,
                    company_id=other.id,
                )
            )

    asyncio.run(other_admin())
    name = new_name()
    sid = stack.session(name)
    # This one logs in with `zapctl login` (stored credentials, not ZAP_TOKEN).
    stack.envs["other"] = child_env(stack.tmp / "home-other", ZAP_SERVER=stack.server)
    stack.ok("other", "login", "--email", "admin@outra.com.br", "--password", PASSWORD)
    listed, *hidden, root_show, root_add, root_fail = stack.parallel(
        [
            ("other", ("--json", "session", "list")),
            ("other", ("session", "show", sid)),
            ("other", ("session", "show", name)),
            ("other", ("session", "start", sid)),
            # The global admin sees it, and adds sessions naming the company (id or CNPJ).
            ("root", ("--json", "session", "show", sid)),
            ("root", ("--json", "session", "add", new_name("Root"),
                      "--company", "11.444.777/0001-61")),
            ("root", ("session", "add", new_name("Root"))),
        ]
    )  # fmt: skip
    assert listed.json() == []
    assert [h.code for h in hidden] == [3, 3, 3]
    assert [one_line(h.err) for h in hidden] == [
        "zapctl: session not found",
        f"zapctl: no session named {name!r}",
        "zapctl: session not found",
    ]
    assert root_show.json()["name"] == name
    added = root_add.json()
    assert added["company_id"] != stack.company_id
    assert added["id"] in [s["id"] for s in stack.api("root", "/sessions")]
    assert root_fail.code == 2  # a usage mistake, naming the flag (issue 9)
    assert one_line(root_fail.err).startswith("zapctl: missing --company")


def test_daemon_down_answers_5(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(tmp_path / "home", ZAP_TOKEN="zap_not_a_real_token")
    url = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(
                lambda args: run_cli("--server", url, *args, env=env),
                [
                    ("session", "start", "Linha", "--wait"),
                    ("sandbox", "scan", "Linha"),
                    ("outbox", "list"),
                ],
            )
        )
    for result in results:
        assert result.code == 5, result
        assert result.out == ""
        assert one_line(result.err) == f"zapctl: cannot reach zapd at {url} — is it running?"
