"""Media over real HTTP: upload/download, dedupe on disk, limits, type sniffing, access."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import MessageDirection, MessageStatus, MessageType, TicketStatus
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live, start_live
from tests.zapd.api.conftest import test_settings as make_settings
from zapd.db.models import AuditLog, Media, Message, Ticket
from zapd.services.delivery.media import safe_filename, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"x" * 500
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + os.urandom(300)


def stored_files(live: Live) -> list[Path]:
    """Every file under the media dir (temporary uploads included)."""
    root = live.kernel.settings.media_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    filename: str = "foto.png",
    content_type: str = "application/octet-stream",
    **params: Any,
) -> httpx.Response:
    return await client.post(
        "/api/v1/media", files={"file": (filename, content, content_type)}, params=params
    )


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code, r.text
    assert "Traceback" not in r.text


async def media_count(live: Live) -> int:
    async with live.kernel.read() as db:
        return int(await db.scalar(select(func.count()).select_from(Media)) or 0)


async def test_upload_download_round_trip(live: Live) -> None:
    t = await live.tenant()
    r = await upload(t.agent, PNG, "foto.png", "image/png")
    assert r.status_code == 201, r.text
    meta = r.json()
    digest = hashlib.sha256(PNG).hexdigest()
    assert meta["mime"] == "image/png" and meta["size"] == len(PNG)
    assert meta["sha256"] == digest and meta["filename"] == "foto.png"
    assert meta["company_id"] == str(t.company_id)
    assert meta["uploaded_by_id"] == str(t.users["agent"])
    # Stored by content, and nothing else left behind.
    root = live.kernel.settings.media_dir
    assert stored_files(live) == [root / digest[:2] / digest]
    assert (root / digest[:2] / digest).read_bytes() == PNG

    r = await t.agent.get(f"/api/v1/media/{meta['id']}")
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == str(len(PNG))
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''foto.png" in r.headers["content-disposition"]
    assert r.headers["etag"] == f'"{digest}"'
    assert (await t.agent.get(f"/api/v1/media/{meta['id']}/meta")).json() == meta

    # A non-ASCII name travels as RFC 5987 UTF-8 with an ASCII fallback.
    name = "relatório de exames.pdf"
    r = await upload(t.admin, PDF, name, "application/pdf")
    assert r.status_code == 201 and r.json()["filename"] == name
    r = await t.admin.get(f"/api/v1/media/{r.json()['id']}")
    disposition = r.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert 'filename="relatorio de exames.pdf"' in disposition
    assert r.headers["content-type"] == "application/pdf" and r.content == PDF

    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog).where(AuditLog.company_id == t.company_id).order_by(AuditLog.id)
            )
        ).all()
    assert [a.action for a in rows] == ["media.create", "media.create"]
    assert rows[0].entity_id == uuid.UUID(meta["id"]) and rows[0].user_id == t.users["agent"]


async def test_same_content_is_one_file_on_disk(live: Live) -> None:
    t = await live.tenant()
    first = await upload(t.admin, PNG, "a.png")
    second = await upload(t.admin, PNG, "b.png")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["sha256"] == second.json()["sha256"]
    # Same content, same name, same uploader: the same row back, with 200.
    again = await upload(t.admin, PNG, "a.png")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # Another person uploading it gets a row of their own (so they may read it).
    theirs = await upload(t.supervisor, PNG, "a.png")
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    # Another company too: rows are per company, the file on disk is shared.
    other = await live.tenant("Outra")
    elsewhere = await upload(other.admin, PNG, "a.png")
    assert elsewhere.status_code == 201
    assert await media_count(live) == 4
    assert len(stored_files(live)) == 1
    for row in (first, second, theirs):
        assert (await t.admin.get(f"/api/v1/media/{row.json()['id']}")).content == PNG


async def test_size_limit_is_413_and_leaves_nothing(
    engine: AsyncEngine, backend: Any, tmp_path: Path
) -> None:
    limit = 4096
    lv, server, task = await start_live(
        engine, backend.name, make_settings(tmp_path, max_media_bytes=limit)
    )
    try:
        t = await lv.tenant()
        at_limit = PNG[:16] + b"\x01" * (limit - 16)
        r = await upload(t.admin, at_limit, "cheio.png")
        assert r.status_code == 201, r.text
        assert r.json()["size"] == limit
        r = await upload(t.admin, at_limit + b"\x01", "grande.png")
        assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")
        assert str(limit) in r.json()["message"]

        # Streamed without Content-Length: cut off as it arrives.
        boundary = "zapboundary"

        async def chunks() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="stream.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            yield PNG[:16]
            for _ in range(8):
                yield b"\x02" * 1024
            yield f"\r\n--{boundary}--\r\n".encode()

        r = await t.admin.post(
            "/api/v1/media",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert_error(r, 413, "ERR_PAYLOAD_TOO_LARGE")
        assert await media_count(lv) == 1
        assert len(stored_files(lv)) == 1  # no temporary file left behind
    finally:
        await lv.close()
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_type_comes_from_the_content(live: Live) -> None:
    t = await live.tenant()
    # A PDF named .png is a PDF, and its name gets the right extension.
    r = await upload(t.admin, PDF, "foto.png", "image/png")
    assert r.status_code == 201 and r.json()["mime"] == "application/pdf"
    assert r.json()["filename"] == "foto.png.pdf"
    got = await t.admin.get(f"/api/v1/media/{r.json()['id']}")
    assert got.headers["content-type"] == "application/pdf"
    assert "foto.png.pdf" in got.headers["content-disposition"]

    # An executable is refused, whatever it calls itself.
    before = await media_count(live)
    for name, ctype in (("app.exe", "application/x-msdownload"), ("foto.jpg", "image/jpeg")):
        assert_error(await upload(t.admin, ELF, name, ctype), 415, "ERR_UNSUPPORTED_MEDIA_TYPE")
    mz = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
    assert_error(await upload(t.admin, mz, "setup.pdf"), 415, "ERR_UNSUPPORTED_MEDIA_TYPE")
    # A plain ZIP is not an office document.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.bin", b"\x00" * 10)
    assert_error(
        await upload(t.admin, buf.getvalue(), "doc.docx"), 415, "ERR_UNSUPPORTED_MEDIA_TYPE"
    )
    assert await media_count(live) == before
    assert len(stored_files(live)) == 1  # only the PDF

    # A real DOCX (ZIP with the Office markers) is one.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    r = await upload(t.admin, buf.getvalue(), "contrato.zip", "application/zip")
    assert r.status_code == 201
    assert r.json()["mime"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert r.json()["filename"] == "contrato.zip.docx"

    # Text is text/plain whatever the claim: never served as HTML.
    html = "<script>alert('oi')</script>\nolá\n".encode()
    r = await upload(t.admin, html, "pagina.html", "text/html")
    assert r.status_code == 201 and r.json()["mime"] == "text/plain"
    assert r.json()["filename"] == "pagina.html.txt"
    got = await t.admin.get(f"/api/v1/media/{r.json()['id']}")
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.content == html
    r = await upload(t.admin, b"nome;idade\nAna;30\n", "planilha.csv", "text/csv")
    assert r.status_code == 201 and r.json()["mime"] == "text/csv"
    # Bytes that are not UTF-8 text and match no signature are refused.
    assert_error(
        await upload(t.admin, b"\xff\xfe\x00a\x00b", "x.txt"), 415, "ERR_UNSUPPORTED_MEDIA_TYPE"
    )


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (PNG[:16], "image/png"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"%PDF-1.4\n", "application/pdf"),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead\x01", "audio/ogg"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
        (b"\xff\xf1\x50\x80\x00", "audio/aac"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
        (b"PK\x03\x04\x14\x00", "application/zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "application/x-ole-storage"),
        (b"#!AMR\n", "audio/amr"),
        (b"\xff\xfe\x00a\x00b", None),  # UTF-16 BOM, not an MP3 frame
        (ELF[:32], None),
        (b"MZ\x90\x00", None),
        (b"hello", None),
    ],
)
def test_signature_table(head: bytes, mime: str | None) -> None:
    assert sniff(head) == mime


def test_safe_filename_rules() -> None:
    assert safe_filename("../../etc/passwd", "text/plain") == "passwd.txt"
    assert safe_filename("..\\..\\windows\\evil.png", "image/png") == "evil.png"
    assert safe_filename("/abs/path/.hidden.png", "image/png") == "hidden.png"
    assert safe_filename("foto\u202egnp.exe", "image/png") == "fotognp.exe.png"
    assert safe_filename('a<b>:"c"|?*.png', "image/png") == "a_b___c____.png"
    assert safe_filename("nul\x00byte\r\n.png", "image/png") == "nulbyte.png"
    assert safe_filename(None, "application/pdf") == "arquivo.pdf"
    assert safe_filename("..", "image/jpeg") == "arquivo.jpg"
    long = safe_filename("x" * 500 + ".png", "image/png")
    assert len(long) == 200 and long.endswith(".png")


async def test_path_traversal_names_are_sanitized(live: Live) -> None:
    t = await live.tenant()
    outside = live.kernel.settings.state_dir.parent
    names = {
        "../../../../evil.png": "evil.png",
        "..\\..\\evil2.png": "evil2.png",
        "/etc/cron.d/evil3.png": "evil3.png",
        "x/../../.png": "png.png",
        "a" * 300 + ".png": "a" * 196 + ".png",
    }
    for i, (raw, expected) in enumerate(names.items()):
        body = PNG + bytes([i])  # distinct content, distinct file
        r = await upload(t.admin, body, raw, "image/png")
        assert r.status_code == 201, (raw, r.text)
        assert r.json()["filename"] == expected, raw
        got = await t.admin.get(f"/api/v1/media/{r.json()['id']}")
        assert got.content == body
        assert "/" not in got.headers["content-disposition"].split("filename*=")[1]
    assert not list(outside.glob("evil*"))
    root = live.kernel.settings.media_dir
    assert all(p.parent.parent == root for p in stored_files(live))
    assert len(stored_files(live)) == len(names)


async def test_other_companies_get_404_and_global_admins_name_one(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    r = await upload(a.agent, PNG)
    mid = r.json()["id"]
    for who in (b.admin, b.supervisor, b.agent):
        for path in (f"/api/v1/media/{mid}", f"/api/v1/media/{mid}/meta"):
            assert_error(await who.get(path), 404, "ERR_NOT_FOUND")
    assert_error(await a.admin.get(f"/api/v1/media/{uuid.uuid4()}"), 404, "ERR_NOT_FOUND")
    # A member naming another company: 404, and nothing stored.
    before = await media_count(live)
    assert_error(await upload(a.admin, PDF, company_id=b.company_id), 404, "ERR_NOT_FOUND")
    assert await media_count(live) == before
    # Global admins must say which company, and may read any.
    assert live.root is not None
    assert_error(await upload(live.root, PDF), 400, "ERR_COMPANY_REQUIRED")
    assert_error(await upload(live.root, PDF, company_id=uuid.uuid4()), 404, "ERR_NOT_FOUND")
    r = await upload(live.root, PDF, "global.pdf", company_id=b.company_id)
    assert r.status_code == 201 and r.json()["company_id"] == str(b.company_id)
    assert r.json()["uploaded_by_id"] is not None
    assert (await b.admin.get(f"/api/v1/media/{r.json()['id']}")).content == PDF
    assert (await live.root.get(f"/api/v1/media/{mid}")).content == PNG
    assert_error(await a.admin.get(f"/api/v1/media/{r.json()['id']}"), 404, "ERR_NOT_FOUND")
    # Anonymous: 401.
    assert (await live.client().get(f"/api/v1/media/{mid}")).status_code == 401
    assert (
        await live.client().post("/api/v1/media", files={"file": ("a", PDF)})
    ).status_code == 401


async def test_agents_see_their_uploads_and_their_tickets_files(live: Live) -> None:
    t = await live.tenant()
    agent2 = t.clients["agent2"]  # Comercial; t.agent works Laboratório
    r = await upload(agent2, PDF, "orcamento.pdf")
    assert r.status_code == 201
    mid = r.json()["id"]
    assert (await agent2.get(f"/api/v1/media/{mid}")).content == PDF
    for who in (t.admin, t.supervisor):
        assert (await who.get(f"/api/v1/media/{mid}")).status_code == 200
    for path in (f"/api/v1/media/{mid}", f"/api/v1/media/{mid}/meta"):
        assert_error(await t.agent.get(path), 404, "ERR_NOT_FOUND")

    # Attached to a message of a Comercial ticket: still hidden from the Lab agent.
    sid = await seed.session(live, t.company_id)
    cid = await seed.client(live, t.company_id, "+5511987650002", "Cliente")
    sales_ticket = await seed.ticket(live, t.company_id, sid, cid, department_id=t.sales_id)
    await _attach(live, sales_ticket, uuid.UUID(mid))
    assert_error(await t.agent.get(f"/api/v1/media/{mid}"), 404, "ERR_NOT_FOUND")
    # Moved to the Lab (or assigned to them): now they see the ticket, so the file.
    async with live.kernel.tx() as db:
        ticket = await db.get(Ticket, sales_ticket)
        assert ticket is not None
        ticket.department_id = t.lab_id
    got = await t.agent.get(f"/api/v1/media/{mid}")
    assert got.status_code == 200 and got.content == PDF
    assert (await t.agent.get(f"/api/v1/media/{mid}/meta")).json()["id"] == mid
    async with live.kernel.tx() as db:
        ticket = await db.get(Ticket, sales_ticket)
        assert ticket is not None
        ticket.department_id, ticket.assignee_id = t.sales_id, t.users["agent"]
        ticket.status = TicketStatus.OPEN
    assert (await t.agent.get(f"/api/v1/media/{mid}")).status_code == 200


async def _attach(live: Live, ticket_id: uuid.UUID, media_id: uuid.UUID) -> None:
    async with live.kernel.tx() as db:
        t = await db.get(Ticket, ticket_id)
        assert t is not None and t.session_id is not None and t.chat_id is not None
        db.add(
            Message(
                company_id=t.company_id,
                session_id=t.session_id,
                chat_id=t.chat_id,
                ticket_id=t.id,
                direction=MessageDirection.OUTBOUND,
                type=MessageType.DOCUMENT,
                status=MessageStatus.QUEUED,
                media_id=media_id,
            )
        )


async def test_bad_uploads_are_refused_and_change_nothing(live: Live) -> None:
    t = await live.tenant()
    url = "/api/v1/media"
    # Not multipart at all.
    r = await t.admin.post(url, content=PNG, headers={"content-type": "image/png"})
    assert_error(r, 415, "ERR_UNSUPPORTED_MEDIA_TYPE")
    r = await t.admin.post(url, json={"file": "x"})
    assert_error(r, 415, "ERR_UNSUPPORTED_MEDIA_TYPE")
    # Multipart without the file, with extra fields, twice the file, empty, cut short.
    r = await t.admin.post(url, files={"other": ("a.png", PNG)})
    assert_error(r, 422, "ERR_VALIDATION")
    r = await t.admin.post(
        url, data={"company_id": str(t.company_id)}, files={"file": ("a.png", PNG)}
    )
    assert_error(r, 422, "ERR_VALIDATION")
    assert "query" in r.json()["message"]
    r = await t.admin.post(url, files=[("file", ("a.png", PNG)), ("file", ("b.png", PNG))])
    assert_error(r, 422, "ERR_VALIDATION")
    assert_error(await upload(t.admin, b"", "vazio.png"), 422, "ERR_VALIDATION")
    cut = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + PNG
    r = await t.admin.post(
        url, content=cut, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_error(r, 422, "ERR_VALIDATION")
    r = await t.admin.post(url, content=cut, headers={"content-type": "multipart/form-data"})
    assert_error(r, 422, "ERR_VALIDATION")
    r = await t.admin.post(
        url, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_error(r, 422, "ERR_VALIDATION")
    assert_error(await t.admin.get(f"{url}/not-a-uuid"), 422, "ERR_VALIDATION")
    assert await media_count(live) == 0
    assert stored_files(live) == []
    # A hand-written body with RFC 5987 names and a preamble parses.
    body = (
        b"preamble\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="x.png"; '
        b"filename*=UTF-8''%C3%A1gua.png\r\nContent-Type: image/png\r\n\r\n"
        + PNG
        + b"\r\n--XyZ--\r\nepilogue"
    )
    r = await t.admin.post(
        url, content=body, headers={"content-type": 'multipart/form-data; boundary="XyZ"'}
    )
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "água.png" and r.json()["size"] == len(PNG)
