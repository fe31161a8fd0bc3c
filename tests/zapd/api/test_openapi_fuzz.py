"""Property-based fuzzing of every operation in zapd's own OpenAPI document.

Schemathesis takes zapd's OpenAPI document (the one `/api/v1/openapi.json` serves) and,
for each operation, generates valid and invalid inputs (path, query, headers, bodies),
sent to a real zapd on loopback with a global admin's or a company admin's bearer
token. Whatever it sends, zapd must never answer 5xx, never put a traceback in a body,
and always answer errors in the contract's shape.

SQLite only, on purpose: this is about the HTTP edge, not the database; the per-backend
behaviour of each route is covered by its own tests on both backends.

The daemon runs in a background thread with its own event loop (schemathesis drives
synchronous requests), on a migrated SQLite database in a temp state dir. A failure
prints the exact request as a curl command: report it to the route's owner.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from shared.enums import Role
from tests.zapd.api.conftest import PASSWORD, new_cnpj
from tests.zapd.api.conftest import test_settings as make_settings
from zapd.api.app import create_app
from zapd.daemon import open_daemon
from zapd.db.models import Company, Department, User
from zapd.kernel.context import Kernel

MAX_EXAMPLES = 25

# Operations that would end the fuzzer's own login (they work; they would only make
# every later case a 401 and hide what it should find).
EXCLUDED = [
    ("POST", "/api/v1/auth/logout"),
    ("PATCH", "/api/v1/auth/me"),
]


class ThreadedZapd:
    """A real zapd (uvicorn + the real app) served from a thread with its own loop."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.url = ""
        self.tokens: list[str] = []  # a global admin's, then a company admin's
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
            database_url=f"sqlite+aiosqlite:///{self.state_dir / 'fuzz.db'}",
            auto_migrate=True,
            access_token_ttl=3600,
        )
        daemon = await open_daemon(config)
        await self._seed(daemon.kernel)
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
    async def _seed(kernel: Kernel) -> None:
        """A global admin and a company admin to fuzz as, and rows for listings to render."""
        async with kernel.tx() as db:
            company = Company(name="Fuzz Ltda", cnpj=new_cnpj())
            db.add(company)
            await db.flush()
            db.add(Department(company_id=company.id, name="Geral", slug="geral", menu_order=1))
            for company_id, email, role in (
                (None, "root@zap.local", None),
                (company.id, "admin@fuzz.com.br", Role.ADMIN),
            ):
                db.add(
                    User(
                        company_id=company_id,
                        email=email,
                        role=role,
                        name=email.split("@")[0].title(),
                        password_hash=kernel.passwords.hash(PASSWORD),
                    )
                )


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedZapd]:
    daemon = ThreadedZapd(tmp_path_factory.mktemp("fuzz-state"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


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
    which = zlib.crc32(case.as_curl_command(base_url=fuzz_daemon.url).encode()) % 2
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
