"""`zapctl user ...`: the people of a company, their roles, departments and passwords."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import Role
from zapctl.errors import CliError, ExitCode
from zapctl.options import ActiveFilterOpt, CompanyOpt, QueryOpt, enum_option
from zapctl.output import ask, by_company, details, dump, emit, table
from zapctl.resolve import (
    company_id_of,
    department_ids,
    names_if_mixed,
    resolve_department,
    resolve_user,
)

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.users import UserOut

app = typer.Typer(
    help="Company users: roles, departments, passwords.",
    no_args_is_help=True,
)

# The limits of shared.protocol.users, checked here without importing pydantic.
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

COLUMNS = [
    ("email", "E-MAIL"),
    ("name", "NAME"),
    ("role", "ROLE"),
    ("active", "ACTIVE"),
    ("departments", "DEPARTMENTS"),
    ("max_concurrent_tickets", "MAX"),
    ("id", "ID"),
]

UserArg = Annotated[str, typer.Argument(metavar="ID|EMAIL", help="The user's id or e-mail.")]
DeptOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dept", metavar="NAME_OR_ID", help="A department (id, slug or name); repeatable."
    ),
]
MaxTicketsOpt = Annotated[
    int | None,
    typer.Option("--max-tickets", metavar="N", help="Tickets the agent works at once (0-100)."),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", help="The password (8+ chars); prompted when omitted on a TTY."),
]
GenerateOpt = Annotated[
    bool, typer.Option("--generate", help="Generate a password and print it once.")
]


def _role(value: Any) -> str:
    """Show an enum member (a role, a presence) in lower case."""
    return str(getattr(value, "name", value)).lower() if value is not None else "global admin"


def _row(u: UserOut, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {
        **u.model_dump(),
        "role": _role(u.role),
        "departments": [names.get(d, str(d)) for d in u.department_ids],
    }


def _human(u: UserOut, names: dict[uuid.UUID, str]) -> str:
    def when(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return details(
        [
            ("id", u.id),
            ("e-mail", u.email),
            ("name", u.name),
            ("role", _role(u.role)),
            ("active", u.active),
            ("departments", [names.get(d, str(d)) for d in u.department_ids]),
            ("max tickets", u.max_concurrent_tickets),
            ("presence", _role(u.presence)),
            ("company", u.company_id),
            ("last login", when(u.last_login_at)),
            ("password changed", when(u.password_changed_at)),
            ("created", when(u.created_at)),
        ]
    )


async def _dept_names(zap: ZapClient, company_id: uuid.UUID | None) -> dict[uuid.UUID, str]:
    return {d.id: d.name for d in await zap.list_departments(company_id)}


def _password(password: str | None, generate: bool, *, allow_server: bool) -> str | None:
    """Return the password to send (None: let the server generate one); exit 2 on misuse."""
    import secrets

    if password is not None and generate:
        raise CliError("give --password or --generate, not both", ExitCode.USAGE)
    if generate:
        return None if allow_server else secrets.token_urlsafe(12)
    if password is None:
        if not sys.stdin.isatty():
            raise CliError(
                "missing --password or --generate (no terminal to prompt on)", ExitCode.USAGE
            )
        password = ask("Password", secret=True, twice=True)
    if len(password) < MIN_PASSWORD:
        raise CliError(f"the password needs at least {MIN_PASSWORD} characters", ExitCode.ERROR)
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise CliError(f"the password must have at most {MAX_PASSWORD} characters, no NUL")
    return password


@app.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="E-mail the user logs in with.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    role: Annotated[Role, enum_option(Role, "--role", help="What the user may do.")],
    password: PasswordOpt = None,
    generate: GenerateOpt = False,
    dept: DeptOpt = None,
    max_tickets: MaxTicketsOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Add a user (ADMIN; global admins give --company).

    Examples:

    \b
      zapctl user add ana@acme.com.br --name "Ana Souza" --role agent --dept financeiro --generate
      zapctl user add bia@acme.com.br --name Bia --role supervisor --password 's3cret-pass'
      zapctl user add caio@acme.com.br --name Caio --role admin --company 11.222.333/0001-81
    """
    from shared.protocol.users import UserCreate
    from zapctl import api

    secret = _password(password, generate, allow_server=False)
    fields: dict[str, Any] = {"email": email, "name": name, "password": secret}
    fields["role"] = role
    if max_tickets is not None:
        fields["max_concurrent_tickets"] = max_tickets

    async def go(zap: ZapClient) -> tuple[UserOut, dict[uuid.UUID, str]]:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        if dept:
            fields["department_ids"] = await department_ids(zap, dept, cid)
        row = await zap.create_user(UserCreate.model_construct(**fields))
        return row, await _dept_names(zap, row.company_id)

    row, names = api.run(ctx, go)
    data = dump(row)
    human = f"added {_role(row.role)} {row.name} <{row.email}>  id {row.id}"
    if row.department_ids:
        human += "\ndepartments: " + ", ".join(names.get(d, str(d)) for d in row.department_ids)
    if generate:
        data["password"] = secret
        human += f"\npassword: {secret}  (shown only now)"
    emit(ctx, data, human)


