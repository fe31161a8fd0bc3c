"""`zapctl send`: write to a customer — on a ticket, or to a phone through a session."""

from __future__ import annotations

import mimetypes
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.output import dump, emit

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.tickets import MessageOut

MAX_FILE_BYTES = 100 * 1024 * 1024  # beyond any WhatsApp media limit: refuse before reading


def send(
    ctx: typer.Context,
    text: Annotated[
        str | None, typer.Argument(help="The text to send (with --file: its caption).")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Session (id or name) to send from.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="With --session: the customer's phone.")
    ] = None,
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="Ticket (id, or number as #123) to answer.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, readable=True, help="A file to send."),
    ] = None,
    note: Annotated[
        bool, typer.Option("--note", help="With --ticket: an internal note agents see only.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Retry safely: a repeated key sends nothing new."),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="Cloud API: send this approved template (see zapctl session templates).",
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option("--param", help="With --template: a body parameter, in order (repeat)."),
    ] = None,
    language: Annotated[
        str, typer.Option("--language", help="With --template: its language code.")
    ] = "pt_BR",
) -> None:
    """Send a WhatsApp message through the outbox: to a ticket, or to a phone (SUPERVISOR+).

    Examples:

      zapctl send --session Loja --to +5511987654321 "Seu pedido saiu"

      zapctl send --session Loja --to 11987654321 --file boleto.pdf "Segue"

      zapctl send --ticket '#42' "Já verifico para você"

      zapctl send --ticket 42 --note "cliente pediu retorno amanhã"

      zapctl --json send --ticket 42 "Oi" --idempotency-key pedido-991

      zapctl send --ticket 42 --template boas_vindas --param Maria

    Outside the customer's 24-hour window a Cloud API session takes only a template:
    free text is refused (ERR_WINDOW_CLOSED) with the names of the approved ones.
    """
    from zapctl import api

    if (ticket is None) == (session is None):
        raise CliError("give either --ticket, or --session and --to", ExitCode.USAGE)
    if session is not None and to is None:
        raise CliError("--session needs --to PHONE", ExitCode.USAGE)
    if ticket is not None and to is not None:
        raise CliError("--to goes with --session, not --ticket", ExitCode.USAGE)
    if template is not None and (text or file is not None or note):
        raise CliError("--template goes alone: no TEXT, --file or --note", ExitCode.USAGE)
    if params and template is None:
        raise CliError("--param goes with --template", ExitCode.USAGE)
    if template is None and not (text and text.strip()) and file is None:
        raise CliError("give the TEXT to send, --file PATH or --template NAME", ExitCode.USAGE)
    if note and ticket is None:
        raise CliError("internal notes belong to a ticket: use --ticket", ExitCode.USAGE)
    if note and file is not None:
        raise CliError("internal notes are text only", ExitCode.USAGE)
    phone = None
    if to is not None:
        from zapctl.session import check_phone

        phone = check_phone(to)
    content = None
    if file is not None:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise CliError(f"{file} is too large to send (over {MAX_FILE_BYTES >> 20} MB)")
        content = file.read_bytes()

    async def go(zap: ZapClient) -> MessageOut:
        from pydantic import ValidationError

        from shared.protocol.messages import MessageSend, TemplateSend
        from zapctl.resolve import resolve_session, resolve_ticket

        ticket_id: uuid.UUID | None = None
        session_id: uuid.UUID | None = None
        if ticket is not None:
            t = await resolve_ticket(zap, ticket)
            ticket_id, company_id = t.id, t.company_id
        else:
            assert session is not None
            s = await resolve_session(zap, session)
            session_id, company_id = s.id, s.company_id
        media_id = None
        if file is not None and content is not None:
            mime = mimetypes.guess_type(file.name)[0]
            media = await zap.upload_media(content, file.name, mime, company_id=company_id)
            media_id = media.id
        chosen = None
        if template is not None:
            try:
                chosen = TemplateSend(name=template, language=language, parameters=params or [])
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "template"
                why = str(err["msg"]).removeprefix("Value error, ")
                raise CliError(f"--template {where}: {why}", ExitCode.USAGE) from None
        body = MessageSend.model_construct(
            ticket_id=ticket_id,
            session_id=session_id,
            to=phone,
            body=text if text and text.strip() else None,
            media_id=media_id,
            note=note,
            template=chosen,
        )
        return await zap.send_message(body, idempotency_key=idempotency_key)

    sent = api.run(ctx, go)
    what = "note stored" if sent.is_note else f"message queued ({sent.status.name.lower()})"
    emit(ctx, dump(sent), f"{what}: {sent.id}")
