"""Daemon URLs as people type them, in one canonical spelling.

Invariant: `normalize_url(a) == normalize_url(b)` exactly when `a` and `b` name the same
daemon endpoint as typed (`127.0.0.1:8765`, `http://127.0.0.1:8765/`, `HTTP://127.0.0.1:8765`
are one). zapctl keys stored logins by it; the client uses it as its base URL. Light: the
standard library only, so a command can normalise without importing the HTTP client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8765"


def normalize_url(url: str) -> str:
    """Return the canonical spelling of a daemon URL: scheme, lower-case host, no slash.

    A missing scheme means http (what people type is `127.0.0.1:8765`); the default port
    of the scheme is dropped (`http://h:80` is `http://h`); a path is kept without its
    trailing slash (a daemon behind a reverse proxy may live under one).
    """
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"


def is_loopback(url: str) -> bool:
    """Tell whether `url` names this machine (then no proxy may sit in between)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
