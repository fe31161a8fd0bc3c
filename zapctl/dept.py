"""`zapctl dept ...`: departments (queues), the choices of the greeting menu."""

from __future__ import annotations

import re
import uuid
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import AutoAssignMode
from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt, YesOpt, enum_option
from zapctl.output import by_company, confirm, details, dump, emit, table
from zapctl.resolve import company_id_of, names_if_mixed, resolve_department

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.departments import DepartmentOut

app = typer.Typer(
    help="Departments (queues): the greeting menu's choices.",
    no_args_is_help=True,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Portuguese abbreviations are accepted too (seg-sex 08:00-18:00).
_DAY_ALIASES = {
    "seg": "mon",
    "ter": "tue",
    "qua": "wed",
    "qui": "thu",
    "sex": "fri",
    "sab": "sat",
    "sáb": "sat",
    "dom": "sun",
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
ALWAYS_OPEN = "always"

HOURS_HELP = (
    'Opening hours, repeatable: "mon-fri 08:00-12:00,13:00-18:00", "sat 09:00-13:00" '
    '(days: mon..sun or seg..dom, lists and ranges; missing days are closed); "always" '
    "means open all the time (the default)."
)


# --------------------------------------------------------------------------- hours


def _bad_hours(spec: str, why: str) -> CliError:
    return CliError(f"invalid --hours {spec!r}: {why}", ExitCode.USAGE)


def _day(token: str, spec: str) -> int:
    name = token.strip().lower()
    name = _DAY_ALIASES.get(name, name)
    if name not in WEEKDAYS:
        raise _bad_hours(spec, f"unknown day {token!r} (use mon, tue, wed, thu, fri, sat, sun)")
    return WEEKDAYS.index(name)


def _days(text: str, spec: str) -> list[str]:
    out: list[int] = []
    for part in text.split(","):
        if not part.strip():
            raise _bad_hours(spec, "empty day in the day list")
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first, spec), _day(last, spec)
            span = (b - a) % 7
            out += [(a + i) % 7 for i in range(span + 1)]
        else:
            out.append(_day(part, spec))
    return [WEEKDAYS[i] for i in sorted(set(out))]


def _time(text: str, spec: str) -> str:
    m = _TIME.match(text.strip())
    if not m:
        raise _bad_hours(spec, f"time {text.strip()!r} is not HH:MM")
    hh, mm = int(m.group(1)), int(m.group(2))
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise _bad_hours(spec, f"time {text.strip()!r} is not a time of day (00:00-24:00)")
    return f"{hh:02d}:{mm:02d}"


def parse_hours(specs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Turn --hours specs into the API's business_hours map (exit 2 on a bad spec).

    "mon-fri 08:00-12:00,13:00-18:00" gives those two ranges on each weekday; several specs
    add up; "always" (alone) gives the empty map, which means always open.
    """
    if [s.strip().lower() for s in specs] == [ALWAYS_OPEN]:
        return {}
    hours: dict[str, list[tuple[str, str]]] = {}
    for spec in specs:
        if spec.strip().lower() == ALWAYS_OPEN:
            raise _bad_hours(spec, f"{ALWAYS_OPEN!r} cannot be combined with other --hours")
        days, _, rest = spec.strip().partition(" ")
        ranges = "".join(rest.split())
        if not days or not ranges:
            raise _bad_hours(spec, 'expected "DAYS HH:MM-HH:MM[,HH:MM-HH:MM...]"')
        day_list = _days(days, spec)
        parsed: list[tuple[str, str]] = []
        for rng in ranges.split(","):
            start, sep, end = rng.partition("-")
            if not sep:
                raise _bad_hours(spec, f"range {rng!r} is not HH:MM-HH:MM")
            a, b = _time(start, spec), _time(end, spec)
            if a == b or a == "24:00":
                raise _bad_hours(spec, f"{a}-{b} is not a range (an end after midnight is fine)")
            parsed.append((a, b))
        for day in day_list:
            merged = sorted(hours.get(day, []) + parsed)
            # A night shift (end <= start) runs to midnight on this day.
            for (s0, end), (start, _) in pairwise(merged):
                if start < (end if end > s0 else "24:00"):
                    raise _bad_hours(spec, f"{day}: ranges overlap")
            hours[day] = merged
    return {day: hours[day] for day in WEEKDAYS if day in hours}


def format_hours(hours: dict[str, Any]) -> str:
    """Show a business_hours map compactly: "mon-fri 08:00-18:00; sat 09:00-13:00"."""
    if not hours:
        return "always open"
    key = [",".join(f"{a}-{b}" for a, b in hours[d]) if hours.get(d) else None for d in WEEKDAYS]
    groups: list[str] = []
    i = 0
    while i < 7:
        if key[i] is None:
            i += 1
            continue
        j = i
        while j + 1 < 7 and key[j + 1] == key[i]:
            j += 1
        days = WEEKDAYS[i] if i == j else f"{WEEKDAYS[i]}-{WEEKDAYS[j]}"
        groups.append(f"{days} {key[i]}")
        i = j + 1
    return "; ".join(groups)


# --------------------------------------------------------------------------- resolving


# --------------------------------------------------------------------------- commands

COLUMNS = [
    ("menu_order", "#"),
    ("name", "NAME"),
    ("slug", "SLUG"),
    ("active", "ACTIVE"),
    ("auto_assign", "AUTO-ASSIGN"),
    ("hours", "HOURS"),
    ("keywords", "KEYWORDS"),
    ("id", "ID"),
]


def _mode(value: Any) -> str:
    return str(getattr(value, "name", value)).lower().replace("_", "-")


def _row(d: DepartmentOut) -> dict[str, Any]:
    return {
        **d.model_dump(),
        "auto_assign": _mode(d.auto_assign),
        "hours": format_hours(d.business_hours),
    }


def _human(d: DepartmentOut, names: dict[uuid.UUID, str]) -> str:
    fallback = d.fallback_department_id
    timeout = d.response_timeout_seconds
    return details(
        [
            ("id", d.id),
            ("name", d.name),
            ("slug", d.slug),
            ("menu order", d.menu_order),
            ("active", d.active),
            ("keywords", d.keywords),
            ("hours", format_hours(d.business_hours)),
            ("timezone", d.timezone or "(company's)"),
            ("auto-assign", _mode(d.auto_assign)),
            ("response timeout", f"{timeout} s" if timeout else None),
            ("fallback", names.get(fallback, str(fallback)) if fallback else None),
            ("greeting", d.greeting),
            ("out-of-hours message", d.out_of_hours_message),
        ]
    )


SlugOpt = Annotated[str | None, typer.Option("--slug", help="Slug (default: from the name).")]
OrderOpt = Annotated[
    int | None, typer.Option("--order", metavar="N", help="Position in the greeting menu.")
]
KeywordOpt = Annotated[
    list[str] | None,
    typer.Option("--keyword", metavar="K", help="A word that picks it from the menu; repeatable."),
]
GreetingOpt = Annotated[
    str | None, typer.Option("--greeting", metavar="T", help="Text sent when a client enters.")
]
OutOfHoursOpt = Annotated[
    str | None,
    typer.Option("--out-of-hours-message", metavar="T", help="Text sent when it is closed."),
]
TimeoutOpt = Annotated[
    int | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Wait this long for an agent before the fallback (30+; 0 clears on update).",
    ),
]
FallbackOpt = Annotated[
    str | None,
    typer.Option(
        "--fallback",
        metavar="NAME_OR_ID",
        help="Department tickets move to on timeout ('none' clears on update).",
    ),
]
HoursOpt = Annotated[list[str] | None, typer.Option("--hours", metavar="SPEC", help=HOURS_HELP)]
TzOpt = Annotated[
    str | None,
    typer.Option("--timezone", metavar="TZ", help="IANA zone of its hours (default: company's)."),
]
AutoAssignOpt = Annotated[
    AutoAssignMode | None,
    enum_option(AutoAssignMode, "--auto-assign", help="Hand waiting tickets to agents."),
]


def _fields(
    *,
    slug: str | None,
    order: int | None,
    keyword: list[str] | None,
    greeting: str | None,
    out_of_hours_message: str | None,
    timeout: int | None,
    hours: list[str] | None,
    timezone: str | None,
    auto_assign: AutoAssignMode | None,
    clearing: bool,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if slug is not None:
        fields["slug"] = slug
    if order is not None:
        fields["menu_order"] = order
    if keyword:
        fields["keywords"] = keyword
    for key, text in (("greeting", greeting), ("out_of_hours_message", out_of_hours_message)):
        if text is not None:
            fields[key] = None if (clearing and not text) else text
    if timeout is not None:
        fields["response_timeout_seconds"] = None if (clearing and timeout == 0) else timeout
    if hours:
        fields["business_hours"] = parse_hours(hours)
    if timezone is not None:
        fields["timezone"] = None if (clearing and not timezone) else timezone
    if auto_assign is not None:
        fields["auto_assign"] = auto_assign
    return fields


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Department name, as the menu shows it.")],
    slug: SlugOpt = None,
    order: OrderOpt = None,
    keyword: KeywordOpt = None,
    greeting: GreetingOpt = None,
    out_of_hours_message: OutOfHoursOpt = None,
    timeout: TimeoutOpt = None,
    fallback: FallbackOpt = None,
    hours: HoursOpt = None,
    timezone: TzOpt = None,
    auto_assign: AutoAssignOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Create a department (ADMIN).

    Examples:

    \b
      zapctl dept add Financeiro --keyword boleto --keyword pagamento --hours "mon-fri 08:00-18:00"
      zapctl dept add Suporte --hours "seg-sex 08:00-12:00,13:00-18:00" \\
        --hours "sab 09:00-13:00" --timeout 300 --fallback financeiro --auto-assign least-loaded
    """
    from shared.protocol.departments import DepartmentCreate
    from zapctl import api

    fields = _fields(
        slug=slug,
        order=order,
        keyword=keyword,
        greeting=greeting,
        out_of_hours_message=out_of_hours_message,
        timeout=timeout,
        hours=hours,
        timezone=timezone,
        auto_assign=auto_assign,
        clearing=False,
    )
    fields["name"] = name

    async def go(zap: ZapClient) -> DepartmentOut:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        if fallback is not None:
            fields["fallback_department_id"] = (await resolve_department(zap, fallback, cid)).id
        return await zap.create_department(DepartmentCreate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"created department {row.name} (slug {row.slug})  id {row.id}")


@app.command("list")
def list_(ctx: typer.Context, company: CompanyOpt = None) -> None:
    """List departments in menu order.

    Examples:

    \b
      zapctl dept list
      zapctl --json dept list --company 11.222.333/0001-81
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[list[DepartmentOut], dict[Any, str]]:
        rows = await zap.list_departments(await company_id_of(zap, company))
        return rows, await names_if_mixed(zap, rows)

    rows, companies = api.run(ctx, go)
    lines, columns = by_company([_row(d) for d in rows], rows, COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="Id, slug or name.")],
    company: CompanyOpt = None,
) -> None:
    """Show one department (by id, slug or name).

    Examples:

    \b
      zapctl dept show financeiro
      zapctl --json dept show "Suporte Técnico"
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[DepartmentOut, dict[uuid.UUID, str]]:
        row = await resolve_department(zap, ref, await company_id_of(zap, company))
        names: dict[uuid.UUID, str] = {}
        if row.fallback_department_id:
            others = await zap.list_departments(row.company_id)
            names = {d.id: d.name for d in others}
        return row, names

    row, names = api.run(ctx, go)
    emit(ctx, dump(row), _human(row, names))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="Id, slug or name.")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    slug: SlugOpt = None,
    order: OrderOpt = None,
    keyword: KeywordOpt = None,
    no_keywords: Annotated[
        bool, typer.Option("--no-keywords", help="Remove every keyword.")
    ] = False,
    greeting: GreetingOpt = None,
    out_of_hours_message: OutOfHoursOpt = None,
    timeout: TimeoutOpt = None,
    fallback: FallbackOpt = None,
    hours: HoursOpt = None,
    timezone: TzOpt = None,
    auto_assign: AutoAssignOpt = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Offer it in the menu, or hide it."),
    ] = None,
    company: CompanyOpt = None,
) -> None:
    """Change a department; only what you give changes.

    --hours replaces all the hours.

    An empty --greeting "", --out-of-hours-message "" or --timezone "" clears it.

    Examples:

    \b
      zapctl dept update financeiro --hours "mon-fri 09:00-17:00" --auto-assign round-robin
      zapctl dept update Suporte --name "Suporte Técnico" --timeout 0 --fallback none
      zapctl dept update vendas --inactive
    """
    from shared.protocol.departments import DepartmentUpdate
    from zapctl import api

    fields = _fields(
        slug=slug,
        order=order,
        keyword=keyword,
        greeting=greeting,
        out_of_hours_message=out_of_hours_message,
        timeout=timeout,
        hours=hours,
        timezone=timezone,
        auto_assign=auto_assign,
        clearing=True,
    )
    if name is not None:
        fields["name"] = name
    if no_keywords:
        if keyword:
            raise CliError("give --keyword or --no-keywords, not both", ExitCode.USAGE)
        fields["keywords"] = []
    if active is not None:
        fields["active"] = active
    if not fields and fallback is None:
        raise CliError("nothing to change: give at least one option (see --help)", ExitCode.USAGE)

    async def go(zap: ZapClient) -> DepartmentOut:
        target = await resolve_department(zap, ref, await company_id_of(zap, company))
        if fallback is not None:
            fields["fallback_department_id"] = (
                None
                if fallback.strip().lower() == "none"
                else (await resolve_department(zap, fallback, target.company_id)).id
            )
        return await zap.update_department(target.id, DepartmentUpdate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"updated department {row.name} (slug {row.slug})")


@app.command("remove")
def remove(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="Id, slug or name.")],
    yes: YesOpt = False,
    company: CompanyOpt = None,
) -> None:
    """Remove a department (ADMIN).

    Its tickets keep their history. Asks first unless --yes.

    Examples:

    \b
      zapctl dept remove vendas
      zapctl dept remove 0190c0de-... --yes
    """
    import sys

    from zapctl import api

    if not yes and not sys.stdin.isatty():
        raise CliError("refusing without confirmation: pass --yes (no terminal)", ExitCode.USAGE)

    async def find(zap: ZapClient) -> DepartmentOut:
        return await resolve_department(zap, ref, await company_id_of(zap, company))

    row = api.run(ctx, find)
    confirm(f"Remove department {row.name} ({row.slug})?", yes)
    api.run(ctx, lambda zap: zap.delete_department(row.id))
    emit(ctx, {"id": str(row.id), "deleted": True}, f"removed department {row.name}")
