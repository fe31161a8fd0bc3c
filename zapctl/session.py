"""`zapctl session ...`: the company's WhatsApp numbers, linking them (QR) and their engines."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import Engine, LogLevel, SessionStatus
from zapctl.errors import CliError, ExitCode
from zapctl.options import LimitOpt, YesOpt, enum_option
from zapctl.output import (
    by_company,
    confirm,
    details,
    dump,
    emit,
    notice,
    state,
    table,
    when,
)
from zapctl.resolve import (
    PAGE,
    company_id_of,
    first,
    names_if_mixed,
    resolve_department,
    resolve_session,
)

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.sessions import SessionOut, SessionQr

app = typer.Typer(
    help="WhatsApp sessions: add a number, link it with a QR code, start and stop its engine.",
    no_args_is_help=True,
)

POLL_SECONDS = 0.5
DEFAULT_WAIT_SECONDS = 120.0

SessionArg = Annotated[str, typer.Argument(help="Session id or name.", metavar="SESSION")]


# --------------------------------------------------------------------------- helpers


def _row(s: SessionOut) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "name": s.name,
        "engine": s.engine.name.lower(),
        "status": s.status.name,
        "phone": s.phone,
        "active": s.active,
        "heartbeat": when(s.last_heartbeat_at),
    }


def _describe(s: SessionOut) -> str:
    return details(
        [
            ("id", s.id),
            ("name", s.name),
            ("company", s.company_id),
            ("engine", s.engine.name.lower()),
            ("status", s.status.name + (f" ({s.status_reason})" if s.status_reason else "")),
            ("phone", s.phone),
            ("active", s.active),
            ("default department", s.default_department_id),
            ("webhook url", s.webhook_url),
            ("webhook secret", "set" if s.has_webhook_secret else None),
            ("config", ", ".join(f"{k}={v}" for k, v in s.config.items()) or None),
            ("last heartbeat", when(s.last_heartbeat_at)),
            ("QR expires", when(s.qr_expires_at)),
            ("created", when(s.created_at)),
        ]
    )


def _no_qr_reason(s: SessionOut | SessionQr, name: str) -> str:

    status = s.status
    if status == SessionStatus.CONNECTED:
        return f"session {name} is already connected: there is no QR code to scan"
    if status == SessionStatus.DISCONNECTED:
        return (
            f"session {name} is not started: there is no QR code"
            f" (run: zapctl session start {name!r} --wait)"
        )
    if status == SessionStatus.ERROR:
        return f"session {name} is in ERROR: there is no QR code (see: zapctl session logs)"
    return f"session {name} is {status.name}: there is no QR code right now"


class QrScreen:
    """Draws QR codes on a terminal, replacing the previous drawing when one rotates."""

    def __init__(self, name: str, *, sandbox: bool, invert: bool = False) -> None:
        from zapctl import qr

        self.name = name
        self.sandbox = sandbox
        self.invert = invert
        self.color = qr.use_color()
        self.tty = sys.stdout.isatty()
        self.shown: str | None = None
        self._lines = 0

    def show(self, payload: str, expires_at: datetime | None) -> None:
        """Draw `payload` unless it is the code already on screen."""
        from zapctl import qr

        if payload == self.shown:
            return
        if self.sandbox:
            how = f"SANDBOX (simulated WhatsApp): link it with: zapctl sandbox scan {self.name!r}"
        else:
            how = "On the phone: WhatsApp > Settings > Linked devices > Link a device, then scan"
        expiry = f" (expires {when(expires_at)})" if expires_at else ""
        text = f"{how}{expiry}\n{qr.render(payload, color=self.color, invert=self.invert)}\n"
        if self._lines and self.tty:  # on a terminal: draw over the previous code
            sys.stdout.write(f"\x1b[{self._lines}F\x1b[J")
        sys.stdout.write(text)
        sys.stdout.flush()
        self.shown = payload
        self._lines = text.count("\n")


# --------------------------------------------------------------------------- CRUD


def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the number, unique in the company.")],
    engine: Annotated[
        Engine,
        enum_option(Engine, "--engine", help="How zap talks to WhatsApp.", default=Engine.SANDBOX),
    ] = Engine.SANDBOX,
    dept: Annotated[
        str | None,
        typer.Option("--dept", help="Default department (id, slug or name) for new tickets."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", help="Where to POST this session's events (signed)."),
    ] = None,
    cloud_phone_number_id: Annotated[
        str | None,
        typer.Option("--cloud-phone-number-id", help="Cloud engine: Meta's phone number id."),
    ] = None,
    cloud_token: Annotated[
        str | None,
        typer.Option(
            "--cloud-token",
            envvar="ZAP_CLOUD_TOKEN",
            help="Cloud engine: the Graph API access token (stored encrypted, never shown).",
        ),
    ] = None,
    cloud_waba_id: Annotated[
        str | None,
        typer.Option("--cloud-waba-id", help="Cloud engine: the WhatsApp Business Account id."),
    ] = None,
    cloud_app_secret: Annotated[
        str | None,
        typer.Option(
            "--cloud-app-secret",
            envvar="ZAP_CLOUD_APP_SECRET",
            help="Cloud engine: the Meta app secret that signs webhooks.",
        ),
    ] = None,
    cloud_verify_token: Annotated[
        str | None,
        typer.Option(
            "--cloud-verify-token",
            help="Cloud engine: the webhook verify token (one is generated when omitted).",
        ),
    ] = None,
    cloud_api_version: Annotated[
        str | None,
        typer.Option("--cloud-api-version", help="Cloud engine: Graph API version, e.g. v26.0."),
    ] = None,
    cloud_base_url: Annotated[
        str | None,
        typer.Option("--cloud-base-url", help="Cloud engine: Graph API base URL (a proxy)."),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="Cloud engine: the https address Meta reaches zapd at (default: --server).",
        ),
    ] = None,
    company: Annotated[
        str | None,
        typer.Option("--company", help="Company name, id or CNPJ (global admins only)."),
    ] = None,
) -> None:
    """Add a WhatsApp session (ADMIN); a webhook secret, if any, is printed this once.

    Examples:

      zapctl session add "Atendimento" --engine webjs --dept suporte

      \b
      zapctl session add Oficial --engine cloud \\
        --cloud-phone-number-id 1234567890 --cloud-token EAAG... \\
        --cloud-waba-id 9876543210 --cloud-app-secret abc123 \\
        --public-url https://zap.example.com.br

    A cloud session prints the webhook URL and verify token to paste in Meta's
    dashboard (WhatsApp > Configuration > Webhook); the token is shown only now.

      zapctl --json session add Teste --engine sandbox
    """
    from zapctl import api

    config: dict[str, Any] = {}
    cloud_extra = {
        "business_account_id": cloud_waba_id,
        "app_secret": cloud_app_secret,
        "verify_token": cloud_verify_token,
        "api_version": cloud_api_version,
        "base_url": cloud_base_url,
    }
    if engine is Engine.CLOUD:
        if not cloud_phone_number_id or not cloud_token:
            raise CliError(
                "the cloud engine needs --cloud-phone-number-id and --cloud-token", ExitCode.USAGE
            )
        if not cloud_app_secret:
            raise CliError(
                "the cloud engine needs --cloud-app-secret (it checks every webhook's signature)",
                ExitCode.USAGE,
            )
        if not cloud_verify_token:
            import secrets

            cloud_extra["verify_token"] = secrets.token_urlsafe(24)
        config = {"phone_number_id": cloud_phone_number_id, "access_token": cloud_token}
        config.update({k: v for k, v in cloud_extra.items() if v})
    elif cloud_phone_number_id or cloud_token or any(cloud_extra.values()):
        raise CliError("--cloud-* options are for --engine cloud", ExitCode.USAGE)
    elif public_url:
        raise CliError("--public-url is for --engine cloud", ExitCode.USAGE)

    async def go(zap: ZapClient) -> Any:
        from pydantic import ValidationError

        from shared.protocol.sessions import SessionCreate

        company_id = await company_id_of(zap, company)
        dept_id = (await resolve_department(zap, dept, company_id)).id if dept else None
        try:
            body = SessionCreate(
                name=name,
                engine=engine,
                default_department_id=dept_id,
                webhook_url=webhook_url,
                config=config,
                company_id=company_id,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "session"
            why = str(err["msg"]).removeprefix("Value error, ")
            raise CliError(f"{where}: {why}") from None
        return await zap.create_session(body)

    created = api.run(ctx, go)
    human = f"added session {created.name} ({created.id}), engine {created.engine.name.lower()}"
    doc = dump(created)
    if created.webhook_secret:
        human += f"\nwebhook secret (shown only now): {created.webhook_secret}"
    if engine is Engine.CLOUD:
        base = (public_url or api.settings(ctx).server).rstrip("/")
        url = f"{base}/webhooks/cloud/{created.id}"
        token = config["verify_token"]
        doc["cloud_webhook"] = {"url": url, "verify_token": token}
        human += (
            "\npaste in Meta's dashboard (WhatsApp > Configuration > Webhook):"
            f"\n  callback URL: {url}\n  verify token (shown only now): {token}"
            "\n  and subscribe the `messages` field"
        )
    human += f"\nnext: zapctl session start {created.id} --wait"
    emit(ctx, doc, human)


def list_(
    ctx: typer.Context,
    status: Annotated[
        SessionStatus | None,
        enum_option(SessionStatus, "--status", help="Only sessions in this state."),
    ] = None,
    company: Annotated[
        str | None, typer.Option("--company", help="Company name, id or CNPJ (global admins only).")
    ] = None,
) -> None:
    """List WhatsApp sessions with their connection state.

    Examples:

      zapctl session list

      zapctl --json session list --status connected
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[list[SessionOut], dict[Any, str]]:
        company_id = await company_id_of(zap, company)
        rows = await zap.list_sessions(status=status, company_id=company_id)
        return rows, await names_if_mixed(zap, rows)

    rows, companies = api.run(ctx, go)
    columns = ["id", "name", "engine", "status", "phone", "active", "heartbeat"]
    lines, cols = by_company([_row(s) for s in rows], rows, columns, companies)
    emit(ctx, dump(rows), table(lines, cols))


