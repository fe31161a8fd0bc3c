"""E-mail addresses as they come in on the wire: one validated type for every body.

Invariants:
- Syntax is checked (local part by `email_validator`, the domain by the DNS label rules:
  1-63 characters of letters, digits and hyphens, no hyphen at either end, 253 at most),
  deliverability never (no DNS at validation time).
- Internal and special-use domains are accepted: a company on its intranet has admins at
  ``@empresa.local``, ``@corp.lan``, ``@intranet.test`` or ``@srv.internal``, which
  pydantic's ``EmailStr`` refuses. The domain still needs two labels (``a@b`` is refused:
  nobody's mail is addressed to a bare host name), and its last label is not all digits
  (``a@1.2.3.4`` is an address literal, not a domain).
- The normalized form is stripped and lower-cased (zap compares e-mails case-insensitively);
  internationalized domains are kept in their Unicode form.
"""

from __future__ import annotations

import re
from typing import Annotated

import idna
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, StringConstraints

__all__ = ["MAX_EMAIL_LENGTH", "Email", "normalize_email"]

MAX_EMAIL_LENGTH = 320
_MAX_DOMAIN = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _domain(value: str, shown: str) -> str:
    try:
        ascii_domain = idna.encode(value, uts46=True).decode("ascii")
        unicode_domain = idna.decode(ascii_domain)
    except idna.IDNAError as exc:
        raise ValueError(f"invalid e-mail address {shown!r}: bad domain ({exc})") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > _MAX_DOMAIN or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            f"invalid e-mail address {shown!r}: the domain must be names of letters, digits "
            "and hyphens separated by dots"
        )
    if len(labels) < 2:
        raise ValueError(
            f"invalid e-mail address {shown!r}: the domain needs a dot (e.g. name@empresa.lan)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"invalid e-mail address {shown!r}: the domain cannot end in a number")
    return unicode_domain


def normalize_email(value: str) -> str:
    """Check an e-mail address's syntax and return it stripped and lower-cased.

    Raises ValueError (so pydantic answers 422) with a message that names the address.
    """
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"invalid e-mail address {value!r}: it must look like name@domain")
    try:
        # The local part alone, through the library (the placeholder domain is always valid).
        info = validate_email(f"{local}@example.com", check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid e-mail address {value!r}: {exc}") from None
    address = f"{info.local_part}@{_domain(domain, value)}".lower()
    if len(address) > MAX_EMAIL_LENGTH:
        raise ValueError(f"invalid e-mail address: longer than {MAX_EMAIL_LENGTH} characters")
    return address


# The one e-mail type for request bodies (users, clients, init).
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(normalize_email),
]
