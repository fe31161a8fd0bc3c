"""Property-based fuzzing of every operation in zapd's own OpenAPI document.

Schemathesis takes zapd's OpenAPI document (the one `/api/v1/openapi.json` serves) and,
for each operation, generates valid and invalid inputs (path, query, headers, bodies),
sent to a real zapd on loopback with a global admin's or a company admin's bearer
token. Whatever it sends, zapd must never answer 5xx, never put a traceback in a body,
and always answer errors in the contract's shape.

On both backends (a migrated SQLite file, and a fresh PostgreSQL database): a 5xx is
often a database error the edge did not map (a uniqueness race, a value PostgreSQL
refuses that SQLite takes), so the database is part of what is fuzzed.

Generated path ids are random, so on their own they only reach "not found". Half the
cases (chosen from the request itself, so a failure replays) get their path ids replaced
by ids of seeded rows of the caller's company (a department, category, tag, quick reply,
client, sandbox session, ticket with its chat and messages, user, media, API token), so
the generated bodies and queries reach the handlers behind the ownership checks.

The daemon runs in a background thread with its own event loop (schemathesis drives
synchronous requests). Runtime is bounded by `MAX_EXAMPLES` per operation and backend
(env `ZAP_FUZZ_EXAMPLES`). A failure prints the exact request as a curl command: report
it to the route's owner.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from shared.enums import (
    Engine,
    MessageDirection,
    MessageStatus,
    MessageType,
    Role,
    TicketStatus,
)
from tests.conftest import PG_URL, _pg_admin, require_pg
from tests.zapd.api.conftest import PASSWORD, new_cnpj
from tests.zapd.api.conftest import test_settings as make_settings
from zapd.api.app import create_app
from zapd.daemon import open_daemon
from zapd.db.models import (
    Category,
    Chat,
    Client,
    Company,
    Department,
    Message,
    QuickReply,
    Tag,
    Ticket,
    User,
    WaSession,
)
from zapd.kernel.context import Kernel
from zapd.kernel.scoping import next_ticket_number
from zapd.services.delivery import outbox

MAX_EXAMPLES = int(os.environ.get("ZAP_FUZZ_EXAMPLES", "8"))

# Operations that would end the fuzzer's own login (they work; they would only make
# every later case a 401 and hide what it should find).
EXCLUDED = [
    ("POST", "/api/v1/auth/logout"),
    ("PATCH", "/api/v1/auth/me"),
]


class ThreadedZapd:
    """A real zapd (uvicorn + the real app) served from a thread with its own loop."""

    def __init__(self, state_dir: Path, database_url: str) -> None:
        self.state_dir = state_dir
        self.database_url = database_url
        self.url = ""
        self.tokens: list[str] = []  # a global admin's, then a company admin's
        self.ids: dict[str, str] = {}  # path parameter name -> a seeded row's id
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="zapd-fuzz", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("zapd did not start within 60s")
        if self._error is not None:
            raise RuntimeError("zapd failed to start") from self._error
        for email in ("root@zap.local", "admin@fuzz.com.br"):
            r = httpx.post(
                f"{self.url}/api/v1/auth/login",
                json={"email": email, "password": PASSWORD},
                timeout=30,
            )
            r.raise_for_status()
            self.tokens.append(r.json()["access_token"])

    def add_media_and_token(self) -> None:
        """Rows made through the API itself (the media store, a token's secret)."""
        auth = {"Authorization": f"Bearer {self.tokens[1]}"}
        r = httpx.post(
            f"{self.url}/api/v1/media",
            files={"file": ("laudo.pdf", b"%PDF-1.4\n% fuzz\n", "application/pdf")},
            headers=auth,
            timeout=30,
        )
        r.raise_for_status()
        self.ids["media_id"] = r.json()["id"]
        r = httpx.post(
            f"{self.url}/api/v1/api-tokens", json={"name": "fuzz"}, headers=auth, timeout=30
        )
        r.raise_for_status()
        self.ids["token_id"] = r.json()["id"]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        config = make_settings(
            self.state_dir,
            database_url=self.database_url,
            auto_migrate=True,
            access_token_ttl=3600,
        )
        daemon = await open_daemon(config)
        self.ids = await self._seed(daemon.kernel)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, daemon),
                host="127.0.0.1",
                port=0,
                lifespan="on",
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        self._server = server
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        self._ready.set()
        try:
            await task
        finally:
            await daemon.close()

    @staticmethod
    async def _seed(kernel: Kernel) -> dict[str, str]:
        """A global admin and a company admin to fuzz as, and rows of that company."""
        async with kernel.tx() as db:
            company = Company(name="Fuzz Ltda", cnpj=new_cnpj())
            db.add(company)
            await db.flush()
            cid = company.id
            dept = Department(company_id=cid, name="Geral", slug="geral", menu_order=1)
            session = WaSession(company_id=cid, name="Fuzz", engine=Engine.SANDBOX)
            client = Client(company_id=cid, phone="+5511987654321", name="Cliente Fuzz")
            category = Category(company_id=cid, name="Resolvido")
            tag = Tag(company_id=cid, name="VIP", color="#FF0000")
            reply = QuickReply(company_id=cid, shortcut="oi", body="Olá!")
            db.add_all([dept, session, client, category, tag, reply])
            users = []
            for company_id, email, role in (
                (None, "root@zap.local", None),
                (cid, "admin@fuzz.com.br", Role.ADMIN),
                (cid, "agent@fuzz.com.br", Role.AGENT),
            ):
                user = User(
                    company_id=company_id,
                    email=email,
                    role=role,
                    name=email.split("@")[0].title(),
                    password_hash=kernel.passwords.hash(PASSWORD),
                )
                db.add(user)
                users.append(user)
            await db.flush()
            chat = Chat(
                company_id=cid,
                session_id=session.id,
                client_id=client.id,
                wa_chat_id="5511987654321@s.whatsapp.net",
            )
            db.add(chat)
            await db.flush()
            ticket = Ticket(
                company_id=cid,
                number=await next_ticket_number(db, cid),
                session_id=session.id,
                client_id=client.id,
                chat_id=chat.id,
                department_id=dept.id,
                assignee_id=users[2].id,
                status=TicketStatus.OPEN,
            )
            db.add(ticket)
            await db.flush()
            message = Message(
                company_id=cid,
                session_id=session.id,
                chat_id=chat.id,
                ticket_id=ticket.id,
                direction=MessageDirection.INBOUND,
                type=MessageType.TEXT,
                status=MessageStatus.RECEIVED,
                body="Oi",
                wa_message_id="FUZZ-1",
            )
            db.add(message)
            await db.flush()
            queued = await outbox.enqueue(db, chat, "resposta", ticket=ticket)
            assert queued.outbox is not None
            return {
                "company_id": str(cid),
                "department_id": str(dept.id),
                "session_id": str(session.id),
                "client_id": str(client.id),
                "category_id": str(category.id),
                "tag_id": str(tag.id),
                "reply_id": str(reply.id),
                "user_id": str(users[2].id),
                "ticket_id": str(ticket.id),
                "message_id": str(message.id),
                "outbox_id": str(queued.outbox.id),
            }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedZapd]:
    state = tmp_path_factory.mktemp("fuzz-state")
    if request.param == "sqlite":
        url, dbname = f"sqlite+aiosqlite:///{state / 'fuzz.db'}", None
    else:
        require_pg()
        dbname = f"zt_fuzz_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{dbname}"'))
        url = make_url(PG_URL).set(database=dbname).render_as_string(hide_password=False)
    daemon = ThreadedZapd(state, url)
    try:
        daemon.start()
        daemon.add_media_and_token()
        yield daemon
    finally:
        daemon.stop()
        if dbname is not None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


