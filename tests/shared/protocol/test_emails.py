"""The shared e-mail type: syntax checked, internal domains accepted (pydantic's EmailStr
refuses `.local`, `.lan`, `.test`)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from shared.protocol.clients import ClientCreate
from shared.protocol.emails import Email, normalize_email
from shared.protocol.users import UserCreate


class _Body(BaseModel):
    email: Email


INTERNAL = [
    ("Ana@Empresa.LOCAL", "ana@empresa.local"),
    ("admin@corp.lan", "admin@corp.lan"),
    ("suporte@intranet.test", "suporte@intranet.test"),
    ("ti@srv.internal", "ti@srv.internal"),
    ("ti@casa.home.arpa", "ti@casa.home.arpa"),
    ("  dev@app.localhost ", "dev@app.localhost"),
    ("vendas@acme.com.br", "vendas@acme.com.br"),
    ("joão@ação.com.br", "joão@ação.com.br"),
]


@pytest.mark.parametrize(("raw", "normalized"), INTERNAL)
def test_internal_domains_are_accepted(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized
    assert _Body(email=raw).email == normalized


def test_emailstr_refuses_what_zap_accepts() -> None:
    # The reason this type exists: the library's type refuses special-use domains.
    class Strict(BaseModel):
        email: EmailStr

    with pytest.raises(ValidationError):
        Strict(email="admin@empresa.local")
    assert _Body(email="admin@empresa.local").email == "admin@empresa.local"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not-an-email", "name@domain"),
        ("a@", "name@domain"),
        ("@corp.lan", "name@domain"),
        ("a@b", "needs a dot"),
        ("two@@corp.lan", "invalid characters"),
        ("a b@corp.lan", "invalid characters"),
        ("a@-corp.lan", "bad domain"),
        ("a@corp..lan", "bad domain"),
        ("a@1.2.3.4", "cannot end in a number"),
        ("a@[10.0.0.1]", "bad domain"),
        ("a@corp_x.lan", "bad domain"),
        ("a@" + "x" * 64 + ".lan", "bad domain"),
        ("x" * 300 + "@corp.lan", "too long"),
    ],
)
def test_syntax_is_still_checked(raw: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        normalize_email(raw)
    with pytest.raises(ValidationError):
        _Body(email=raw)


def test_used_by_user_and_client_bodies() -> None:
    body = UserCreate(email="Chefe@Empresa.Local", name="Chefe", password="x" * 12, role=0)
    assert body.email == "chefe@empresa.local"
    assert ClientCreate(phone="+5511981234567", email="c@loja.lan").email == "c@loja.lan"
    with pytest.raises(ValidationError):
        ClientCreate(phone="+5511981234567", email="nope")
