"""Access JWT checks: a remembered signature check answers exactly as `jwt.decode` would."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

from shared.errors import ErrorCode
from zapd.errors import Unauthorized
from zapd.services.people import auth


def _token(secret: str, *, ttl: int = 900, typ: str = "access") -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "tv": 0,
        "typ": typ,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=auth.JWT_ALGORITHM)


def _kernel(secret: str) -> Any:
    return SimpleNamespace(jwt_secret=secret)


def test_a_checked_token_decodes_again_to_the_same_claims() -> None:
    secret = "s" * 48
    token = _token(secret)
    first = auth.decode_access(_kernel(secret), token)
    assert auth.decode_access(_kernel(secret), token) == first


def test_a_token_checked_under_one_secret_is_refused_under_another() -> None:
    token = _token("a" * 48)
    auth.decode_access(_kernel("a" * 48), token)
    with pytest.raises(Unauthorized):
        auth.decode_access(_kernel("b" * 48), token)


def test_a_remembered_token_expires_on_time() -> None:
    secret = "e" * 48
    token = _token(secret, ttl=1)
    exp = auth.decode_access(_kernel(secret), token)["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(Unauthorized) as err:
        auth.decode_access(_kernel(secret), token)
    assert err.value.code == ErrorCode.TOKEN_EXPIRED


def test_refused_tokens_are_not_remembered() -> None:
    secret = "r" * 48
    refresh_typed = _token(secret, typ="refresh")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            auth.decode_access(_kernel(secret), refresh_typed)


def test_the_memory_is_bounded() -> None:
    tokens = auth._VerifiedTokens(2)
    for name in ("one", "two", "three"):
        tokens.put("k", name, {"exp": time.time() + 60})
    assert tokens.get("k", "one") is None
    assert tokens.get("k", "three") is not None
