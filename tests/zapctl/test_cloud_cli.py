"""`zapctl` and a Cloud API session: add (webhook URL + verify token), templates, send --template.

A real zapd (subprocess) talks to the fake Graph API, served from its own thread so the
test can block on zapctl meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.graph_api import FakeGraph, ThreadedFakeGraph, contact, inbound
from tests.zapctl.test_session_cli import Stack, eventually, new_name, stack_fixture


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from stack_fixture(request, tmp_path_factory)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with ThreadedFakeGraph() as graph:
        yield graph


def test_add_prints_webhook_url_and_verify_token_never_the_secrets(
    stack: Stack, fake: FakeGraph, tmp_path: Path
) -> None:
    name = new_name("Oficial")
    plain = stack.ok(
        "admin",
        "session", "add", name, "--engine", "cloud",
        "--cloud-phone-number-id", fake.phone_number_id,
        "--cloud-token", fake.access_token,
        "--cloud-waba-id", fake.waba_id,
        "--cloud-app-secret", fake.app_secret,
        "--cloud-base-url", fake.url,
        "--public-url", "https://zap.example.com.br/",
    )  # fmt: skip
    sid = next(s["id"] for s in stack.api("admin", "/sessions") if s["name"] == name)
    assert f"callback URL: https://zap.example.com.br/webhooks/cloud/{sid}" in plain.out
    token = plain.out.split("verify token (shown only now): ", 1)[1].split()[0]
    assert len(token) >= 24
    assert fake.access_token not in plain.out and fake.app_secret not in plain.out

    # Meta's verification with the printed token succeeds against the daemon.
    r = httpx.get(
        f"{stack.server}/webhooks/cloud/{sid}",
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"},
    )
    assert (r.status_code, r.text) == (200, "42")

    # --json: the same facts in the document; without --public-url, the server's address.
    other = new_name("Oficial")
    doc = stack.json(
        "admin",
        "session", "add", other, "--engine", "cloud",
        "--cloud-phone-number-id", "99887766", "--cloud-token", "EAAG-other-token",
        "--cloud-app-secret", "other-app-secret", "--cloud-verify-token", "my-verify-token",
    )  # fmt: skip
    assert doc["cloud_webhook"] == {
        "url": f"{stack.server}/webhooks/cloud/{doc['id']}",
        "verify_token": "my-verify-token",
    }
    assert doc["config"]["access_token"] == "********"

    shown = stack.ok("admin", "session", "show", name)
    listed = stack.ok("admin", "--json", "session", "list")
    logs = stack.zapd.log()
    for secret in (
        fake.access_token,
        fake.app_secret,
        token,
        "EAAG-other-token",
        "other-app-secret",
    ):
        assert secret not in shown.out and secret not in listed.out
        assert secret not in logs

    errors = [
        stack.fail(2, "admin", "session", "add", new_name(), "--engine", "cloud",
                   "--cloud-phone-number-id", "1", "--cloud-token", "t"),
        stack.fail(2, "admin", "session", "add", new_name(), "--public-url", "https://x"),
    ]  # fmt: skip
    assert errors[0].startswith("zapctl: the cloud engine needs --cloud-app-secret")
    assert errors[1] == "zapctl: --public-url is for --engine cloud"


def test_templates_and_send_template(stack: Stack, fake: FakeGraph) -> None:
    name = new_name("Oficial")
    stack.ok(
        "admin",
        "session", "add", name, "--engine", "cloud",
        "--cloud-phone-number-id", fake.phone_number_id,
        "--cloud-token", fake.access_token,
        "--cloud-waba-id", fake.waba_id,
        "--cloud-app-secret", fake.app_secret,
        "--cloud-base-url", fake.url,
    )  # fmt: skip
    listed = stack.ok("supervisor", "session", "templates", name)
    assert "boas_vindas" in listed.out and "pedido_pronto" in listed.out
    assert "rascunho" not in listed.out
    docs = stack.json("supervisor", "session", "templates", name)
    assert [(t["name"], t["parameters"]) for t in docs] == [
        ("boas_vindas", 1),
        ("pedido_pronto", 1),
    ]

    sid = next(s["id"] for s in stack.api("admin", "/sessions") if s["name"] == name)
    stack.post("admin", f"/sessions/{sid}/start")
    eventually(
        lambda: stack.api("admin", f"/sessions/{sid}")["status"] == 0, what="session connected"
    )
    # A customer who wrote 25 hours ago: free text refused, a template goes.
    msg = inbound("text", {"body": "Oi"}, sender="5511955554444", ts=int(time.time()) - 25 * 3600)
    body = json.dumps(fake.webhook(messages=[msg], contacts=[contact("5511955554444")])).encode()
    r = httpx.post(
        f"{stack.server}/webhooks/cloud/{sid}",
        content=body,
        headers={"X-Hub-Signature-256": fake.signed(body), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    refused = stack.fail(
        1, "supervisor", "send", "--session", name, "--to", "+5511955554444", "Oi de novo"
    )
    assert "24-hour" in refused and "boas_vindas" in refused
    sent = stack.json(
        "supervisor",
        "send", "--session", name, "--to", "+5511955554444",
        "--template", "boas_vindas", "--param", "Maria",
    )  # fmt: skip
    assert sent["body"] == "[template boas_vindas] Maria"
    got = eventually(
        lambda: [s for s in fake.sent if s.get("type") == "template"], what="template sent"
    )
    assert got[0]["to"] == "5511955554444"
    assert got[0]["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Maria"}]
    usage = stack.fail(2, "supervisor", "send", "--ticket", "1", "--param", "x", "texto")
    assert usage == "zapctl: --param goes with --template"
