"""The pinned wa-js bundle: where it is, which version, and whether it is the pinned file.

Invariants: the pin (package, version, file, sha256) lives only in `wajs-pin.ini` beside
this module, which `./dev setup` reads too. zapd never fetches anything: it uses the file
named by `ZAP_WAJS_PATH`, else the set-up's cache `<repo>/.cache/wa-js/<version>/`, and
refuses a file whose sha256 is not the pinned one.
"""

from __future__ import annotations

import configparser
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PIN_FILE = Path(__file__).with_name("wajs-pin.ini")
REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".cache" / "wa-js"


@dataclass(frozen=True)
class Pin:
    """The pinned wa-js release."""

    package: str
    version: str
    file: str
    sha256: str


@cache
def pin() -> Pin:
    """Return the pin read from wajs-pin.ini."""
    parser = configparser.ConfigParser()
    parser.read(PIN_FILE, encoding="utf-8")
    section = parser["wa-js"]
    return Pin(section["package"], section["version"], section["file"], section["sha256"].lower())


class BundleError(Exception):
    """The wa-js bundle is missing or is not the pinned file."""


@dataclass(frozen=True)
class Bundle:
    """A verified wa-js bundle on disk."""

    path: Path
    version: str
    sha256: str

    def source(self) -> str:
        """Return the script text to inject."""
        return self.path.read_text(encoding="utf-8")


def default_path() -> Path:
    """Return where ./dev setup keeps the pinned bundle."""
    p = pin()
    return CACHE_DIR / p.version / Path(p.file).name


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(explicit: Path | None = None) -> Bundle:
    """Return the verified bundle (`explicit` = ZAP_WAJS_PATH), or raise BundleError."""
    p = pin()
    path = explicit or default_path()
    if not path.is_file():
        where = "ZAP_WAJS_PATH" if explicit else "the set-up cache"
        raise BundleError(f"wa-js {p.version} not found at {path} ({where}; run ./dev setup)")
    got = sha256_of(path)
    if got != p.sha256:
        raise BundleError(
            f"{path} has sha256 {got[:12]}…, the pin wants wa-js {p.version} {p.sha256[:12]}…"
        )
    return Bundle(path=path, version=p.version, sha256=got)