def show(ctx: typer.Context, session: SessionArg) -> None:
    """Show one session (credentials in its config are masked).

    Examples:

      zapctl session show Atendimento

      zapctl --json session show 0190a6c1-...
    """
    from zapctl import api

    found = api.run(ctx, lambda zap: resolve_session(zap, session))
    emit(ctx, dump(found), _describe(found))


def status(ctx: typer.Context, session: SessionArg) -> None:
    """Show a session's connection state: status, reason, phone and heartbeat.

    Examples:

      zapctl session status Atendimento

      zapctl --json session status Atendimento | jq -r .status_name
    """
    from zapctl import api

    s = api.run(ctx, lambda zap: resolve_session(zap, session))
    data = {
        "id": str(s.id),
        "name": s.name,
        "status": int(s.status),
        "status_name": s.status.name,
        "status_reason": s.status_reason,
        "phone": s.phone,
        "last_heartbeat_at": s.last_heartbeat_at.isoformat() if s.last_heartbeat_at else None,
    }
    human = f"{s.name}: {s.status.name}"
    if s.status_reason:
        human += f" ({s.status_reason})"
    if s.phone:
        human += f"  {s.phone}"
    if s.last_heartbeat_at:
        human += f"  heartbeat {when(s.last_heartbeat_at)}"
    emit(ctx, data, human)


