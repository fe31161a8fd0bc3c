"""Crash safety: SIGKILL in the middle of a burst of inbound messages loses and doubles nothing.

A real zapd process receives a burst of customer messages (in order per customer,
many customers at once) through the sandbox API; mid-burst it is killed with SIGKILL,
restarted, and the whole burst is delivered again (at-least-once delivery, as a
WhatsApp engine does after a reconnect). Afterwards every message exists exactly once,
every customer has exactly one ticket, and every flow reply was queued exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shared.cnpj import cnpj_check_digits
from shared.enums import FlowState, MessageDirection, SessionStatus, WebhookEventState
from tests.helpers import ZAPD, Zapd, child_env, default_db_args, free_port, run_cli
from zapd.db.engine import create_engine, session_factory
from zapd.db.models import Client, Message, Ticket, WebhookEvent

CUSTOMERS = int(os.environ.get("ZAP_CRASH_CUSTOMERS", "200"))
PER_CUSTOMER = 10  # "oi", "1", then free text: 2 flow replies per ticket
SENDERS = 16
ADMIN = ("root@acme.com.br", "root-pass-1")


def _phone(c: int) -> str:
    return f"+55119{70000000 + c}"


def _burst() -> list[list[tuple[str, str]]]:
    """Per customer, the (wa_message_id, text) it sends, in order."""
    texts = ["oi", "1"] + [f"mensagem {i}" for i in range(PER_CUSTOMER - 2)]
    return [[(f"CRASH-{c}-{i}", t) for i, t in enumerate(texts)] for c in range(CUSTOMERS)]


def initialized(database_url: str, tmp_path: Path) -> tuple[dict[str, str], list[str], int, str]:
    """`zapctl init` a state dir (fast Argon2): return env, zapd's argv, its port, the DB URL."""
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(home, ZAP_ARGON2_TIME_COST="1", ZAP_ARGON2_MEMORY_KIB="64")
    state = tmp_path / "state"
    db_args, inspect_url = default_db_args(database_url, state)
    init = run_cli(
        "init",
        "--state-dir",
        str(state),
        *db_args,
        "--admin-email",
        ADMIN[0],
        "--admin-password",
        ADMIN[1],
        env=env,
    )
    assert init.code == 0, init.err
    port = free_port()
    argv = [str(ZAPD), "--state-dir", str(state), "--port", str(port), *db_args]
    return env, argv, port, inspect_url


def _start(argv: list[str], env: dict[str, str], log: Path, port: int) -> Zapd:
    with log.open("ab") as fh:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh)
    zapd = Zapd(proc=proc, port=port, log_path=log)
    zapd.wait_healthy()
    return zapd