def _excluded(ctx: Any) -> bool:
    op = ctx.operation
    return (op.method.upper(), op.path) in EXCLUDED


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built without serving (schemathesis needs it at import).

    (Loading it lazily from the running daemon through `schemathesis.pytest.from_fixture`
    breaks on pytest 9.2, which dropped the `Node._nodeid` attribute it rewrites.)
    `test_fuzzed_document_is_the_served_one` checks it is what the daemon serves.
    """
    unused = Path(tempfile.gettempdir()) / "zap-fuzz-unused"
    return create_app(make_settings(unused)).openapi()


DOCUMENT = _openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(_excluded)


def test_fuzzed_document_is_the_served_one(fuzz_daemon: ThreadedZapd) -> None:
    served = httpx.get(f"{fuzz_daemon.url}/api/v1/openapi.json", timeout=30).json()
    assert served == DOCUMENT
    assert len(served["paths"]) >= 5


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
    database=None,  # no example database written into the work tree
)
def test_generated_requests_never_500_nor_leak_a_traceback(
    case: Any, fuzz_daemon: ThreadedZapd
) -> None:
    # Half the cases as the global admin, half as a company admin: chosen from the
    # request itself, so a failing case replays (and shrinks) with the same caller.
    digest = zlib.crc32(case.as_curl_command(base_url=fuzz_daemon.url).encode())
    which = digest % 2
    if (digest >> 1) % 2:  # half the cases on real rows of the company admin's company
        for name in case.path_parameters or {}:
            # (never a write on the company itself: deleting or disabling it would
            # make every later case a 401 and hide what they should find)
            if name == "company_id" and case.method.upper() != "GET":
                continue
            if name in fuzz_daemon.ids:
                case.path_parameters[name] = fuzz_daemon.ids[name]
    auth = {"Authorization": f"Bearer {fuzz_daemon.tokens[which]}"}
    response = case.call(base_url=fuzz_daemon.url, headers=auth, timeout=30)
    text = response.content.decode("utf-8", errors="replace")
    curl = case.as_curl_command(headers=auth, base_url=fuzz_daemon.url)
    where = f"\n{curl}\n-> {response.status_code} {text[:500]}"
    assert response.status_code < 500, "server error" + where
    assert "Traceback" not in text and 'File "/' not in text, "traceback in body" + where
    if response.status_code >= 400 and response.request.method != "HEAD":
        doc = response.json()
        assert isinstance(doc, dict), "error body is not an object" + where
        assert str(doc.get("error", "")).startswith("ERR_"), "error shape" + where
        assert isinstance(doc.get("message"), str) and doc["message"], "error shape" + where
