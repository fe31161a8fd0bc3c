"""/api/v1/media: upload files and fetch them back.

    POST /api/v1/media                multipart/form-data with one `file` part; any member
                                      of a company (global admins add ?company_id=).
                                      201 with the new row; 200 with the existing row when
                                      the same uploader sends the same content and name.
                                      413 over `max_media_bytes`, 415 for content of a type
                                      not on the allow-list (or a body that is not
                                      multipart), 422 for a malformed form.
    GET  /api/v1/media/{media_id}       the file itself, as an attachment.
    GET  /api/v1/media/{media_id}/meta  its metadata.

The type is detected from the content (see `zapd.services.delivery.media`). Reads follow the
ticket rules: admins and supervisors see every file of their company, an agent the
files they uploaded and those attached to messages of tickets they can see; any other
id answers 404. The multipart body is parsed here as it streams in, straight into the
store: a file is never held whole in memory.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.requests import ClientDisconnect

from shared.protocol.media import UPLOAD_FIELD, MediaOut
from zapd.api.deps import ActorDep, Auth, KernelDep
from zapd.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from zapd.services.delivery import media

router = APIRouter(prefix="/api/v1/media", tags=["media"])

MAX_PART_HEADER_BYTES = 16 * 1024
MAX_PARTS = 8
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;,"]{1,200}))', re.IGNORECASE)
_PARAM = re.compile(r'\s*;?\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')

# Events of the streaming multipart parser.
PART = "part"
DATA = "data"
PART_END = "part_end"


@dataclass(frozen=True)
class PartHeaders:
    """What a multipart part says about itself."""

    name: str | None
    filename: str | None
    content_type: str | None


def boundary_of(content_type: str) -> bytes:
    """Return the boundary of a multipart/form-data Content-Type; anything else is a 415."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise UnsupportedMediaType(
            f"send the file as multipart/form-data in a {UPLOAD_FIELD!r} part"
        )
    m = _BOUNDARY.search(content_type)
    if m is None:
        raise ValidationFailed("multipart/form-data without a boundary")
    try:
        return (m.group(1) or m.group(2)).encode("ascii")
    except UnicodeEncodeError:
        raise ValidationFailed("the multipart boundary must be ASCII") from None


def _disposition(value: str) -> dict[str, str]:
    _, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in _PARAM.finditer(";" + rest):
        key, raw = m.group(1).lower(), m.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
    extended = params.get("filename*")
    if extended:  # RFC 5987: charset'language'percent-encoded
        charset, _, tail = extended.partition("'")
        _, _, encoded = tail.partition("'")
        try:
            params["filename"] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            params["filename"] = unquote(encoded, errors="replace")
    return params


def parse_part_headers(raw: bytes) -> PartHeaders:
    """Read a part's header block (UTF-8, as browsers send file names)."""
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None or disposition.split(";", 1)[0].strip().lower() != "form-data":
        raise ValidationFailed("every multipart part needs Content-Disposition: form-data")
    params = _disposition(disposition)
    return PartHeaders(params.get("name"), params.get("filename"), headers.get("content-type"))


