"""Reading and discarding the rest of a refused request body, so the refusal is heard.

A server that answers before reading the body and then closes the connection leaves
unread bytes in its socket; the kernel then answers the client with a reset, and a
client still sending (an upload over the limit) loses the answer and reports a dead
daemon. Answering 413 therefore sends the complete error document first, then reads
what the client is still sending (discarding it, never buffering), then ends the
response and closes: the client's kernel gets an orderly close and the client reads
the 413.

Invariants: draining never holds more than one received chunk in memory; it stops at
`DRAIN_MAX_BYTES`, after `DRAIN_SECONDS`, or when nothing arrives for `DRAIN_IDLE_SECONDS`
(a client that announced a body it is not sending), whichever comes first — then the
close may still reset, and a client sending without end gets no better; it ends on the
client's disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive

DRAIN_MAX_BYTES = 64 << 20
DRAIN_SECONDS = 15.0
DRAIN_IDLE_SECONDS = 1.0


async def drain_request_body(
    receive: Receive,
    *,
    max_bytes: int = DRAIN_MAX_BYTES,
    seconds: float = DRAIN_SECONDS,
    idle_seconds: float = DRAIN_IDLE_SECONDS,
) -> bool:
    """Read and discard the request body; tell whether it was read to its end."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = await asyncio.wait_for(receive(), idle_seconds)
                if message["type"] != "http.request":
                    return False  # the client went away
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
                if drained > max_bytes:
                    return False
    return False
