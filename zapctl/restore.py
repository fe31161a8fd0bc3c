"""`zapctl restore FILE`: put a `zapctl backup` archive back into a state dir.

Invariants: a running zapd's state is never overwritten — restore takes the daemon's
own lock (an exclusive `flock` on `<state>/zapd.lock`, held by zapd for its whole life)
without waiting, refuses when it is taken, and holds it until done so no zapd starts
mid-restore. An existing database or JWT secret is replaced only with `--force`. Only
the archive's known members are read (manifest.json, zap.db or zap.pgdump, jwt.secret,
media/xx/<sha256>), never a path outside the state dir; files are written owner-only
(0600) to a temporary name and renamed into place, so a failed restore leaves the old
files. SQLite archives restore into the state dir; PostgreSQL ones (zap.pgdump) go to
`--db` through `pg_restore --clean --if-exists --no-owner`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.maintenance import BACKUP_FORMAT, BACKUP_SUFFIXES, run_pg_tool
from zapctl.offline import resolve_db
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import emit

LOCK_FILENAME = "zapd.lock"  # zapd.startup.LOCK_FILENAME (the daemon's state lock)
_MEDIA = re.compile(r"^media/[0-9a-f]{2}/[0-9a-f]{64}$")
_DATABASES = {"zap.db": "sqlite", "zap.pgdump": "postgresql"}


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold zapd's lock on `state_dir`, or refuse at once when a zapd holds it."""
    path = state_dir / LOCK_FILENAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise CliError(f"cannot lock {path}: {exc.strerror}") from None
            raise CliError(
                f"zapd is running on {state_dir} (it holds {path}): stop it first "
                "(systemctl stop zapd), then restore"
            ) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _write_private(src: IO[bytes], dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.restoring")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dst)


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    out: dict[str, tarfile.TarInfo] = {}
    for info in tar.getmembers():
        name = info.name
        known = name in ("manifest.json", "jwt.secret") or name in _DATABASES
        if not info.isfile() or not (known or _MEDIA.match(name)):
            raise CliError(f"not a zap backup: unexpected member {name[:80]!r}")
        out[name] = info
    return out


def _pg_restore(dump: Path, url: str) -> None:
    run_pg_tool(
        "pg_restore",
        url,
        lambda dsn: [
            *("--clean", "--if-exists", "--no-owner", "--no-privileges"),
            f"--dbname={dsn}",
            str(dump),
        ],
        "to restore a PostgreSQL database",
    )


def restore(
    ctx: typer.Context,
    archive: Annotated[
        Path, typer.Argument(help="A .tar.gz written by `zapctl backup`.", dir_okay=False)
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing database and secret.")
    ] = False,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Restore a backup into the state dir (zapd must be stopped).

    Refuses while a zapd runs on the state dir, and refuses to replace an existing
    database without --force. A PostgreSQL backup is restored into --db with pg_restore.

    Examples:

      systemctl stop zapd && zapctl restore /srv/backups/zap-2026-12-06.tar.gz --force

      zapctl restore zap.tar.gz --state-dir /tmp/zap-copy
    """
    from zapd.offline import JWT_SECRET_FILENAME, MEDIA_DIRNAME, sqlite_path

    if not archive.name.endswith(BACKUP_SUFFIXES):
        raise CliError(f"{archive.name}: a zap backup is a *.tar.gz", ExitCode.USAGE)
    if not archive.is_file():
        raise CliError(f"no such file: {archive}", ExitCode.NOT_FOUND)
    sdir, url = resolve_db(state_dir, db)
    try:
        tar = tarfile.open(archive, mode="r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        raise CliError(f"{archive}: not a gzip'd tar ({exc})") from None
    with tar:
        members = _members(tar)
        try:
            raw = tar.extractfile(members["manifest.json"])
            manifest: dict[str, Any] = json.load(raw) if raw else {}
        except (KeyError, ValueError):
            raise CliError(f"{archive}: not a zap backup (no readable manifest.json)") from None
        if manifest.get("format") != BACKUP_FORMAT:
            raise CliError(f"{archive}: unknown backup format {manifest.get('format')!r}")
        db_names = [n for n in members if n in _DATABASES]
        if len(db_names) != 1:
            raise CliError(f"{archive}: not a zap backup (no database inside)")
        db_name = db_names[0]
        target_db = sqlite_path(url)
        if _DATABASES[db_name] == "sqlite" and target_db is None:
            raise CliError("this backup holds a SQLite database: restore it without --db")
        if _DATABASES[db_name] == "postgresql" and target_db is not None:
            raise CliError("this backup holds a PostgreSQL dump: name the database with --db")
        sdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with state_lock(sdir):
            secret = sdir / JWT_SECRET_FILENAME
            existing = [p for p in (target_db, secret) if p is not None and p.exists()]
            if existing and not force:
                raise CliError(
                    f"{existing[0]} exists: restoring replaces it (use --force, zapd stopped)"
                )
            restored: list[str] = []
            src = tar.extractfile(members[db_name])
            assert src is not None
            if target_db is not None:
                _write_private(src, target_db)
                for suffix in ("-wal", "-shm"):  # the old database's journal is not ours
                    with contextlib.suppress(FileNotFoundError):
                        target_db.with_name(target_db.name + suffix).unlink()
            else:
                dump = sdir / ".restore.pgdump"
                _write_private(src, dump)
                try:
                    _pg_restore(dump, url)
                finally:
                    dump.unlink(missing_ok=True)
            restored.append(db_name)
            if "jwt.secret" in members:
                got = tar.extractfile(members["jwt.secret"])
                assert got is not None
                _write_private(got, secret)
                restored.append("jwt.secret")
            media = [n for n in members if n.startswith("media/")]
            for name in media:
                dst = sdir / MEDIA_DIRNAME / name.removeprefix("media/")
                dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                got = tar.extractfile(members[name])
                assert got is not None
                _write_private(got, dst)
            if media:
                restored.append(f"media/ ({len(media)} files)")
    emit(
        ctx,
        {
            "state_dir": str(sdir),
            "database": _DATABASES[db_name],
            "restored": restored,
            "media_files": len(media),
            "backup_created_at": manifest.get("created_at"),
        },
        f"restored {archive} into {sdir}: {', '.join(restored)}",
    )