def templates(ctx: typer.Context, session: SessionArg) -> None:
    """List the approved message templates of a Cloud API session (SUPERVISOR+).

    Templates are what may be sent outside the customer's 24-hour window
    (zapctl send --template NAME --param VALUE).

    Examples:

      zapctl session templates Oficial

      zapctl --json session templates Oficial
    """
    from zapctl import api

    async def go(zap: ZapClient) -> list[Any]:
        s = await resolve_session(zap, session)
        return await zap.session_templates(s.id)

    rows = api.run(ctx, go)
    shown = [
        {
            "name": t.name,
            "language": t.language,
            "category": t.category,
            "params": t.parameters,
            "body": t.body,
        }
        for t in rows
    ]
    emit(ctx, dump(rows), table(shown, ["name", "language", "category", "params", "body"]))


# --------------------------------------------------------------------------- engine control


def start(
    ctx: typer.Context,
    session: SessionArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Block until CONNECTED, drawing QR codes on a TTY.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="With --wait: give up after S seconds (exit 6)."),
    ] = DEFAULT_WAIT_SECONDS,
) -> None:
    """Start a session's engine (ADMIN); with --wait, block until it is connected.

    Starting a session that is already running is not an error. With --wait, on a
    terminal the QR code is drawn (and redrawn as it rotates) until a phone scans it;
    with --json nothing is printed until the end. Exit 6 on timeout, 1 on ERROR.

    Examples:

      zapctl session start Atendimento --wait

      zapctl --json session start Atendimento --wait --timeout 300
    """
    from zapctl import api

    chatty = not state(ctx).json
    draw = wait and chatty and sys.stdout.isatty()

    async def go(zap: ZapClient) -> tuple[SessionOut, bool]:
        from shared.client import Conflict
        from shared.errors import ErrorCode

        s = await resolve_session(zap, session)
        started = True
        try:
            await zap.start_session(s.id)
        except Conflict as exc:
            if exc.code != ErrorCode.SESSION_STARTED:
                raise
            started = False
        if not wait:
            return await zap.get_session(s.id), started
        return await _wait_connected(zap, s, timeout, draw=draw, chatty=chatty), started

    final, started = api.run(ctx, go)
    data = dump(final) | {"started": started}
    if wait:
        human = f"session {final.name} is connected" + (f" ({final.phone})" if final.phone else "")
    elif started:
        human = f"session {final.name} started: {final.status.name}"
        human += f"\nnext: zapctl session qr {final.name!r} --watch"
    else:
        human = f"session {final.name} was already started: {final.status.name}"
    emit(ctx, data, human)