async def multipart_events(
    chunks: AsyncIterator[bytes], boundary: bytes
) -> AsyncGenerator[tuple[str, Any], None]:
    """Parse a multipart body as it streams: (PART, headers), (DATA, bytes)..., (PART_END, None).

    Only a bounded tail of the stream is buffered (a part's headers, or the bytes that
    may begin the next boundary); part bodies pass straight through.
    """
    delimiter = b"\r\n--" + boundary
    keep = len(delimiter) - 1
    buf = bytearray(b"\r\n")  # so a body that starts with the boundary matches `delimiter`
    stream = chunks.__aiter__()
    ended = False
    parts = 0

    async def more() -> bool:
        nonlocal ended
        if ended:
            return False
        try:
            chunk = await stream.__anext__()
        except StopAsyncIteration:
            ended = True
            return False
        buf.extend(chunk)
        return True

    def malformed(why: str) -> ValidationFailed:
        return ValidationFailed(f"malformed multipart body: {why}")

    # Preamble: skip to the first boundary.
    while (at := buf.find(delimiter)) < 0:
        if len(buf) > keep:
            del buf[: len(buf) - keep]
        if not await more():
            raise malformed("no boundary found")
    del buf[: at + len(delimiter)]
    while True:
        # After a boundary: "--" ends the body, else optional padding and CRLF.
        while (eol := buf.find(b"\r\n")) < 0 and not buf.startswith(b"--"):
            if len(buf) > 256 or not await more():
                raise malformed("bad boundary line")
        if buf.startswith(b"--"):
            return  # the epilogue, if any, is ignored
        if buf[:eol].strip(b" \t"):
            raise malformed("bad boundary line")
        del buf[: eol + 2]
        parts += 1
        if parts > MAX_PARTS:
            raise malformed(f"more than {MAX_PARTS} parts")
        # Part headers, up to the blank line.
        if buf.startswith(b"\r\n"):
            raw = b""
            del buf[:2]
        else:
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if len(buf) > MAX_PART_HEADER_BYTES or not await more():
                    raise malformed("part headers too long or cut short")
            if end > MAX_PART_HEADER_BYTES:
                raise malformed("part headers too long")
            raw = bytes(buf[:end])
            del buf[: end + 4]
        yield PART, parse_part_headers(raw)
        # Part body, up to the next boundary.
        while (at := buf.find(delimiter)) < 0:
            if len(buf) > keep:
                yield DATA, bytes(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
            if not await more():
                raise malformed("the body ends before its closing boundary")
        if at:
            yield DATA, bytes(buf[:at])
        del buf[: at + len(delimiter)]
        yield PART_END, None


async def receive_upload(
    chunks: AsyncIterator[bytes], boundary: bytes, upload: media.Upload
) -> media.StoredFile:
    """Stream the form's `file` part into `upload` and finish it; other parts are refused."""
    seen: PartHeaders | None = None
    in_file = False
    async with aclosing(multipart_events(chunks, boundary)) as events:
        async for kind, value in events:
            if kind == PART:
                if value.name != UPLOAD_FIELD:
                    hint = " (give it in the query string)" if value.name == "company_id" else ""
                    raise ValidationFailed(f"unexpected form field {value.name!r}{hint}")
                if seen is not None:
                    raise ValidationFailed("send one file per upload")
                seen, in_file = value, True
            elif kind == DATA and in_file:
                await upload.write(value)
            elif kind == PART_END:
                in_file = False
    if seen is None:
        raise ValidationFailed(f"the form has no {UPLOAD_FIELD!r} part")
    return await upload.finish(seen.filename, seen.content_type)


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "",
    response_model=MediaOut,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": MediaOut, "description": "the same file was already uploaded"},
        413: {"description": "over max_media_bytes"},
        415: {"description": "a type not on the allow-list, or not multipart/form-data"},
    },
)
async def upload_media(
    request: Request,
    response: Response,
    actor: ActorDep,
    kernel: KernelDep,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> MediaOut:
    """Store an uploaded file (any company role; global admins give company_id)."""
    async with kernel.read() as db:
        target = await media.upload_company(db, actor.principal, company_id)
    boundary = boundary_of(request.headers.get("content-type", ""))
    upload = media.MediaStore.from_settings(kernel.settings).upload()
    try:
        stored = await receive_upload(request.stream(), boundary, upload)
    except ClientDisconnect:
        await upload.abort()
        raise BadRequest("the upload was interrupted") from None
    except BaseException:
        await upload.abort()
        raise
    async with kernel.tx() as db:
        row, created = await media.create(db, actor, target, stored)
        out = MediaOut.model_validate(row)
    if not created:
        response.status_code = 200
    return out


@router.get("/{media_id}/meta", response_model=MediaOut)
async def media_meta(media_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> MediaOut:
    """Show a file's type, size, digest and name."""
    async with kernel.read() as db:
        return MediaOut.model_validate(await media.get(db, principal, media_id))


@router.get(
    "/{media_id}",
    response_class=FileResponse,
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"}},
)
async def download_media(media_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> Response:
    """Send a file's bytes as an attachment, with its detected type."""
    async with kernel.read() as db:
        row = await media.get(db, principal, media_id)
        key, mime, sha = row.storage_key, row.mime, row.sha256
        filename = media.safe_filename(row.filename, mime)
    path = media.MediaStore.from_settings(kernel.settings).path_of(key)
    try:
        stat = await anyio.to_thread.run_sync(os.stat, path)
    except FileNotFoundError:
        raise NotFound("media content not found") from None
    return FileResponse(
        path,
        media_type=mime,
        stat_result=stat,
        headers={
            "Content-Disposition": media.content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-cache",
            "ETag": f'"{sha}"',
        },
    )
