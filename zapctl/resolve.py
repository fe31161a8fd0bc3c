"""Turn what people type (an id, a CNPJ, a name, an e-mail, #42) into the API's objects.

One resolver per noun, shared by every command that names one; each exits 3 (not found)
with a one-line message when nothing matches.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from zapctl.errors import CliError, ExitCode
from zapctl.options import as_uuid

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.catalog import CategoryOut, TagOut
    from shared.protocol.companies import CompanyOut
    from shared.protocol.departments import DepartmentOut
    from shared.protocol.sessions import SessionOut
    from shared.protocol.tickets import TicketOut
    from shared.protocol.users import UserOut

T = TypeVar("T")
PAGE = 200  # the API's largest page


async def first(items: AsyncIterator[T], limit: int) -> list[T]:
    """Collect at most `limit` items of a listing walk (`zap.iterate(...)`)."""
    got: list[T] = []
    async for item in items:
        got.append(item)
        if len(got) >= limit:
            break
    return got


def fold(text: str) -> str:
    """Fold case and accents ("Jurídico" and "juridico" compare equal)."""
    folded = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


# --------------------------------------------------------------------------- companies


def _looks_like_cnpj(ref: str) -> bool:
    # 14 characters once the mask is gone, the last two digits: a CNPJ typed wrong, not
    # a company's name.
    bare = "".join(ch for ch in ref if ch.isalnum())
    return len(bare) == 14 and bare[-2:].isdigit() and sum(ch.isdigit() for ch in bare) >= 8


async def resolve_company(zap: ZapClient, ref: str) -> CompanyOut:
    """Find a company by id, CNPJ (masked or not) or name (case and accents ignored)."""
    from shared.cnpj import InvalidCNPJ, format_cnpj, normalize_cnpj

    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_company(uid)
    try:
        digits = normalize_cnpj(ref)
    except InvalidCNPJ as exc:
        if _looks_like_cnpj(ref):
            raise CliError(
                f"no company {ref!r}: not a valid CNPJ ({exc})", ExitCode.NOT_FOUND
            ) from None
        return await _company_by_name(zap, ref)
    async for row in zap.iterate(zap.list_companies, q=digits):
        if row.cnpj == digits:
            return row
    raise CliError(f"no company with CNPJ {format_cnpj(digits)}", ExitCode.NOT_FOUND)


async def _company_by_name(zap: ZapClient, ref: str) -> CompanyOut:
    want = fold(ref)
    if not want:
        raise CliError("no company '': give its name, id or CNPJ", ExitCode.USAGE)
    # The API's `q` matches names by substring, case-insensitively (not accents): ask
    # with the plain words, then keep the exact (folded) name.
    rows = [row async for row in zap.iterate(zap.list_companies, q=ref.strip())]
    if not rows:  # accents typed differently: walk them all (few companies per zap)
        rows = [row async for row in zap.iterate(zap.list_companies)]
    found = [row for row in rows if fold(row.name) == want]
    if not found:
        raise CliError(f"no company named {ref!r} (give its name, id or CNPJ)", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(
            f"{len(found)} companies are named {ref!r}: give the CNPJ or the id", ExitCode.USAGE
        )
    return found[0]


async def names_if_mixed(zap: ZapClient, rows: Sequence[Any]) -> dict[uuid.UUID, str]:
    """Return the names of the companies of `rows` when there are several, else {}."""
    ids = {cid for r in rows if (cid := getattr(r, "company_id", None)) is not None}
    if len(ids) < 2:
        return {}
    names = {c.id: c.name async for c in zap.iterate(zap.list_companies) if c.id in ids}
    return {cid: names.get(cid, str(cid)) for cid in ids}


async def company_id_of(zap: ZapClient, ref: str | None) -> uuid.UUID | None:
    """Return the id of the company named by a --company option (None when not given)."""
    if ref is None:
        return None
    uid = as_uuid(ref)
    return uid if uid is not None else (await resolve_company(zap, ref)).id


# --------------------------------------------------------------------------- departments


async def resolve_department(
    zap: ZapClient, ref: str, company_id: uuid.UUID | None = None
) -> DepartmentOut:
    """Find a department by id, slug or name (case and accents ignored)."""
    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_department(uid)
    rows = await zap.list_departments(company_id)
    return pick_department(rows, ref)


def only_one(found: list[T], ref: str, singular: str, plural: str) -> T:
    """Return the one row a name matched: exit 3 for none, 2 when companies share it."""
    if not found:
        raise CliError(f"no {singular} {ref!r}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(
            f"{ref!r} names {plural} of {len(found)} companies: pass --company or the id",
            ExitCode.USAGE,
        )
    return found[0]


def pick_department(rows: list[DepartmentOut], ref: str) -> DepartmentOut:
    """Pick the department `ref` (id, slug or name) names among `rows`."""
    uid = as_uuid(ref)
    if uid is not None:
        found = [d for d in rows if d.id == uid]
    else:
        want = fold(ref)
        found = [d for d in rows if d.slug == ref.strip().lower()]
        found = found or [d for d in rows if fold(d.name) == want]
    return only_one(found, ref, "department", "departments")


async def department_ids(
    zap: ZapClient, refs: list[str], company_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Resolve department ids, slugs or names to ids (one listing for all of them)."""
    if not refs:
        return []
    rows = await zap.list_departments(company_id)
    out: list[uuid.UUID] = []
    for ref in refs:
        uid = as_uuid(ref)
        dep_id = uid if uid is not None else pick_department(rows, ref).id
        if dep_id not in out:
            out.append(dep_id)
    return out