async def _wait_connected(
    zap: ZapClient, before: SessionOut, within: float, *, draw: bool, chatty: bool
) -> SessionOut:
    """Poll a started session until CONNECTED; ERROR and the deadline end it too."""

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    screen = QrScreen(before.name, sandbox=before.engine == Engine.SANDBOX) if draw else None
    told = False
    while True:
        cur = await zap.get_session(before.id)
        if cur.status == SessionStatus.CONNECTED:
            return cur
        fresh = cur.updated_at != before.updated_at or before.status != SessionStatus.ERROR
        if cur.status == SessionStatus.ERROR and fresh:
            reason = f": {cur.status_reason}" if cur.status_reason else ""
            raise CliError(f"session {cur.name} failed{reason}", ExitCode.ERROR)
        if cur.status == SessionStatus.WAITING_QR:
            if screen is not None:
                code = await zap.session_qr(cur.id)
                if code.qr:
                    screen.show(code.qr, code.expires_at)
            elif chatty and not told:
                notice(
                    f"waiting for session {cur.name} to be linked"
                    f" (show its QR code with: zapctl session qr {cur.name!r} --watch)"
                )
                told = True
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise CliError(
                f"session {cur.name} did not connect within {within:g}s (status {cur.status.name})",
                ExitCode.TIMEOUT,
            )
        await asyncio.sleep(min(POLL_SECONDS, remaining))


