"""Bound the nesting depth of JSON request bodies before anything parses or walks them.

Invariants:
- Runs inside `BodyLimitMiddleware`, so the body it buffers is already bounded in size
  (`max_body_bytes`; over it the client gets 413 before this reads further).
- Every HTTP request body that may be JSON (a JSON content type, or none given) on any
  route but the media upload is scanned without recursion: string literals are skipped,
  brackets counted. Deeper than `max_json_depth` answers 422 `ERR_VALIDATION` before the
  route, the JSON parser or the validators' recursive walks (the NUL check) see it.
- The scan never judges validity (the route's parser does); the body is replayed to the
  app byte for byte, so signed webhooks verify as sent.
"""

from __future__ import annotations

import json
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorCode
from zapd.api.errors import error_body

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_OPEN = frozenset(b"[{")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Tell whether the arrays/objects in a JSON text nest deeper than `limit`."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than it has openings (the usual case, C speed)
    depth = 0
    for m in _BRACKETS.finditer(_STRING.sub(b"", body)):
        if m.group()[0] in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif depth > 0:
            depth -= 1
    return False


def _may_be_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type")
    if content_type is None:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json") or kind == "text/plain"


class JsonDepthMiddleware:
    """Answer 422 to a JSON body nested deeper than `max_depth`, before the app runs."""

    def __init__(self, app: ASGIApp, max_depth: int, skip_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_depth = max_depth
        self.skip = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope.get("method") not in _METHODS_WITH_BODY
            or any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.skip)
            or not _may_be_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        tail: Message | None = None
        try:
            while True:
                message = await receive()  # BodyLimitMiddleware's: raises past the limit
                if message["type"] != "http.request":
                    tail = message  # the client left: hand that on as is
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except Exception as exc:
            # Too large (or a broken stream): let the app meet the same error where it
            # reads the body, so it answers exactly as it would without this guard.
            failure = exc

            async def failing() -> Message:
                raise failure

            await self.app(scope, failing, send)
            return
        body = b"".join(chunks)
        if json_depth_exceeds(body, self.max_depth):
            await _refuse(send, self.max_depth)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if tail is not None:
                    return tail
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    doc = error_body(
        ErrorCode.VALIDATION, f"the JSON body nests deeper than {limit} levels of arrays/objects"
    )
    payload = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
