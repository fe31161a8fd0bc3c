"""Media files: content-addressed storage, type detection, and who may read what.

Storage. A file lives at `<state_dir>/media/<sha256[:2]>/<sha256>`; the database row
(`Media`) holds its key, detected type, size, digest and the (sanitized) name it came
with. An upload streams into a temporary file in the media directory while its size
and SHA-256 are computed; once complete it is fsynced and renamed into place, so a
reader never sees half a file. The same content stored twice is one file on disk,
whatever the company or name (files are never deleted here; orphans are harmless).

Type. The content decides, never the name or the client's word alone: the first bytes
are matched against a small table of signatures (JPEG, PNG, GIF, WebP, HEIC/AVIF, TIFF,
PDF, Ogg, MP3, AAC, WAV, FLAC, AMR, MP4/QuickTime/3GP, WebM/Matroska, AVI, ZIP-based
Office/OpenDocument, OLE2 Office, RTF); content with no signature counts as text when
it is valid UTF-8 free of control characters. The name and declared type only pick
between types the content cannot tell apart (an OLE2 file is a .doc, .xls or .ppt; a
text file is text/plain or text/csv). The detected type must match the allow-list
(`media_allowed_types`), else 415. A name whose extension does not fit the detected
type gets the right one appended (`foto.png` holding a PDF is kept as `foto.png.pdf`).

Access. Any member of the company may upload; global admins name the company. Every
media row of a company is visible to its admins and supervisors; an agent sees a file
they uploaded, or one attached to a message of a ticket they can see (the ticket
visibility rule of `zapd.kernel.visibility`). Anything else answers 404.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import secrets
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.protocol.media import MAX_FILENAME_LENGTH
from zapd.config import ZapdSettings
from zapd.db.models import Company, Media, Message, Ticket
from zapd.errors import (
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from zapd.kernel import audit
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import get_owned
from zapd.kernel.visibility import ticket_clause

HEAD_BYTES = 8192  # what the signature table looks at
_WRITE_BUFFER = 256 * 1024  # bytes gathered before one write to disk
_STORAGE_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")


# --------------------------------------------------------------------------- types

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
ZIP = "application/zip"
OLE2 = "application/x-ole-storage"
OCTET = "application/octet-stream"

# type -> extensions a name of that type may end with (the first is added when missing).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/heic": (".heic",),
    "image/heif": (".heif",),
    "image/avif": (".avif",),
    "image/tiff": (".tif", ".tiff"),
    "audio/mpeg": (".mp3",),
    "audio/aac": (".aac",),
    "audio/ogg": (".ogg", ".opus", ".oga"),
    "audio/mp4": (".m4a", ".mp4", ".m4b"),
    "audio/wav": (".wav",),
    "audio/flac": (".flac",),
    "audio/amr": (".amr",),
    "video/mp4": (".mp4", ".m4v"),
    "video/quicktime": (".mov", ".qt"),
    "video/3gpp": (".3gp",),
    "video/3gpp2": (".3g2",),
    "video/webm": (".webm",),
    "video/x-matroska": (".mkv",),
    "video/x-msvideo": (".avi",),
    "video/ogg": (".ogv", ".ogg"),
    "application/pdf": (".pdf",),
    DOCX: (".docx",),
    XLSX: (".xlsx",),
    PPTX: (".pptx",),
    ODT: (".odt",),
    ODS: (".ods",),
    ODP: (".odp",),
    "application/msword": (".doc",),
    "application/vnd.ms-excel": (".xls",),
    "application/vnd.ms-powerpoint": (".ppt",),
    "application/rtf": (".rtf",),
    "text/plain": (
        ".txt",
        ".text",
        ".log",
        ".md",
        ".csv",
        ".tsv",
        ".json",
        ".xml",
        ".yaml",
        ".yml",
        ".ini",
        ".conf",
    ),
    "text/csv": (".csv",),
    ZIP: (".zip",),
}

_OLE2_BY_EXTENSION = {
    ".doc": "application/msword",
    ".dot": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".xlt": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pps": "application/vnd.ms-powerpoint",
}
_OPENDOCUMENT = {ODT, ODS, ODP}

# Bytes that never appear in a text file (NUL and C0 controls but TAB, LF, VT, FF, CR).
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _mp4_family(head: bytes) -> str:
    brand = head[8:12]
    if brand in (b"M4A ", b"M4B ", b"F4A ", b"F4B "):
        return "audio/mp4"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand.startswith(b"3g2"):
        return "video/3gpp2"
    if brand.startswith(b"3gp"):
        return "video/3gpp"
    if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"):
        return "image/heic"
    if brand in (b"mif1", b"msf1"):
        return "image/heif"
    if brand in (b"avif", b"avis"):
        return "image/avif"
    return "video/mp4"


def _mpeg_audio(head: bytes) -> str | None:
    """Tell a valid MP3 or ADTS AAC frame header (sync word 0xFFE / 0xFFF) from noise."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    if layer == 0:  # ADTS: MPEG-4/2 AAC
        if head[1] & 0xF6 != 0xF0 or (head[2] >> 2) & 0xF > 12:
            return None
        return "audio/aac"
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    if version == 1 or bitrate in (0, 0xF) or rate == 3:
        return None  # reserved values: not a frame header (e.g. a UTF-16 BOM)
    return "audio/mpeg"


