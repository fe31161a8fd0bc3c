"""`zapctl sandbox ...`: drive the simulated WhatsApp network (demo and tests only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.output import dump, emit, table, when
from zapctl.resolve import resolve_session
from zapctl.session import SessionArg, check_phone

if TYPE_CHECKING:
    from shared.client import ZapClient

app = typer.Typer(
    help="The SANDBOX (simulated WhatsApp): link sessions, play customers, read their phones.",
    no_args_is_help=True,
)


def _short(text: str | None, width: int = 70) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def say(
    ctx: typer.Context,
    session: SessionArg,
    phone: Annotated[str, typer.Argument(help="The customer's phone.", metavar="FROM_PHONE")],
    text: Annotated[str, typer.Argument(help="What the customer writes.")],
    name: Annotated[
        str | None, typer.Option("--name", help="The customer's WhatsApp profile name.")
    ] = None,
    wa_id: Annotated[
        str | None,
        typer.Option("--id", help="The WhatsApp message id (repeat one to test dedupe)."),
    ] = None,
) -> None:
    """Make a simulated customer send a text to a sandbox session (ADMIN).

    Examples:

      zapctl sandbox say Teste +5511987654321 "Oi, bom dia" --name "Maria Souza"

      zapctl sandbox say Teste 11987654321 1
    """
    from zapctl import api

    e164 = check_phone(phone)

    async def go(zap: ZapClient) -> Any:
        from shared.protocol.sessions import SandboxInbound

        s = await resolve_session(zap, session)
        body = SandboxInbound.model_construct(phone=e164, text=text, name=name, wa_message_id=wa_id)
        return await zap.sandbox_inbound(s.id, body)

    got = api.run(ctx, go)
    emit(ctx, dump(got), f"{e164} said it: {got.wa_message_id}")


def scan(
    ctx: typer.Context,
    session: SessionArg,
    phone: Annotated[
        str | None,
        typer.Option("--phone", help="The number the simulated phone has (default: a new one)."),
    ] = None,
) -> None:
    """Simulate a phone scanning a sandbox session's QR code: the session links (ADMIN).

    Examples:

      zapctl sandbox scan Teste

      zapctl sandbox scan Teste --phone +551130000001
    """
    from zapctl import api

    e164 = check_phone(phone) if phone is not None else None

    async def go(zap: ZapClient) -> tuple[str, str]:
        s = await resolve_session(zap, session)
        return s.name, await zap.sandbox_scan(s.id, e164)

    name, linked = api.run(ctx, go)
    emit(ctx, {"session": name, "phone": linked}, f"session {name} linked to {linked}")


def pair(
    ctx: typer.Context,
    session: SessionArg,
    code: Annotated[str, typer.Argument(help="The pairing code, e.g. ABCD-EFGH.", metavar="CODE")],
) -> None:
    """Simulate the phone's owner typing a sandbox session's pairing code: it links (ADMIN).

    Get the code with `zapctl session pair SESSION --phone P`; the session links to
    that phone.

    Example: zapctl sandbox pair Teste ABCD-EFGH
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[str, str]:
        s = await resolve_session(zap, session)
        return s.name, await zap.sandbox_enter_code(s.id, code)

    name, linked = api.run(ctx, go)
    emit(ctx, {"session": name, "phone": linked}, f"session {name} linked to {linked}")


def inbox(
    ctx: typer.Context,
    session: SessionArg,
    phone: Annotated[str, typer.Argument(help="The customer's phone.", metavar="PHONE")],
) -> None:
    """List what a simulated customer's phone received from a sandbox session (ADMIN).

    Example: zapctl --json sandbox inbox Teste +5511987654321
    """
    from zapctl import api

    e164 = check_phone(phone)

    async def go(zap: ZapClient) -> list[Any]:
        s = await resolve_session(zap, session)
        return await zap.sandbox_inbox(s.id, e164)

    got = api.run(ctx, go)
    rows = [
        {
            "at": when(d.at),
            "type": d.type.name.lower(),
            "body": _short(d.body),
            "id": d.wa_message_id,
        }
        for d in got
    ]
    emit(ctx, dump(got), table(rows, ["at", "type", "body", "id"]))


app.command("say")(say)
app.command("scan")(scan)
app.command("pair")(pair)
app.command("inbox")(inbox)