def qr_cmd(
    ctx: typer.Context,
    session: SessionArg,
    watch: Annotated[
        bool, typer.Option("--watch", help="Redraw as the code rotates, until CONNECTED.")
    ] = False,
    invert: Annotated[
        bool,
        typer.Option("--invert", help="Without colours: swap ink for dark-background terminals."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="With --watch: give up after S seconds (exit 6)."),
    ] = None,
) -> None:
    """Draw the QR code that links a session, for a phone camera to scan (ADMIN).

    Exit 1 when there is no code to show (the session is connected, or not started).
    --json prints {"qr": PAYLOAD, "expires_at": ...} instead of drawing.

    Examples:

      zapctl session qr Atendimento --watch

      zapctl --json session qr Atendimento | jq -r .qr
    """
    from zapctl import api

    if watch and state(ctx).json:
        raise CliError("--watch draws on the terminal: it does not go with --json", ExitCode.USAGE)

    async def go(zap: ZapClient) -> tuple[SessionOut, SessionQr | None]:

        s = await resolve_session(zap, session)
        code = await zap.session_qr(s.id)
        linking = (SessionStatus.WAITING_QR, SessionStatus.AUTHENTICATING, SessionStatus.SYNCING)
        if not code.qr and not (watch and code.status in linking):
            raise CliError(_no_qr_reason(code, s.name))
        if not watch:
            return s, code
        screen = QrScreen(s.name, sandbox=s.engine == Engine.SANDBOX, invert=invert)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if code.qr:
                screen.show(code.qr, code.expires_at)
            elif code.status == SessionStatus.CONNECTED:
                return await zap.get_session(s.id), None
            elif code.status not in linking:
                raise CliError(f"session {s.name} stopped before being linked ({code.status.name})")
            if deadline is not None and loop.time() >= deadline:
                raise CliError(
                    f"session {s.name} was not linked within {timeout:g}s", ExitCode.TIMEOUT
                )
            await asyncio.sleep(POLL_SECONDS)
            code = await zap.session_qr(s.id)

    from zapctl import qr as qr_draw

    found, code = api.run(ctx, go)
    if code is None:  # watched until linked
        emit(ctx, dump(found), f"session {found.name} is connected ({found.phone or '-'})")
        return
    assert code.qr is not None
    data = {
        "qr": code.qr,
        "expires_at": code.expires_at.isoformat() if code.expires_at else None,
        "session_id": str(code.session_id),
        "status": code.status,  # by name in --json (output.plain)
        "sandbox": code.sandbox,
    }
    color = qr_draw.use_color()
    human = qr_draw.render(code.qr, color=color, invert=invert)
    if code.sandbox:
        human += f"\nSANDBOX: link it with: zapctl sandbox scan {found.name!r}"
    if code.expires_at:
        human += f"\nexpires {when(code.expires_at)} (zapctl session qr --watch follows it)"
    emit(ctx, data, human)


