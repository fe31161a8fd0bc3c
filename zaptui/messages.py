"""The messages zaptui's screens and widgets post up (Textual messages, as dataclasses).

Invariant: data flows down as attributes and method calls (app -> screen -> widget);
news flows up as these messages. Widget-local messages (a row opened, a line selected)
live beside their widget; the ones here cross a screen boundary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from textual.message import Message

from shared.client import ZapClient
from shared.protocol.auth import Me


@dataclass
class LoggedIn(Message):
    """The login screen got a working login."""

    client: ZapClient
    me: Me


@dataclass
class LoginExpired(Message):
    """The login stopped working (refresh refused): back to the login screen."""

    reason: str


@dataclass
class SendRequested(Message):
    """The agent sent text (or a note, or a file) on a ticket."""

    ticket_id: uuid.UUID
    body: str | None
    note: bool = False
    media_path: str | None = None


@dataclass
class TypingChanged(Message):
    """The agent started or stopped typing on a ticket."""

    ticket_id: uuid.UUID
    typing: bool


@dataclass
class ConnectionChanged(Message):
    """zapd became reachable or unreachable."""

    online: bool