@app.command("list")
def list_(
    ctx: typer.Context,
    role: Annotated[Role | None, enum_option(Role, "--role", help="Only this role.")] = None,
    dept: Annotated[
        str | None,
        typer.Option("--dept", metavar="NAME_OR_ID", help="Only members of this department."),
    ] = None,
    active: ActiveFilterOpt = None,
    q: QueryOpt = None,
    company: CompanyOpt = None,
) -> None:
    """List users; --q matches name or e-mail.

    Examples:

    \b
      zapctl user list --role agent --dept financeiro
      zapctl --json user list --inactive
    """
    from zapctl import api

    async def go(
        zap: ZapClient,
    ) -> tuple[list[UserOut], dict[uuid.UUID, str], dict[uuid.UUID, str]]:
        cid = await company_id_of(zap, company)
        dep_id = (await resolve_department(zap, dept, cid)).id if dept else None
        rows = [
            u
            async for u in zap.iterate(
                zap.list_users,
                role=role,
                department_id=dep_id,
                active=active,
                q=q,
                company_id=cid,
            )
        ]
        return rows, await _dept_names(zap, cid), await names_if_mixed(zap, rows)

    rows, names, companies = api.run(ctx, go)
    lines, columns = by_company([_row(u, names) for u in rows], rows, COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns))


@app.command("show")
def show(ctx: typer.Context, ref: UserArg) -> None:
    """Show one user, by id or e-mail.

    Examples:

    \b
      zapctl user show ana@acme.com.br
      zapctl --json user show 0190c0de-...
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[UserOut, dict[uuid.UUID, str]]:
        row = await resolve_user(zap, ref)
        return row, await _dept_names(zap, row.company_id)

    row, names = api.run(ctx, go)
    emit(ctx, dump(row), _human(row, names))


def _change(ctx: typer.Context, ref: str, fields: dict[str, Any], verb: str) -> None:
    from shared.protocol.users import UserUpdate
    from zapctl import api

    depts: list[str] | None = fields.pop("_depts", None)

    async def go(zap: ZapClient) -> tuple[UserOut, dict[uuid.UUID, str]]:
        target = await resolve_user(zap, ref)
        if depts is not None:
            fields["department_ids"] = await department_ids(zap, depts, target.company_id)
        row = await zap.update_user(target.id, UserUpdate.model_construct(**fields))
        return row, await _dept_names(zap, row.company_id)

    row, names = api.run(ctx, go)
    emit(ctx, dump(row), f"{verb} {row.name} <{row.email}>\n" + _human(row, names))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: UserArg,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    role: Annotated[Role | None, enum_option(Role, "--role", help="New role.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Enable or disable the user.")
    ] = None,
    max_tickets: MaxTicketsOpt = None,
    dept: DeptOpt = None,
) -> None:
    """Change a user; only what you give changes.

    --dept replaces the departments.

    Examples:

    \b
      zapctl user update ana@acme.com.br --role supervisor --max-tickets 8
      zapctl user update ana@acme.com.br --dept financeiro --dept suporte
    """
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if role is not None:
        fields["role"] = role
    if active is not None:
        fields["active"] = active
    if max_tickets is not None:
        fields["max_concurrent_tickets"] = max_tickets
    if dept:
        fields["_depts"] = dept
    if not fields:
        raise CliError("nothing to change: give at least one option (see --help)", ExitCode.USAGE)
    _change(ctx, ref, fields, "updated")


def _set_active(ctx: typer.Context, ref: str, active: bool) -> None:
    from zapctl import api

    async def go(zap: ZapClient) -> UserOut:
        target = await resolve_user(zap, ref)
        return await (zap.enable_user if active else zap.disable_user)(target.id)

    row = api.run(ctx, go)
    verb = "enabled" if active else "disabled (their logins end now)"
    emit(ctx, dump(row), f"{verb}: {row.name} <{row.email}>")


@app.command("disable")
def disable(ctx: typer.Context, ref: UserArg) -> None:
    """Disable a user: no more logins, and theirs end at once.

    Example: zapctl user disable ana@acme.com.br
    """
    _set_active(ctx, ref, False)


@app.command("enable")
def enable(ctx: typer.Context, ref: UserArg) -> None:
    """Enable a disabled user again.

    Example: zapctl user enable ana@acme.com.br
    """
    _set_active(ctx, ref, True)


@app.command("reset-password")
def reset_password(
    ctx: typer.Context,
    ref: UserArg,
    password: PasswordOpt = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Have zapd generate one; it is printed once.")
    ] = False,
) -> None:
    """Set a user's password, or generate one and print it once.

    Examples:

    \b
      zapctl user reset-password ana@acme.com.br --generate
      zapctl user reset-password ana@acme.com.br --password 'new-pass-123'
    """
    from zapctl import api

    secret = _password(password, generate, allow_server=True)

    async def go(zap: ZapClient) -> tuple[UserOut, Any]:
        target = await resolve_user(zap, ref)
        return target, await zap.reset_password(target.id, secret)

    target, result = api.run(ctx, go)
    human = f"password of {target.email} changed (their logins end now)"
    if result.password:
        human += f"\npassword: {result.password}  (shown only now)"
    emit(ctx, {**dump(result), "email": target.email}, human)


@app.command("set-departments")
def set_departments(
    ctx: typer.Context,
    ref: UserArg,
    depts: Annotated[
        list[str] | None,
        typer.Argument(metavar="NAME_OR_ID...", help="Departments (id, slug or name)."),
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="Remove the user from every one.")] = False,
) -> None:
    """Replace the departments a user works.

    Examples:

    \b
      zapctl user set-departments ana@acme.com.br financeiro suporte
      zapctl user set-departments ana@acme.com.br --none
    """
    from zapctl import api

    if bool(depts) == none:
        raise CliError("give the departments, or --none to remove them all", ExitCode.USAGE)

    async def go(zap: ZapClient) -> tuple[UserOut, dict[uuid.UUID, str]]:
        target = await resolve_user(zap, ref)
        ids = await department_ids(zap, depts or [], target.company_id)
        row = await zap.set_user_departments(target.id, ids)
        return row, await _dept_names(zap, row.company_id)

    row, names = api.run(ctx, go)
    shown = ", ".join(names.get(d, str(d)) for d in row.department_ids) or "none"
    emit(ctx, dump(row), f"departments of {row.email}: {shown}")
