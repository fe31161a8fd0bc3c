"""Deeply nested JSON is refused (422) before any parser or recursive walk sees it."""

from __future__ import annotations

import json
import logging

import pytest

from tests.zapd.api.conftest import Live
from zapd.api.json_guard import json_depth_exceeds


def nested(depth: int, key: str = "a") -> str:
    """A JSON object nested `depth` levels: {"a": {"a": ... {} ...}}."""
    return (
        '{"'
        + key
        + '": ' * 1
        + "".join(f'{{"{key}": ' for _ in range(depth - 2))
        + "{}"
        + "}" * (depth - 1)
    )


def test_depth_scan() -> None:
    assert json.loads(nested(5))  # the helper builds valid JSON
    assert not json_depth_exceeds(nested(32).encode(), 32)
    assert json_depth_exceeds(nested(33).encode(), 32)
    assert json_depth_exceeds(b"[" * 400 + b"]" * 400, 32)
    # Brackets inside strings (escaped quotes too) are text, not nesting.
    text = json.dumps({"name": "[{" * 500, "q": 'a\\"[[[' * 50}).encode()
    assert not json_depth_exceeds(text, 32)
    # Many siblings are not depth.
    assert not json_depth_exceeds(json.dumps([[1]] * 5000).encode(), 32)
    # Unbalanced or invalid input is the parser's business, not a crash here.
    assert not json_depth_exceeds(b"]]]]}}}}" * 10, 32)
    assert json_depth_exceeds(b'{"unterminated: ' + b"[" * 40, 32)


async def test_nested_body_on_the_login_route_is_422_without_traceback(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    # The attack from the issue: 2.4 KB nested 400 deep, unauthenticated.
    body = '{"email": "x@acme.com.br", "password": ' + "[" * 1200 + "]" * 1200 + "}"
    assert len(body) > 2400
    caplog.set_level(logging.DEBUG)
    anon = live.client()
    for payload in (body, '{"email": ' + nested(400) + ', "password": "x"}'):
        r = await anon.post(
            "/api/v1/auth/login", content=payload, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, r.text[:300]
        assert r.json() == {
            "error": "ERR_VALIDATION",
            "message": "the JSON body nests deeper than 32 levels of arrays/objects",
        }
    # Also without a content type (FastAPI would still parse it as JSON).
    r = await anon.post("/api/v1/auth/login", content=body)
    assert r.status_code == 422 and r.json()["error"] == "ERR_VALIDATION"
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    # A normal login still works.
    assert live.root is not None
    r = await anon.post("/api/v1/auth/login", json={"email": "root@zap.local", "password": "bad"})
    assert r.status_code == 401


async def test_nested_body_on_an_authenticated_route(live: Live) -> None:
    t = await live.tenant()
    deep = {"name": "Plantão", "keywords": json.loads("[" * 40 + '"x"' + "]" * 40)}
    r = await t.admin.post("/api/v1/departments", json=deep)
    assert r.status_code == 422 and "deeper than 32" in r.json()["message"]
    # Under the limit it reaches the route, whose validation answers as usual.
    shallow = {"name": "Plantão", "keywords": json.loads("[" * 5 + '"x"' + "]" * 5)}
    r = await t.admin.post("/api/v1/departments", json=shallow)
    assert r.status_code == 422 and "deeper" not in r.json()["message"]
    # Brackets inside strings are only text, and the body reaches the route intact.
    r = await t.admin.post(
        "/api/v1/departments", json={"name": "Setor [[[{{{", "keywords": ["[{" * 20]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["keywords"] == ["[{" * 20]
