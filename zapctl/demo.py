"""`zapctl demo`: a whole zap on SQLite with a simulated WhatsApp and customers writing.

Starts zapd on a demo state dir, seeds a company with four departments, an admin and
two agents (credentials printed), links a SANDBOX session (a simulated WhatsApp
network: no real message leaves the machine), then lets simulated customers write
now and then. On a terminal it opens zaptui (a separate process: zapctl never imports
zaptui) logged in as the first demo agent, so the customers can be answered at once;
with `--no-tui`, or without a terminal, it prints the traffic as it happens instead.
Ctrl+C (or quitting zaptui, or closing the terminal) stops everything, zapd included;
zapd also goes when zapctl dies any other way (`_dies_with`). Running it again reuses
what is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.output import notice

if TYPE_CHECKING:
    from shared.client import ZapClient

ROOT = ("root@demo.zap.br", "zapdemo123")
PASSWORD = "zapdemo123"
CNPJ = "11222333000181"  # a valid demo CNPJ
COMPANY = "Clínica Vida (demo)"
DEPARTMENTS = [
    ("Laboratório", ["exame", "coleta", "resultado"]),
    ("Comercial", ["orçamento", "preço", "plano"]),
    ("Financeiro", ["boleto", "pagamento", "nota"]),
    ("Administrativo", ["documento", "rh"]),
]
PEOPLE = [
    ("admin@demo.zap.br", "Alice Admin", 0, []),
    ("ana@demo.zap.br", "Ana Atendente", 2, ["Laboratório", "Comercial"]),
    ("bruno@demo.zap.br", "Bruno Atendente", 2, ["Financeiro", "Administrativo"]),
]
SESSION = "WhatsApp Demo (sandbox)"
CUSTOMERS = [
    (
        "Maria Souza",
        "+5511987650001",
        ["Oi, bom dia!", "1", "Quero saber do resultado do meu exame"],
    ),
    ("João Lima", "+5511987650002", ["Olá", "comercial", "Quanto custa o check-up completo?"]),
    ("Fernanda Alves", "+5511987650003", ["Boa tarde", "3", "Preciso da segunda via do boleto"]),
    ("Carlos Pereira", "+5521987650004", ["oi", "xyz", "administrativo", "Vocês emitem atestado?"]),
    ("Juliana Costa", "+5531987650005", ["Bom dia", "laboratorio", "A coleta precisa de jejum?"]),
]


@dataclass
class Seeded:
    """Ids the demo needs after seeding."""

    company_id: Any
    session_id: Any


def _zapd_argv(state_dir: Path, host: str, port: int) -> list[str]:
    exe = Path(sys.executable).parent / "zapd"
    cmd = (
        [str(exe)] if exe.exists() else [sys.executable, "-c", "from zapd.main import main; main()"]
    )
    return [*cmd, "--state-dir", str(state_dir), "--host", host, "--port", str(port)]


def _port_is_free(host: str, port: int) -> bool:
    """Tell whether nothing listens on host:port (a quick bind, released at once)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return True  # a bad --host: zapd itself says what is wrong with it
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
    return True


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


async def _wait_ready(
    zap: ZapClient, proc: subprocess.Popen[bytes], within: float, log_path: Path
) -> None:
    from shared.client import ZapError

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            last = _last_line(log_path)
            why = f": {last}" if last.startswith("zapd: ") else f"; see its log {log_path}"
            raise CliError(f"zapd exited with code {proc.returncode}{why}")
        with contextlib.suppress(ZapError):
            await zap.readyz()
            return
        await asyncio.sleep(0.2)
    raise CliError(f"zapd did not become ready within {within:g}s", ExitCode.TIMEOUT)


