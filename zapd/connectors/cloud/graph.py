"""The Graph API client of one Cloud API number, and what its errors mean.

Invariants:
- The access token travels only in the Authorization header: never in a URL, a log line
  or an exception message (`GraphError` carries Meta's code, title and details only).
- Every Graph failure becomes a `GraphError` whose `retryable` says whether the same
  request may succeed later: throughput (130429), pair rate (131056), Meta's documented
  transient codes, HTTP 5xx, timeouts and connection errors. Everything else (131047
  outside the 24-hour window, 190 bad token, 100 bad parameter...) is permanent.
- The client is reused for the life of a session (one connection pool) and closed with it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v26.0"
DEFAULT_THROUGHPUT = 80.0  # messages a second per number (Meta's default tier)

THROUGHPUT_LIMIT = 130429  # "Rate limit hit": over the number's messages/second
PAIR_RATE_LIMIT = 131056  # too many messages to the same user in a short time
WINDOW_CLOSED = 131047  # "Re-engagement message": more than 24 h since the user wrote
BAD_TOKEN = 190
# Codes Meta documents as temporary ("retry later") besides the two rate limits.
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004})


class GraphError(Exception):
    """A Graph API call failed; `code`/`title` are Meta's, `retryable` is ours."""

    def __init__(
        self,
        title: str,
        *,
        code: int | None = None,
        details: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.code = code
        self.title = title
        self.details = details
        self.status = status
        if retryable is None:
            retryable = code in RETRYABLE_CODES or (status is not None and status >= 500)
        self.retryable = retryable
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return "CODE title: details", the form kept on a failed message."""
        text = self.title
        if self.details and self.details not in text:
            text = f"{text}: {self.details}"
        return f"{self.code} {text}" if self.code is not None else text


def error_from(response: httpx.Response) -> GraphError:
    """Read Meta's `{"error": {...}}` body (or make one up from the HTTP status)."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return GraphError(
            f"HTTP {response.status_code} from the Graph API", status=response.status_code
        )
    code = err.get("code")
    found = err.get("error_data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    title = str(err.get("error_user_title") or err.get("message") or "Graph API error")
    title = _CODE_PREFIX.sub("", title)  # "(#131047) Re-engagement message": the code is kept apart
    return GraphError(
        title[:300],
        code=code if isinstance(code, int) else None,
        details=str(data["details"])[:1000] if data.get("details") else None,
        status=response.status_code,
    )


@dataclass(frozen=True)
class CloudSettings:
    """What a Cloud API session needs, secrets already decrypted (never logged, never shown)."""

    phone_number_id: str
    access_token: str
    business_account_id: str | None = None
    app_secret: str | None = None
    verify_token: str | None = None
    api_version: str = DEFAULT_API_VERSION
    base_url: str = DEFAULT_BASE_URL
    throughput_per_second: float = DEFAULT_THROUGHPUT
    pair_burst: int = 5  # messages to one user before pacing starts
    pair_interval: float = 6.0  # then one every this many seconds (Meta: ~1 per 6 s)
    in_doubt_hold: float = 300.0  # seconds a send in doubt waits for a status webhook

    def __repr__(self) -> str:  # the dataclass default would print the secrets
        return (
            f"CloudSettings(phone_number_id={self.phone_number_id!r}, base_url={self.base_url!r})"
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CloudSettings:
        """Build from a session's (decrypted) engine config."""

        def num(key: str, default: float) -> float:
            try:
                value = float(config.get(key, default))
            except (TypeError, ValueError):
                return default
            return value if value > 0 else default

        return cls(
            phone_number_id=str(config["phone_number_id"]),
            access_token=str(config["access_token"]),
            business_account_id=config.get("business_account_id"),
            app_secret=config.get("app_secret"),
            verify_token=config.get("verify_token"),
            api_version=config.get("api_version") or DEFAULT_API_VERSION,
            base_url=(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            throughput_per_second=num("throughput_per_second", DEFAULT_THROUGHPUT),
            pair_burst=int(num("pair_burst", 5)),
            pair_interval=num("pair_interval_seconds", 6.0),
            in_doubt_hold=_non_negative(config.get("in_doubt_hold_seconds"), 300.0),
        )


def _non_negative(value: Any, default: float) -> float:
    try:
        number = float(value if value is not None else default)
    except (TypeError, ValueError):
        return default
    return number if number >= 0 else default


class GraphClient:
    """Calls of one phone number (and its WABA) on the Graph API."""

    def __init__(self, settings: CloudSettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(
            base_url=f"{settings.base_url}/{settings.api_version}",
            headers={"Authorization": f"Bearer {settings.access_token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise GraphError("timed out talking to the Graph API", retryable=True) from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"cannot reach the Graph API ({type(exc).__name__})", retryable=True
            ) from None
        if response.status_code >= 400:
            raise error_from(response)
        try:
            doc = response.json()
        except ValueError:
            raise GraphError(
                "the Graph API answered something that is not JSON", retryable=True
            ) from None
        if not isinstance(doc, dict):
            raise GraphError("the Graph API answered an unexpected document", retryable=True)
        return doc

    async def phone_number(self) -> dict[str, Any]:
        """Return the number's display phone and verified name (checks the token)."""
        return await self._call(
            "GET",
            f"/{self.settings.phone_number_id}",
            params={"fields": "display_phone_number,verified_name,quality_rating"},
        )

    async def send(self, payload: dict[str, Any]) -> str:
        """POST a message; return its `wamid`."""
        doc = await self._call("POST", f"/{self.settings.phone_number_id}/messages", json=payload)
        messages = doc.get("messages")
        if not isinstance(messages, list) or not messages or "id" not in messages[0]:
            raise GraphError("the Graph API accepted the message without an id", retryable=False)
        return str(messages[0]["id"])

    async def upload(self, path: Path, mime: str, filename: str | None) -> str:
        """Upload a file for sending; return Meta's media id."""
        name = filename or path.name
        try:
            content = await anyio.Path(path).read_bytes()
        except OSError:
            raise GraphError("the media file to upload is missing", retryable=False) from None
        doc = await self._call(
            "POST",
            f"/{self.settings.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (name, content, mime)},
        )
        if "id" not in doc:
            raise GraphError("the Graph API stored the upload without an id", retryable=True)
        return str(doc["id"])

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """Return a received media's short-lived download URL, type, size and digest."""
        return await self._call(
            "GET", f"/{media_id}", params={"phone_number_id": self.settings.phone_number_id}
        )

    async def download(self, url: str, max_bytes: int) -> AsyncIterator[bytes]:
        """Stream a media file from its download URL (with the token), at most `max_bytes`."""
        got = 0
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from(response)
                async for chunk in response.aiter_bytes():
                    got += len(chunk)
                    if got > max_bytes:
                        raise GraphError(f"media larger than {max_bytes} bytes", retryable=False)
                    yield chunk
        except httpx.TimeoutException:
            raise GraphError("timed out downloading media", retryable=True) from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"cannot download media ({type(exc).__name__})", retryable=True
            ) from None

    async def templates(self, *, max_pages: int = 10) -> list[dict[str, Any]]:
        """Return the WABA's APPROVED message templates (name, language, category, components)."""
        waba = self.settings.business_account_id
        if not waba:
            raise GraphError("the session has no business_account_id (WABA id)", retryable=False)
        params: dict[str, Any] | None = {
            "status": "APPROVED",
            "limit": 100,
            "fields": "name,language,status,category,components",
        }
        path = f"/{waba}/message_templates"
        out: list[dict[str, Any]] = []
        for _ in range(max_pages):
            doc = await self._call("GET", path, params=params)
            data = doc.get("data")
            if isinstance(data, list):
                out.extend(
                    t
                    for t in data
                    if isinstance(t, dict) and t.get("status", "APPROVED") == "APPROVED"
                )
            after = ((doc.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (doc.get("paging") or {}).get("next"):
                break
            params = {**(params or {}), "after": after}
        return out