def sniff(head: bytes) -> str | None:
    """Return the type the first bytes of a file announce, or None when none matches.

    ZIP and OLE2 containers come back as `application/zip` / `application/x-ole-storage`;
    `refine` looks inside (ZIP) or at the name (OLE2).
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return "image/webp"
        if kind == b"WAVE":
            return "audio/wav"
        if kind == b"AVI ":
            return "video/x-msvideo"
        return None
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "video/ogg" if b"\x80theora" in head[:128] else "audio/ogg"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _mp4_family(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE2
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    return _mpeg_audio(head)


def _zip_kind(path: Path) -> str:
    """Look inside a ZIP for the markers of Office Open XML and OpenDocument files."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size <= 100:
                    declared = zf.read(info).decode("ascii", "replace").strip()
                    if declared in _OPENDOCUMENT:
                        return declared
            if "[Content_Types].xml" in names:
                if "word/document.xml" in names:
                    return DOCX
                if "xl/workbook.xml" in names:
                    return XLSX
                if "ppt/presentation.xml" in names:
                    return PPTX
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        RuntimeError,
        LookupError,
        ValueError,
    ):
        pass  # not a readable ZIP: a plain (refused) application/zip
    return ZIP


def _extension(filename: str | None) -> str:
    if not filename:
        return ""
    return os.path.splitext(filename)[1].lower()


def refine(
    sniffed: str | None, path: Path, filename: str | None, declared: str | None, *, is_text: bool
) -> str:
    """Settle the final type from the signature, container contents, text check and name."""
    declared = (declared or "").split(";")[0].strip().lower()
    if sniffed == ZIP:
        return _zip_kind(path)
    if sniffed == OLE2:
        by_name = _OLE2_BY_EXTENSION.get(_extension(filename))
        if by_name is not None:
            return by_name
        return declared if declared in _OLE2_BY_EXTENSION.values() else OLE2
    if sniffed is not None:
        return sniffed
    if is_text:
        csv = _extension(filename) == ".csv" or declared == "text/csv"
        return "text/csv" if csv else "text/plain"
    return OCTET


def allowed(mime: str, patterns: Sequence[str]) -> bool:
    """Tell whether `mime` matches one of the allow-list's `type/subtype` or `type/*`."""
    major = mime.split("/")[0]
    return any(p == mime or p == f"{major}/*" for p in patterns)


# --------------------------------------------------------------------------- names

_UNSAFE_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')