async def resolve_category(
    zap: ZapClient, ref: str, company_id: uuid.UUID | None = None
) -> CategoryOut:
    """Find a closing category by id or name (case and accents ignored)."""
    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_category(uid)
    want = fold(ref)
    rows = await zap.list_categories(company_id=company_id)
    return only_one([c for c in rows if fold(c.name) == want], ref, "category", "categories")


async def resolve_tag(zap: ZapClient, ref: str, company_id: uuid.UUID | None = None) -> TagOut:
    """Find a tag by id or name (case ignored)."""
    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_tag(uid)
    want = ref.strip().casefold()
    rows = await zap.list_tags(company_id=company_id)
    return only_one([t for t in rows if t.name.casefold() == want], ref, "tag", "tags")


# --------------------------------------------------------------------------- people


async def resolve_user(zap: ZapClient, ref: str, company_id: uuid.UUID | None = None) -> UserOut:
    """Find a user by id or e-mail (case ignored; e-mails are unique across zap)."""
    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_user(uid)
    email = ref.strip().lower()
    if "@" not in email:
        raise CliError(f"no user {ref!r}: give an id or an e-mail", ExitCode.NOT_FOUND)
    async for row in zap.iterate(zap.list_users, q=email, company_id=company_id):
        if row.email.lower() == email:
            return row
    raise CliError(f"no user with e-mail {email}", ExitCode.NOT_FOUND)


# --------------------------------------------------------------------------- sessions


async def resolve_session(zap: ZapClient, ref: str) -> SessionOut:
    """Find a session by id or by name (exact, else case-insensitive)."""
    sid = as_uuid(ref)
    if sid is not None:
        return await zap.get_session(sid)
    sessions = await zap.list_sessions()
    found = [s for s in sessions if s.name == ref.strip()]
    if not found:
        found = [s for s in sessions if s.name.casefold() == ref.strip().casefold()]
    if not found:
        raise CliError(f"no session named {ref!r}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(f"{len(found)} sessions are named {ref!r}: give the id", ExitCode.ERROR)
    return found[0]


# --------------------------------------------------------------------------- tickets


def ticket_number(ref: str) -> int | None:
    """Read "#123" or "123" as a ticket number (None when it is neither)."""
    text = ref.strip().removeprefix("#").strip()
    return int(text) if text.isdigit() else None


async def resolve_ticket(
    zap: ZapClient, ref: str, company_id: uuid.UUID | None = None
) -> TicketOut:
    """Find a ticket the caller can see by id or by number (#123, within `company_id`)."""
    tid = as_uuid(ref)
    if tid is not None:
        return await zap.get_ticket(tid)
    number = ticket_number(ref)
    if number is None:
        raise CliError(f"not a ticket id or number: {ref!r} (use #123 or a UUID)", ExitCode.USAGE)
    # Numbers are unique within a company: one ticket, or one per company for global admins.
    found = (await zap.list_tickets(number=number, company_id=company_id, limit=PAGE)).items
    if not found:
        raise CliError(f"no ticket #{number}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(
            f"#{number} names tickets of {len(found)} companies: give --company or the id",
            ExitCode.USAGE,
        )
    return found[0]
