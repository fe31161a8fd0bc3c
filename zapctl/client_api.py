"""`zapctl client list | show | tag | block`: the customers, through zapd.

Registered on the `client` noun beside its offline LGPD commands (zapctl.client). A
client is named by id or phone (any usual spelling; a Brazilian mobile matches with or
without the 9th digit, as zapd matches it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt, LimitOpt, QueryOpt, as_uuid
from zapctl.output import by_company, details, dump, emit, table, when
from zapctl.resolve import PAGE, company_id_of, first, fold, names_if_mixed

if TYPE_CHECKING:
    import uuid

    from shared.client import ZapClient
    from shared.protocol.catalog import TagOut
    from shared.protocol.clients import ClientOut

ClientArg = Annotated[
    str,
    typer.Argument(
        metavar="CLIENT",
        help="The client's id or phone (+55 11 91234-5678, 11912345678...).",
        show_default=False,
    ),
]
COLUMNS = [
    ("name", "NAME"),
    ("phone", "PHONE"),
    ("blocked", "BLOCKED"),
    ("tags", "TAGS"),
    ("created", "SINCE"),
    ("id", "ID"),
]


async def resolve_client(
    zap: ZapClient, ref: str, company_id: uuid.UUID | None = None
) -> ClientOut:
    """Find a client by id or phone; exit 3 when there is none."""
    from shared.phone import InvalidPhone, br_phone_variants, normalize_phone

    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_client(uid)
    try:
        e164 = normalize_phone(ref, strict=False)
    except InvalidPhone as exc:
        raise CliError(
            f"no client {ref!r}: give an id or a phone ({exc})", ExitCode.NOT_FOUND
        ) from None
    spellings = set(br_phone_variants(e164)) | {e164}
    found = [
        c
        async for c in zap.iterate(zap.list_clients, q=e164[-8:], company_id=company_id)
        if c.phone in spellings
    ]
    if not found:
        raise CliError(f"no client with phone {e164}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(
            f"{e164} is a client of {len(found)} companies: pass --company or the id",
            ExitCode.USAGE,
        )
    return found[0]


def _name(c: ClientOut) -> str | None:
    return c.name or c.profile_name


def _row(c: ClientOut, tags: dict[Any, str]) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": _name(c),
        "phone": c.phone,
        "blocked": c.blocked,
        "tags": [tags.get(t, str(t)) for t in c.tag_ids],
        "created": when(c.created_at),
    }


async def _tag_names(zap: ZapClient, company_id: uuid.UUID | None) -> dict[Any, str]:
    return {t.id: t.name for t in await zap.list_tags(company_id=company_id)}


def list_(
    ctx: typer.Context,
    q: QueryOpt = None,
    blocked: Annotated[
        bool | None, typer.Option("--blocked/--unblocked", help="Only blocked (or unblocked).")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only clients with this tag.")] = None,
    limit: LimitOpt = 50,
    company: CompanyOpt = None,
) -> None:
    """List clients, newest first; --q searches name, profile name and phone digits.

    Examples:

      zapctl client list --q silva

      zapctl --json client list --tag VIP --limit 500
    """
    from zapctl import api
    from zapctl.resolve import resolve_tag

    async def go(zap: ZapClient) -> tuple[list[ClientOut], dict[Any, str], dict[Any, str]]:
        cid = await company_id_of(zap, company)
        tag_id = (await resolve_tag(zap, tag, cid)).id if tag else None
        walk = zap.iterate(
            zap.list_clients,
            q=q,
            blocked=blocked,
            tag_id=tag_id,
            company_id=cid,
            limit=min(limit, PAGE),
        )
        rows = await first(walk, limit)
        return rows, await _tag_names(zap, cid), await names_if_mixed(zap, rows)

    rows, tags, companies = api.run(ctx, go)
    lines, columns = by_company([_row(c, tags) for c in rows], rows, COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns))


def show(ctx: typer.Context, client: ClientArg, company: CompanyOpt = None) -> None:
    """Show a client: identity, tags, state and notes.

    Examples:

      zapctl client show +5511912345678

      zapctl --json client show 0190c0de-...
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[ClientOut, dict[Any, str]]:
        c = await resolve_client(zap, client, await company_id_of(zap, company))
        return c, await _tag_names(zap, c.company_id)

    c, tags = api.run(ctx, go)
    human = details(
        [
            ("id", c.id),
            ("name", c.name),
            ("profile name", c.profile_name),
            ("phone", c.phone),
            ("lid", c.lid),
            ("e-mail", c.email),
            ("blocked", c.blocked),
            ("tags", [tags.get(t, str(t)) for t in c.tag_ids]),
            ("notes", c.notes),
            ("since", when(c.created_at)),
            ("company", c.company_id),
        ]
    )
    emit(ctx, dump(c), human)


def tag(
    ctx: typer.Context,
    client: ClientArg,
    tags: Annotated[list[str], typer.Argument(metavar="TAG...", help="Tag names or ids.")],
    remove: Annotated[
        bool, typer.Option("--remove", help="Take these tags off instead of putting them on.")
    ] = False,
    company: CompanyOpt = None,
) -> None:
    """Put tags on a client (or take them off with --remove); the others stay.

    Examples:

      zapctl client tag +5511912345678 VIP atacado

      zapctl client tag 11912345678 VIP --remove
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[ClientOut, dict[Any, str]]:
        c = await resolve_client(zap, client, await company_id_of(zap, company))
        known = await zap.list_tags(company_id=c.company_id)
        chosen = [_pick_tag(known, ref) for ref in tags]
        current = list(c.tag_ids)
        if remove:
            wanted = [t for t in current if t not in {x.id for x in chosen}]
        else:
            wanted = current + [x.id for x in chosen if x.id not in current]
        updated = await zap.set_client_tags(c.id, wanted)
        return updated, {t.id: t.name for t in known}

    c, names = api.run(ctx, go)
    shown = ", ".join(names.get(t, str(t)) for t in c.tag_ids) or "no tags"
    emit(ctx, dump(c), f"client {_name(c) or c.phone}: {shown}")


def _pick_tag(known: list[TagOut], ref: str) -> TagOut:
    uid = as_uuid(ref)
    want = fold(ref)
    found = [t for t in known if t.id == uid or (uid is None and fold(t.name) == want)]
    if not found:
        raise CliError(f"no tag {ref!r} (zapctl tag add {ref!r} creates it)", ExitCode.NOT_FOUND)
    return found[0]


def block(
    ctx: typer.Context,
    client: ClientArg,
    unblock: Annotated[bool, typer.Option("--unblock", help="Lift the block instead.")] = False,
    company: CompanyOpt = None,
) -> None:
    """Block a client (their messages are ignored) or lift it (SUPERVISOR and up).

    Examples:

      zapctl client block +5511912345678

      zapctl client block 11912345678 --unblock
    """
    from shared.protocol.clients import ClientUpdate
    from zapctl import api

    async def go(zap: ZapClient) -> ClientOut:
        c = await resolve_client(zap, client, await company_id_of(zap, company))
        body = ClientUpdate.model_construct(blocked=not unblock)
        return await zap.update_client(c.id, body)

    c = api.run(ctx, go)
    state = "blocked" if c.blocked else "unblocked"
    emit(ctx, dump(c), f"client {_name(c) or c.phone} {state}")