def pair(
    ctx: typer.Context,
    session: SessionArg,
    phone: Annotated[str, typer.Option("--phone", help="The number to link, e.g. +5511...")],
    wait: Annotated[bool, typer.Option("--wait", help="Block until CONNECTED.")] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="With --wait: give up after S seconds (exit 6)."),
    ] = DEFAULT_WAIT_SECONDS,
) -> None:
    """Link a session with a pairing code instead of a QR code (ADMIN).

    Starts the session when it is not running, asks its engine for an eight-character
    code and prints it. On the phone: WhatsApp → Linked devices → Link a device →
    Link with phone number instead, then type the code. With --wait, block until the
    session is connected (exit 6 on timeout); with --json the code also goes to stderr
    at once, so it can be typed while the command waits. Exit 1 when the engine cannot
    pair (the reason says so).

    Examples:

      zapctl session pair Atendimento --phone +5511912345678 --wait

      zapctl --json session pair Atendimento --phone 11912345678 | jq -r .code
    """
    from zapctl import api

    e164 = check_phone(phone)
    chatty = not state(ctx).json

    async def go(zap: ZapClient) -> tuple[Any, SessionOut | None, str]:
        from shared.client import Conflict
        from shared.errors import ErrorCode

        s = await resolve_session(zap, session)
        try:
            await zap.start_session(s.id)
        except Conflict as exc:
            if exc.code != ErrorCode.SESSION_STARTED:
                raise
        await _until_waiting(zap, s, min(timeout, 30.0))
        code = await zap.pair_session(s.id, e164)
        lines = _pairing_text(s.name, code)
        if wait:  # the code is needed now, not when the command ends
            if chatty:
                sys.stdout.write(lines + "\n")
                sys.stdout.flush()
            else:
                notice(f"pairing code for {s.name}: {code.display}")
        final = await _wait_connected(zap, s, timeout, draw=False, chatty=False) if wait else None
        return code, final, s.name

    code, final, name = api.run(ctx, go)
    data = dump(code) | {"display": code.display}
    if final is not None:
        data["status"] = final.status.name
        human = f"session {final.name} is connected" + (f" ({final.phone})" if final.phone else "")
    else:
        human = _pairing_text(name, code)
    emit(ctx, data, human)


def _pairing_text(name: str, code: Any) -> str:
    text = (
        f"pairing code for {name}: {code.display}  (for {code.phone}, "
        f"expires {when(code.expires_at)})\n"
        "on the phone: WhatsApp → Linked devices → Link a device → "
        "Link with phone number instead, then type the code"
    )
    if code.sandbox:
        text += f"\nSANDBOX: type it with: zapctl sandbox pair {name!r} {code.display}"
    return text


async def _until_waiting(zap: ZapClient, s: SessionOut, within: float) -> None:
    """Wait for a just-started session to reach WAITING_QR (a linked one never does)."""

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        cur = await zap.get_session(s.id)
        if cur.status == SessionStatus.WAITING_QR:
            return
        if cur.status == SessionStatus.CONNECTED:
            raise CliError(f"session {cur.name} is already linked ({cur.phone or 'connected'})")
        if loop.time() >= deadline:
            raise CliError(
                f"session {cur.name} is not waiting to be linked (status {cur.status.name})",
                ExitCode.TIMEOUT,
            )
        await asyncio.sleep(POLL_SECONDS)


def check_phone(phone: str) -> str:
    """Normalize a phone to E.164, or fail with exit 1 before anything is sent."""
    from shared.phone import InvalidPhone, normalize_phone

    try:
        return normalize_phone(phone)
    except InvalidPhone as exc:
        message = str(exc)
        if not message.startswith("invalid phone"):
            message = f"invalid phone {phone!r}: {message}"
        raise CliError(message) from None


def stop(ctx: typer.Context, session: SessionArg) -> None:
    """Disconnect a session, keeping its link: start resumes it without a QR (ADMIN).

    Example: zapctl session stop Atendimento
    """
    from zapctl import api

    async def go(zap: ZapClient) -> SessionOut:
        s = await resolve_session(zap, session)
        await zap.stop_session(s.id)
        return await zap.get_session(s.id)

    s = api.run(ctx, go)
    emit(ctx, dump(s), f"session {s.name} stopped: {s.status.name}")


def logout(ctx: typer.Context, session: SessionArg, yes: YesOpt = False) -> None:
    """Unlink the number from a session: the next start needs a new QR scan (ADMIN).

    Examples:

      zapctl session logout Atendimento

      zapctl session logout Atendimento --yes
    """
    from zapctl import api

    found = api.run(ctx, lambda zap: resolve_session(zap, session))
    confirm(f"Unlink {found.phone or 'the number'} from session {found.name}?", yes)

    async def go(zap: ZapClient) -> SessionOut:
        await zap.logout_session(found.id)
        return await zap.get_session(found.id)

    s = api.run(ctx, go)
    emit(ctx, dump(s), f"session {s.name} logged out: link it again with a QR code")