async def _seed(zap: ZapClient) -> Seeded:
    from shared.client import Conflict
    from shared.enums import Engine, Role, SessionStatus
    from shared.protocol.companies import CompanyCreate
    from shared.protocol.departments import DepartmentCreate
    from shared.protocol.sessions import SessionCreate
    from shared.protocol.users import UserCreate

    await zap.login(*ROOT)
    companies = [c async for c in zap.iterate(zap.list_companies)]
    company = next((c for c in companies if c.cnpj == CNPJ), None)
    if company is None:
        company = await zap.create_company(CompanyCreate(name=COMPANY, cnpj=CNPJ))
    cid = company.id
    existing = {d.name: d for d in await zap.list_departments(company_id=cid)}
    depts = {}
    for order, (name, keywords) in enumerate(DEPARTMENTS, start=1):
        if name not in existing:
            existing[name] = await zap.create_department(
                DepartmentCreate(name=name, keywords=keywords, menu_order=order, company_id=cid)
            )
        depts[name] = existing[name].id
    for email, name, role, dept_names in PEOPLE:
        with contextlib.suppress(Conflict):
            await zap.create_user(
                UserCreate(
                    email=email,
                    name=name,
                    password=PASSWORD,
                    role=Role(role),
                    department_ids=[depts[d] for d in dept_names],
                    company_id=cid,
                )
            )
    sessions = await zap.list_sessions(company_id=cid)
    session = next((s for s in sessions if s.name == SESSION), None)
    if session is None:
        session = await zap.create_session(
            SessionCreate(name=SESSION, engine=Engine.SANDBOX, company_id=cid)
        )
    sid = session.id
    with contextlib.suppress(Conflict):  # already running after a daemon restart
        await zap.request("POST", f"/api/v1/sessions/{sid}/start")
    for _ in range(100):
        current = await zap.get_session(sid)
        if current.status == SessionStatus.CONNECTED:
            return Seeded(cid, sid)
        qr = (await zap.request("GET", f"/api/v1/sessions/{sid}/qr")).json()
        if qr.get("qr"):
            await zap.request("POST", f"/api/v1/sandbox/{sid}/scan", json={})
        await asyncio.sleep(0.1)
    raise CliError("the sandbox session did not connect", ExitCode.TIMEOUT)


def _describe(event: Any) -> str | None:
    data = event.data
    if event.type == "message.new":
        arrow = "←" if data.get("direction") == 0 else "→"
        who = "cliente" if data.get("direction") == 0 else data.get("kind") or "agente"
        body = (data.get("body") or "").replace("\n", " ⏎ ")
        return f"{arrow} [{who}] {body[:90]}"
    if event.type in ("ticket.new", "ticket.update"):
        routed = " (fora do horário)" if data.get("out_of_hours") else ""
        label = "novo" if event.type == "ticket.new" else "atualizado"
        return f"• ticket #{data.get('number')} {label}{routed}"
    if event.type == "session.status":
        return f"• sessão: status {data.get('status')} {data.get('reason') or ''}".rstrip()
    return None


async def _watch(url: str, stop: asyncio.Event, ready: asyncio.Event) -> None:
    from shared.client import ZapClient

    async with ZapClient(url) as zap:
        await zap.login(PEOPLE[0][0], PASSWORD)
        async with zap.subscribe() as sub:
            ready.set()  # subscribed: the customers may start, nothing will be missed
            async for event in sub:
                line = _describe(event)
                if line:
                    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {line}\n")
                    sys.stdout.flush()
                if stop.is_set():
                    return


async def _customers(zap: ZapClient, sid: Any, interval: float, stop: asyncio.Event) -> None:
    rng = random.Random()  # noqa: S311 - pacing a simulation
    progress = dict.fromkeys(range(len(CUSTOMERS)), 0)
    while not stop.is_set():
        waiting = [i for i, n in progress.items() if n < len(CUSTOMERS[i][2])]
        if not waiting:  # everyone said everything: start a new round
            progress = dict.fromkeys(progress, 0)
            continue
        i = rng.choice(waiting)
        name, phone, script = CUSTOMERS[i]
        await zap.request(
            "POST",
            f"/api/v1/sandbox/{sid}/inbound",
            json={"from": phone, "name": name, "text": script[progress[i]]},
        )
        progress[i] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * interval)


