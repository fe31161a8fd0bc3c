"""Structured logs: JSON lines off a terminal, text on one, request ids everywhere,
and never a credential or a body — checked on the formatters and on a real `zapd`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ZAPD, child_env, run, run_cli, running_zapd
from zapd.logging import (
    REQUEST_ID,
    JsonFormatter,
    TextFormatter,
    make_handler,
    resolve_format,
    setup_logging,
)

PASSWORD = "Cedro-azul-no-quintal"


def record(msg: str = "hello %s", *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("zapd.test", logging.INFO, __file__, 1, msg, args or ("world",), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_lines_carry_the_fields_and_extras() -> None:
    line = JsonFormatter().format(
        record(request_id="r1", status=201, duration_ms=3.5, path="/x", color_message="dup")
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["msg"] == "hello world"
    assert doc["level"] == "INFO" and doc["logger"] == "zapd.test"
    assert datetime.fromisoformat(doc["ts"]).utcoffset() is not None  # ISO 8601, zoned
    assert doc["request_id"] == "r1" and doc["status"] == 201 and doc["duration_ms"] == 3.5
    assert "color_message" not in doc  # uvicorn's colored duplicate is dropped
    assert not {"args", "msecs", "pathname", "exc_info"} & set(doc)


def test_json_exceptions_stay_on_one_line_and_odd_values_serialise() -> None:
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        rec = record(when=datetime(2024, 1, 2), obj=object())
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert "ValueError: broken" in doc["exc"] and doc["exc"].startswith("Traceback")
    assert doc["when"].startswith("2024-01-02")


def test_text_format_is_readable_with_extras() -> None:
    line = TextFormatter().format(record(request_id="r1", path="/a b"))
    assert "INFO" in line and "zapd.test: hello world" in line
    assert "request_id=r1" in line and 'path="/a b"' in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_auto_means_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert resolve_format("auto", tty) == "text"
            assert resolve_format("json", tty) == "json"
    finally:
        os.close(master)
        os.close(slave)


def test_request_id_of_the_current_request_is_stamped() -> None:
    out = io.StringIO()
    handler = make_handler("json", out)
    lg = logging.getLogger("zapd.test.rid")
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    lg.propagate = False
    try:
        token = REQUEST_ID.set("req-42")
        try:
            lg.info("inside")
            lg.info("explicit", extra={"request_id": "other"})
        finally:
            REQUEST_ID.reset(token)
        lg.info("outside")
    finally:
        lg.removeHandler(handler)
    docs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [d.get("request_id") for d in docs] == ["req-42", "other", None]


def test_setup_is_idempotent_and_keeps_noisy_libraries_quiet() -> None:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    try:
        setup_logging("debug", "json", out)
        handler = setup_logging("debug", "json", out)
        ours = [h for h in root.handlers if getattr(h, "_zap_handler", False)]
        assert ours == [handler]
        assert root.level == logging.DEBUG
        # Even at debug, drivers that would log SQL parameters or frames stay quiet.
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("websockets.client").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        logging.getLogger("zapd.x").debug("dbg")
        assert json.loads(out.getvalue().splitlines()[-1])["msg"] == "dbg"
    finally:
        for h in [h for h in root.handlers if getattr(h, "_zap_handler", False)]:
            root.removeHandler(h)
        root.setLevel(level)


# ---------------------------------------------------------------- a real daemon


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


def _init(env: dict[str, str], state_dir: Path) -> None:
    code, _, err = run_cli(
        "init",
        "--state-dir",
        str(state_dir),
        "--admin-email",
        "admin@example.com",
        "--admin-password",
        PASSWORD,
        env=env,
    )
    assert code == 0, err


def test_real_zapd_logs_json_lines_with_request_ids_and_no_secrets(
    env: dict[str, str], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    _init(env, state_dir)
    log_path = tmp_path / "zapd.log"
    with running_zapd("--state-dir", str(state_dir), env=env, log_path=log_path) as zapd:
        r = zapd.request(
            "POST",
            "/api/v1/auth/login",
            json={"email": "admin@example.com", "password": PASSWORD},
            headers={"X-Request-ID": "login-req-1"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "login-req-1"
        token = r.json()["access_token"]
        r = zapd.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        me_id = r.headers["x-request-id"]
        r = zapd.request(
            "POST",
            "/api/v1/auth/login",
            json={"email": "admin@example.com", "password": "not-the-password-x"},
        )
        assert r.status_code == 401
        log_text = wait_log(zapd, me_id)

    lines = [ln for ln in log_text.splitlines() if ln.strip()]
    docs = [json.loads(ln) for ln in lines]  # every line is one JSON object
    for d in docs:
        assert {"ts", "level", "logger", "msg"} <= set(d)
    access = {d["request_id"]: d for d in docs if d["logger"] == "zapd.access"}
    login = access["login-req-1"]
    assert login["method"] == "POST" and login["path"] == "/api/v1/auth/login"
    assert login["status"] == 200 and login["level"] == "INFO"
    assert isinstance(login["duration_ms"], int | float) and login["duration_ms"] >= 0
    assert access[me_id]["route"] == "/api/v1/auth/me"
    assert any(d["msg"].startswith("zapd ready") for d in docs)
    assert not any(d["logger"] == "uvicorn.access" for d in docs)  # ours is the only one
    for secret in (token, PASSWORD, "not-the-password-x", "Bearer"):
        assert secret not in log_text


def wait_log(zapd: Any, needle: str, timeout: float = 5.0) -> str:
    """Return the daemon's log once it holds `needle` (access lines follow the response)."""
    deadline = time.monotonic() + timeout
    text: str = zapd.log()
    while needle not in text and time.monotonic() < deadline:
        time.sleep(0.05)
        text = zapd.log()
    return text


