"""How zapctl words the client's typed errors: one line, the contract's exit code."""

from __future__ import annotations

import pytest

from shared.client import (
    BadRequest,
    DaemonUnreachable,
    NotFound,
    PayloadTooLarge,
    ValidationError,
    ZapError,
)
from shared.errors import ErrorCode
from zapctl.api import _error, flag_of
from zapctl.errors import ExitCode

SERVER = "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("loc", "flag"),
    [
        (["body", "name"], "--name"),
        (["body", "max_concurrent_tickets"], "--max-tickets"),
        (["query", "company_id"], "--company"),
        (["body", "department_ids", 0], "--dept"),
        (["body", "response_timeout_seconds"], "--response-timeout-seconds"),
        (None, "--value"),
    ],
)
def test_api_fields_are_named_as_flags(loc: object, flag: str) -> None:
    assert flag_of(loc) == flag


def test_a_missing_value_is_a_usage_error_naming_the_flag() -> None:
    exc = ValidationError(
        "name: Field required",
        details=[
            {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "company_id"], "msg": "Field required", "type": "missing"},
        ],
    )
    err = _error(exc, SERVER)
    assert (err.code, err.message) == (ExitCode.USAGE, "missing --name, --company")


def test_a_global_admin_without_company_is_told_the_flag() -> None:
    exc = BadRequest("global admins must give company_id", code=ErrorCode.COMPANY_REQUIRED)
    err = _error(exc, SERVER)
    assert err.code == ExitCode.USAGE
    assert err.message.startswith("missing --company")
    assert "company_id" not in err.message


def test_a_bad_value_stays_an_error_with_the_daemons_words() -> None:
    exc = ValidationError(
        "email: not an e-mail",
        details=[{"loc": ["body", "email"], "msg": "not an e-mail", "type": "value_error"}],
    )
    err = _error(exc, SERVER)
    assert (err.code, err.message) == (ExitCode.ERROR, "email: not an e-mail")


@pytest.mark.parametrize(
    ("exc", "code", "start"),
    [
        (DaemonUnreachable(SERVER), ExitCode.UNREACHABLE, f"cannot reach zapd at {SERVER}"),
        (PayloadTooLarge("request body larger than the 1024-byte limit"), ExitCode.ERROR,
         f"too large for zapd at {SERVER}: request body larger"),
        (NotFound("no such ticket"), ExitCode.NOT_FOUND, "no such ticket"),
        (ZapError("odd"), ExitCode.ERROR, "odd"),
    ],
)  # fmt: skip
def test_typed_errors_map_to_exit_codes(exc: Exception, code: ExitCode, start: str) -> None:
    err = _error(exc, SERVER)
    assert err.code == code and err.message.startswith(start)