async def _init(state_dir: Path) -> None:
    from zapd.offline import init_instance

    await init_instance(
        state_dir=state_dir,
        database_url=f"sqlite+aiosqlite:///{state_dir / 'zap.db'}",
        admin_email=ROOT[0],
        admin_password=ROOT[1],
        admin_name="Demo root",
        force=True,
    )


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _dies_with(parent: int) -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGTERM when `parent` dies, however it dies.

    The demo stops its zapd itself on Ctrl+C, SIGTERM, a closed terminal (SIGHUP) or
    zaptui's quit; this covers the rest (SIGKILL, a crash), so no daemon is left holding
    the port for the next `zapctl demo`. Linux only (prctl); elsewhere a no-op.
    """

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the prctl: go now
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _spawn(state_dir: Path, host: str, port: int) -> subprocess.Popen[bytes]:
    """Start zapd on the demo state dir, its log in the state dir; it dies with us."""
    env = {**os.environ, "ZAP_LOG_FORMAT": "json"}
    with (state_dir / "zapd.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter's zapd, fixed arguments
            _zapd_argv(state_dir, host, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_dies_with(os.getpid()),  # run before any thread is started here
        )


def _zaptui_argv(url: str) -> list[str]:
    exe = Path(sys.executable).parent / "zaptui"
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from zaptui.main import main; main()"]
    )
    return [*cmd, "--server", url]


async def _tui(url: str, stop: asyncio.Event) -> None:
    """Run zaptui on this terminal, logged in as the first agent, until it exits."""
    email = next(email for email, _, role, _ in PEOPLE if role == 2)
    env = {**os.environ, "ZAP_EMAIL": email, "ZAP_PASSWORD": PASSWORD}
    child = await asyncio.create_subprocess_exec(*_zaptui_argv(url), env=env)
    waiting = asyncio.create_task(child.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if child.returncode is None:
        child.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    stopping.cancel()
    stop.set()


async def _run(
    url: str,
    state_dir: Path,
    proc: subprocess.Popen[bytes],
    interval: float,
    duration: float,
    tui: bool = False,
) -> None:
    from shared.client import ZapClient

    stop = asyncio.Event()
    async with ZapClient(url) as zap:
        await _wait_ready(zap, proc, 30, state_dir / "zapd.log")
        seeded = await _seed(zap)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: terminal closed
            loop.add_signal_handler(sig, stop.set)
        _banner(url, state_dir, state_dir / "zapd.log", tui)  # "Ctrl+C stops": it does now
        ready = asyncio.Event()
        # With the TUI on this terminal nothing else may print: zaptui shows the traffic.
        watcher = asyncio.create_task(_tui(url, stop) if tui else _watch(url, stop, ready))
        if not tui:
            await asyncio.wait_for(ready.wait(), 30)
        talker = asyncio.create_task(_customers(zap, seeded.session_id, interval, stop))

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration if duration > 0 else None)
        stop.set()
        if tui:
            await watcher  # zaptui has been told to stop (or has quit)
        for task in (talker, watcher) if not tui else (talker,):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _banner(url: str, state_dir: Path, log_path: Path, tui: bool = False) -> None:
    people = "\n".join(f"    {email:<22} {PASSWORD}   ({name})" for email, name, _, _ in PEOPLE)
    sys.stdout.write(
        f"""
zap demo — running on {url}   (SANDBOX: simulated WhatsApp, nothing leaves this machine)

  company   {COMPANY}: Laboratório, Comercial, Financeiro, Administrativo
  people (e-mail / password):
{people}
    {ROOT[0]:<22} {ROOT[1]}   (global admin)
  data      {state_dir}   (daemon log: {log_path})

  {_what_next(tui)}
  Act as an agent from another terminal (README: "Act as an agent in the demo"):
    export ZAP_SERVER={url}
    ./dev zapctl login --email ana@demo.zap.br --password {PASSWORD}
    ./dev zapctl ticket list;  ./dev zapctl ticket accept '#1'
    ./dev zapctl send --ticket '#1' "Olá!"   (API: {url}/api/v1, OpenAPI at /api/v1/openapi.json)
  Ctrl+C stops the demo.

"""
    )
    sys.stdout.flush()


def _what_next(tui: bool) -> str:
    if tui:
        agent = next(email for email, _, role, _ in PEOPLE if role == 2)
        return (
            f"Opening zaptui logged in as {agent}: customers arrive in the queue "
            "(Enter opens, a accepts, Ctrl+Q quits)."
        )
    return "Simulated customers write now and then; the traffic shows below."


def demo(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the demo keeps its data.", file_okay=False)
    ] = Path(".demo"),
    host: Annotated[str, typer.Option("--host", help="Bind address of the demo daemon.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Its port.")] = 8765,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.05, max=3600, help="Mean seconds between messages."),
    ] = 6.0,
    duration: Annotated[
        float, typer.Option("--duration", min=0, help="Stop after this many seconds (0: never).")
    ] = 0.0,
    no_tui: Annotated[
        bool,
        typer.Option("--no-tui", help="Print the traffic instead of opening zaptui."),
    ] = False,
) -> None:
    """Run a whole zap locally: daemon, sandbox WhatsApp, demo company and customers.

    Examples:

      zapctl demo

      zapctl demo --port 9000 --interval 2

      zapctl demo --no-tui
    """
    from shared.client import ZapError

    state = state_dir.resolve()
    if not _port_is_free(host, port):
        # Checked first: another daemon there would answer our requests instead of ours.
        raise CliError(
            f"port {port} on {host} is already in use (another zapd or program); "
            f"pick another with --port, e.g. `zapctl demo --port {port + 1}` "
            f"(or `./dev demo --port {port + 1}`)"
        )
    asyncio.run(_init(state))
    proc = _spawn(state, host, port)
    try:
        # zaptui needs a terminal: without one (scripts, CI) the log view is the demo.
        tui = not no_tui and sys.stdin.isatty() and sys.stdout.isatty()
        asyncio.run(_run(f"http://{host}:{port}", state, proc, interval, duration, tui))
    except ZapError as exc:
        raise CliError(f"demo failed: {exc}") from None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        notice("zap demo stopped")