def safe_filename(raw: str | None, mime: str) -> str:
    """Return a file name safe to store and to send back: no path, no controls, ≤ 200 chars.

    Only the last path component is kept (both / and \\ count), control and format
    characters (such as right-to-left overrides) and characters Windows refuses are
    removed or replaced, leading dots go, and the extension is made to fit `mime`.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = _UNSAFE_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if not name:
        name = "arquivo"
    exts = EXTENSIONS.get(mime, ())
    ext = os.path.splitext(name)[1].lower()
    if exts and ext not in exts:
        name += exts[0]
        ext = exts[0]
    elif not exts:
        ext = os.path.splitext(name)[1]
    if len(name) > MAX_FILENAME_LENGTH:
        ext = ext if len(ext) <= 16 else ""
        name = name[: MAX_FILENAME_LENGTH - len(ext)].rstrip() + ext
    return name


def content_disposition(filename: str) -> str:
    """Return an `attachment` Content-Disposition with an ASCII fallback and the UTF-8 name."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'["\\;\x00-\x1f\x7f]', "_", ascii_name).strip() or "arquivo"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class StoredFile:
    """A complete file in the store: its key, digest, size and detected type."""

    storage_key: str
    sha256: str
    size: int
    mime: str
    filename: str


class MediaStore:
    """The content-addressed file store under the state dir."""

    def __init__(self, root: Path, max_bytes: int, allowed_types: Sequence[str]) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.allowed_types = tuple(allowed_types)

    @classmethod
    def from_settings(cls, settings: ZapdSettings) -> MediaStore:
        """Return the store the settings describe."""
        return cls(settings.media_dir, settings.max_media_bytes, settings.media_allowed_types)

    def path_of(self, storage_key: str) -> Path:
        """Return the path of a stored file; a malformed key is a missing file."""
        if not _STORAGE_KEY.match(storage_key):
            raise NotFound("media content not found")
        return self.root / storage_key

    def sweep_partial_uploads(self) -> int:
        """Remove files of uploads a crash cut short (run at start, before serving)."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for leftover in self.root.glob(".upload-*.part"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
        return removed

    def upload(self) -> Upload:
        """Start receiving a file."""

        return Upload(self)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Upload:
    """One file streaming into the store: write chunks, then `finish` or `abort`."""

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        self._text = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._is_text = True
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._file: int | None = None
        self._tmp: Path | None = None

    async def _open(self) -> None:
        def open_tmp() -> tuple[int, Path]:
            self.store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.store.root / f".upload-{secrets.token_hex(12)}.part"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            return fd, tmp

        self._file, self._tmp = await anyio.to_thread.run_sync(open_tmp)

    async def _flush(self) -> None:
        if not self._pending:
            return
        if self._file is None:
            await self._open()
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        fd = self._file
        assert fd is not None

        def write_all() -> None:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]

        await anyio.to_thread.run_sync(write_all)

    async def write(self, chunk: bytes) -> None:
        """Take the next bytes of the file; over `max_media_bytes` is a 413."""
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self.store.max_bytes:
            raise PayloadTooLarge(f"the file is larger than the {self.store.max_bytes}-byte limit")
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._hash.update(chunk)
        if self._is_text:
            try:
                self._text.decode(chunk)
            except UnicodeDecodeError:
                self._is_text = False
            else:
                self._is_text = _NOT_TEXT.search(chunk) is None
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= _WRITE_BUFFER:
            await self._flush()

    async def finish(self, filename: str | None, declared: str | None) -> StoredFile:
        """Detect the type, refuse what is not allowed, and move the file into place."""
        if self.size == 0:
            raise ValidationFailed("the file is empty")
        await self._flush()
        if self._is_text:
            try:
                self._text.decode(b"", final=True)
            except UnicodeDecodeError:
                self._is_text = False
        assert self._file is not None and self._tmp is not None
        fd, tmp = self._file, self._tmp

        def sync_and_close() -> None:
            os.fsync(fd)
            os.close(fd)

        await anyio.to_thread.run_sync(sync_and_close)
        self._file = None
        mime = await anyio.to_thread.run_sync(
            lambda: refine(sniff(self.head), tmp, filename, declared, is_text=self._is_text)
        )
        if not allowed(mime, self.store.allowed_types):
            what = "unrecognised content" if mime == OCTET else mime
            raise UnsupportedMediaType(f"files of this type are not accepted ({what})")
        digest = self._hash.hexdigest()
        key = f"{digest[:2]}/{digest}"
        target = self.store.root / key
        size = self.size

        def move_into_place() -> None:
            target.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                same = target.stat().st_size == size
            except FileNotFoundError:
                same = False
            if same:  # already stored: one file on disk
                tmp.unlink()
                return
            os.replace(tmp, target)
            _fsync_dir(target.parent)

        await anyio.to_thread.run_sync(move_into_place)
        self._tmp = None
        return StoredFile(key, digest, size, mime, safe_filename(filename, mime))

    async def abort(self) -> None:
        """Drop whatever was written (safe to call at any point, even after `finish`)."""
        fd, tmp = self._file, self._tmp
        self._file = self._tmp = None
        self._pending = []

        def cleanup() -> None:
            if fd is not None:
                os.close(fd)
            if tmp is not None:
                tmp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(cleanup)


# --------------------------------------------------------------------------- rows


async def upload_company(db: AsyncSession, p: Principal, requested: uuid.UUID | None) -> uuid.UUID:
    """Return the company an upload goes to (any member; global admins name it), or 404."""
    company_id = p.company_for_write(requested)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    return company_id


async def register(
    db: AsyncSession,
    company_id: uuid.UUID,
    stored: StoredFile,
    *,
    uploaded_by_id: uuid.UUID | None,
) -> tuple[Media, bool]:
    """Return the media row for a stored file, and whether it is new.

    The same content with the same name from the same uploader is the same row;
    anything else gets a new row pointing at the same file.
    """
    uploader = (
        Media.uploaded_by_id.is_(None)
        if uploaded_by_id is None
        else Media.uploaded_by_id == uploaded_by_id
    )
    existing = await db.scalar(
        select(Media)
        .where(
            Media.company_id == company_id,
            Media.sha256 == stored.sha256,
            Media.filename == stored.filename,
            uploader,
        )
        .order_by(Media.id)
        .limit(1)
    )
    if existing is not None:
        return existing, False
    row = Media(
        company_id=company_id,
        storage_key=stored.storage_key,
        mime=stored.mime,
        size=stored.size,
        sha256=stored.sha256,
        filename=stored.filename,
        uploaded_by_id=uploaded_by_id,
    )
    db.add(row)
    await db.flush()
    return row, True


async def create(
    db: AsyncSession, actor: Actor, company_id: uuid.UUID, stored: StoredFile
) -> tuple[Media, bool]:
    """Record an upload by `actor` (audited when a new row is made)."""
    p = actor.principal
    if await db.get(Company, company_id) is None or not p.owns(company_id):
        raise NotFound("company not found")
    row, created = await register(db, company_id, stored, uploaded_by_id=p.user_id)
    if created:
        audit.record(
            db,
            actor,
            "media.create",
            "media",
            row.id,
            company_id=company_id,
            after=audit.snapshot(row),
        )
    return row, created


async def get(db: AsyncSession, p: Principal, media_id: uuid.UUID) -> Media:
    """Return a media row the caller may read, or 404."""
    row = await get_owned(db, p, Media, media_id, "media")
    if p.sees_all_departments():
        return row
    if p.user_id is not None and row.uploaded_by_id == p.user_id:
        return row
    stmt = (
        select(Message.id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.company_id == row.company_id, Message.media_id == row.id)
    )
    limit = ticket_clause(p)
    if limit is not None:
        stmt = stmt.where(limit)
    if await db.scalar(stmt.limit(1)) is None:
        raise NotFound("media not found")
    return row