async def _setup(base: str) -> tuple[dict[str, str], str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        cnpj = "12345678" + "0001"
        r = await http.post(
            "/api/v1/companies",
            json={"name": "Clínica Crash", "cnpj": cnpj + cnpj_check_digits(cnpj)},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        company = r.json()["id"]
        for name in ("Laboratório", "Comercial"):
            r = await http.post(
                "/api/v1/departments", json={"name": name, "company_id": company}, headers=auth
            )
            assert r.status_code == 201, r.text
        r = await http.post(
            "/api/v1/sessions",
            json={"name": "Principal", "engine": 0, "company_id": company},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert (await http.post(f"/api/v1/sessions/{sid}/start", headers=auth)).status_code == 202
        for _ in range(100):
            if (await http.get(f"/api/v1/sessions/{sid}/qr", headers=auth)).json()["qr"]:
                break
            await asyncio.sleep(0.05)
        r = await http.post(f"/api/v1/sandbox/{sid}/scan", json={}, headers=auth)
        assert r.status_code == 200, r.text
        await _wait_connected(http, sid, auth)
        return auth, sid


async def _wait_connected(http: httpx.AsyncClient, sid: str, auth: dict[str, str]) -> None:
    for _ in range(200):
        r = await http.get(f"/api/v1/sessions/{sid}", headers=auth)
        if r.status_code == 200 and r.json()["status"] == SessionStatus.CONNECTED:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("session did not reconnect")


async def _deliver(
    base: str,
    auth: dict[str, str],
    sid: str,
    burst: list[list[tuple[str, str]]],
    kill_after: int | None = None,
    proc: subprocess.Popen[bytes] | None = None,
) -> int:
    """Send every customer's messages in order; SIGKILL `proc` after `kill_after` accepted."""
    accepted = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for c in range(len(burst)):
        queue.put_nowait(c)
    dead = asyncio.Event()

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty() and not dead.is_set():
            c = queue.get_nowait()
            for wa_id, text in burst[c]:
                try:
                    r = await http.post(
                        f"/api/v1/sandbox/{sid}/inbound",
                        json={"from": _phone(c), "text": text, "wa_message_id": wa_id},
                        headers=auth,
                    )
                except httpx.TransportError:
                    dead.set()
                    return
                # 200: a redelivery of a stored message, acknowledged as a duplicate.
                assert r.status_code in (200, 201), r.text
                assert r.json()["duplicate"] is (r.status_code == 200)
                accepted += 1
                if kill_after is not None and accepted == kill_after and proc is not None:
                    proc.send_signal(signal.SIGKILL)

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        await asyncio.gather(*(sender(http) for _ in range(SENDERS)))
    return accepted


async def _check(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db:
            inbound = Message.direction == MessageDirection.INBOUND
            menu = Message.direction == MessageDirection.OUTBOUND
            per_ticket_replies = (
                await db.execute(
                    select(Message.ticket_id, func.count()).where(menu).group_by(Message.ticket_id)
                )
            ).all()
            return {
                "inbound": await db.scalar(
                    select(func.count()).select_from(Message).where(inbound)
                ),
                "distinct": await db.scalar(
                    select(func.count(func.distinct(Message.wa_message_id))).where(inbound)
                ),
                "clients": await db.scalar(select(func.count()).select_from(Client)),
                "tickets": await db.scalar(select(func.count()).select_from(Ticket)),
                "routed": await db.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .where(Ticket.flow_state == FlowState.ROUTED, Ticket.department_id.is_not(None))
                ),
                "unread_ok": await db.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .where(Ticket.unread_count == PER_CUSTOMER)
                ),
                "replies": sorted({n for _, n in per_ticket_replies}),
                "replied_tickets": len(per_ticket_replies),
                "pending_events": await db.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.state == WebhookEventState.PENDING)
                ),
                "failed_events": await db.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.state == WebhookEventState.FAILED)
                ),
            }
    finally:
        await engine.dispose()


@pytest.mark.timeout(900)
def test_sigkill_mid_burst_then_redelivery(database_url: str, tmp_path: Path) -> None:
    env, argv, port, inspect_url = initialized(database_url, tmp_path)
    log = tmp_path / "zapd.log"
    burst = _burst()
    total = CUSTOMERS * PER_CUSTOMER

    zapd = _start(argv, env, log, port)
    auth, sid = asyncio.run(_setup(zapd.base_url))
    accepted = asyncio.run(_deliver(zapd.base_url, auth, sid, burst, total // 2, zapd.proc))
    zapd.proc.wait(30)
    assert zapd.proc.returncode == -signal.SIGKILL
    assert total // 2 <= accepted < total  # killed mid-burst

    zapd = _start(argv, env, log, port)  # same state: stored events are processed at start
    try:

        async def again() -> int:
            async with httpx.AsyncClient(base_url=zapd.base_url, timeout=30) as http:
                await _wait_connected(http, sid, auth)  # the linked session resumed by itself
            return await _deliver(zapd.base_url, auth, sid, burst)

        assert asyncio.run(again()) == total  # everything, again: at-least-once
    finally:
        assert zapd.stop() == 0

    got = asyncio.run(_check(inspect_url))
    assert got["inbound"] == total, got
    assert got["distinct"] == total, got
    assert got["clients"] == CUSTOMERS, got
    assert got["tickets"] == CUSTOMERS, got
    assert got["routed"] == CUSTOMERS, got  # "oi" → menu, "1" → Laboratório, for everyone
    assert got["unread_ok"] == CUSTOMERS, got  # each counted once per message
    assert got["replies"] == [2] and got["replied_tickets"] == CUSTOMERS, got
    assert got["pending_events"] == 0 and got["failed_events"] == 0, got