def logs(
    ctx: typer.Context,
    session: SessionArg,
    level: Annotated[
        LogLevel | None, enum_option(LogLevel, "--level", help="Minimum level to show.")
    ] = None,
    limit: LimitOpt = 50,
) -> None:
    """Show the last lines of a session's log, oldest first (ADMIN, SUPERVISOR).

    Examples:

      zapctl session logs Atendimento --level warning

      zapctl --json session logs Atendimento --limit 500
    """
    from zapctl import api

    async def go(zap: ZapClient) -> list[Any]:
        s = await resolve_session(zap, session)
        walk = zap.iterate(zap.session_logs, s.id, level=level, limit=min(limit, PAGE))
        return list(reversed(await first(walk, limit)))

    lines = api.run(ctx, go)
    human = "\n".join(
        f"{when(x.created_at)}  {x.level.name:<7}  {x.event}: {x.message}" for x in lines
    )
    emit(ctx, dump(lines), human or "(no log lines)")


def update(
    ctx: typer.Context,
    session: SessionArg,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    dept: Annotated[
        str | None,
        typer.Option("--dept", help="Default department (id, slug or name) for new tickets."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", help="Where to POST this session's events (signed)."),
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Keep it running, or not.")
    ] = None,
    rotate_webhook_secret: Annotated[
        bool,
        typer.Option("--rotate-webhook-secret", help="Mint a new webhook secret (shown once)."),
    ] = False,
) -> None:
    """Change a session (ADMIN); a rotated webhook secret is printed this once.

    Examples:

      zapctl session update Atendimento --name "Atendimento SP" --dept suporte

      zapctl session update Atendimento --rotate-webhook-secret
    """
    from zapctl import api

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if webhook_url is not None:
        fields["webhook_url"] = webhook_url
    if active is not None:
        fields["active"] = active
    if rotate_webhook_secret:
        fields["rotate_webhook_secret"] = True
    if not fields and dept is None:
        raise CliError(
            "nothing to change: give --name, --dept, --webhook-url, --active/--inactive "
            "or --rotate-webhook-secret",
            ExitCode.USAGE,
        )

    async def go(zap: ZapClient) -> Any:
        from shared.protocol.sessions import SessionUpdate

        s = await resolve_session(zap, session)
        if dept is not None:
            fields["default_department_id"] = (await resolve_department(zap, dept, s.company_id)).id
        return await zap.update_session(s.id, SessionUpdate.model_construct(**fields))

    updated = api.run(ctx, go)
    human = f"updated session {updated.name}"
    if updated.webhook_secret:
        human += f"\nwebhook secret (shown only now): {updated.webhook_secret}"
    emit(ctx, dump(updated), human)


def remove(
    ctx: typer.Context,
    session: SessionArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also when it has message history (the history goes)."),
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Remove a session (ADMIN); one with message history needs --force.

    Examples:

      zapctl session remove Teste --yes

      zapctl session remove Antiga --force --yes
    """
    from zapctl import api

    async def find(zap: ZapClient) -> SessionOut:
        return await resolve_session(zap, session)

    target = api.run(ctx, find)
    what = " and its message history" if force else ""
    confirm(f"Remove session {target.name}{what}?", yes)

    async def go(zap: ZapClient) -> None:
        await zap.delete_session(target.id, force=force)

    api.run(ctx, go)
    emit(ctx, {"id": str(target.id), "deleted": True}, f"removed session {target.name}")


app.command("add")(add)
app.command("list")(list_)
app.command("show")(show)
app.command("status")(status)
app.command("start")(start)
app.command("qr")(qr_cmd)
app.command("pair")(pair)
app.command("stop")(stop)
app.command("logout")(logout)
app.command("logs")(logs)
app.command("update")(update)
app.command("remove")(remove)
app.command("templates")(templates)