def test_real_zapd_text_format_when_asked(env: dict[str, str], tmp_path: Path) -> None:
    log_path = tmp_path / "zapd.log"
    text_env = dict(env, ZAP_LOG_FORMAT="text")
    with running_zapd(
        "--state-dir", str(tmp_path / "state"), env=text_env, log_path=log_path
    ) as zapd:
        assert zapd.get("/healthz", headers={"X-Request-ID": "txt-1"}).status_code == 200
        log_text = wait_log(zapd, "request_id=txt-1")

    lines = [ln for ln in log_text.splitlines() if ln.strip()]
    assert lines and not any(ln.startswith("{") for ln in lines)
    access = [ln for ln in lines if "zapd.access" in ln]
    assert any("GET /healthz 200" in ln and "request_id=txt-1" in ln for ln in access)


def test_log_format_is_validated(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run(
        ZAPD,
        "--state-dir",
        str(tmp_path / "state"),
        env=dict(env, ZAP_LOG_FORMAT="xml"),
        timeout=30,
    )
    assert code == 2 and out == "" and "log_format" in err


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"
API_TOKEN = "zap_" + "s3cr3t" * 6


def test_redaction_at_debug_in_every_logger() -> None:
    out = io.StringIO()
    handler = setup_logging("debug", "json", stream=out)
    try:
        # uvicorn's own line for a WebSocket handshake, at debug and info, with args.
        logging.getLogger("uvicorn.error").debug(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/api/v1/ws?since=3&token={JWT}"
        )
        logging.getLogger("uvicorn.error").info("GET /api/v1/ws?token=%s HTTP/1.1", API_TOKEN)
        logging.getLogger("some.library").debug("Authorization: Bearer %s", API_TOKEN)
        logging.getLogger("zapd.test").warning(
            "retrying", extra={"url": f"http://h/x?access_token={JWT}&page=2"}
        )
        try:
            raise RuntimeError(f"refresh zrt_{'x' * 30} failed for ?password=hunter2hunter2")
        except RuntimeError:
            logging.getLogger("zapd.test").exception("boom")
    finally:
        logging.getLogger().removeHandler(handler)
    text = out.getvalue()
    docs = [json.loads(ln) for ln in text.splitlines()]
    assert len(docs) == 5
    for secret in (JWT, API_TOKEN, "s3cr3t", "hunter2", "x" * 30):
        assert secret not in text
    assert docs[0]["msg"] == '127.0.0.1:5000 - "WebSocket /api/v1/ws?since=3&token=***" [accepted]'
    assert docs[0]["level"] == "DEBUG"
    assert docs[1]["msg"] == "GET /api/v1/ws?token=*** HTTP/1.1"
    assert docs[2]["msg"] == "Authorization: Bearer ***"
    assert docs[3]["url"] == "http://h/x?access_token=***&page=2"
    assert "zrt_***" in docs[4]["exc"] and "password=***" in docs[4]["exc"]


def test_real_zapd_at_debug_never_logs_a_websocket_token(
    env: dict[str, str], tmp_path: Path
) -> None:
    from websockets.sync.client import connect

    state_dir = tmp_path / "state"
    _init(env, state_dir)
    log_path = tmp_path / "zapd.log"
    debug_env = dict(env, ZAP_LOG_LEVEL="debug")
    with running_zapd("--state-dir", str(state_dir), env=debug_env, log_path=log_path) as zapd:
        r = zapd.request(
            "POST", "/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
        )
        token = r.json()["access_token"]
        url = zapd.base_url.replace("http://", "ws://") + f"/api/v1/ws?token={token}"
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "ping"}))
        log_text = wait_log(zapd, "token=***")
    assert "WebSocket /api/v1/ws?token=***" in log_text  # uvicorn's handshake line, masked
    assert token not in log_text and token.split(".")[2] not in log_text
    assert '"level": "DEBUG"' in log_text  # really at debug
