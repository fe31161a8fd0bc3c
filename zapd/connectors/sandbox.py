"""The sandbox engine: an in-process simulated WhatsApp network for the demo and tests.

Always labelled as a sandbox. A session links when its QR is "scanned" (`scan`), or
when the simulated phone types the pairing code it asked for (`enter_code`); simulated
customers write through `customer_says`, outbound messages reach the
customer's inbox and get acks after realistic (configurable) delays, and failures can
be injected: refused sends (transient or permanent), disconnects, reordered acks.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.enums import Engine, MessageStatus, MessageType, SessionStatus
from shared.phone import e164_to_jid, jid_to_e164, normalize_phone
from zapd.connectors.base import (
    EventSink,
    OutboundMessage,
    PairingCode,
    PairingError,
    SendError,
)
from zapd.connectors.events import AckEvent, MessageEvent, QrEvent, StatusEvent

SANDBOX_LABEL = "SANDBOX (simulated WhatsApp)"
QR_TTL = timedelta(seconds=20)
PAIRING_TTL = timedelta(minutes=3)
# WhatsApp's pairing codes: eight characters, no 0/O/I/U look-alikes.
PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AckTiming:
    """Delays (seconds) before each ack; `shuffle` delivers them in random order."""

    sent: float = 0.05
    delivered: float = 0.3
    read: float = 1.5
    jitter: float = 0.2
    shuffle: bool = False


@dataclass
class Delivered:
    """A message as the simulated customer's phone received it."""

    wa_message_id: str
    body: str | None
    type: MessageType
    at: datetime


@dataclass
class SandboxSession:
    """The network's view of one linked number."""

    session_id: uuid.UUID
    phone: str | None = None
    linked: bool = False
    connected: bool = False
    qr: str | None = None
    inbox: dict[str, list[Delivered]] = field(default_factory=dict)  # customer E.164 → msgs
    fail_sends: list[bool] = field(default_factory=list)  # queued failures: transient?
    # Client-chosen ids, as WhatsApp Web has them: a send repeated with the same
    # idempotency key answers the first send's id and delivers nothing again.
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key → wa id
    pairing: PairingCode | None = None  # the code the session last asked for
    connector: SandboxConnector | None = None
    # Cleared while the engine hangs (see `stall`): pings wait for it.
    answering: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))


class SandboxNetwork:
    """The simulated WhatsApp: numbers, customers' phones, delivery."""

    def __init__(self, timing: AckTiming | None = None, seed: int | None = None) -> None:
        self.timing = timing or AckTiming()
        self.sessions: dict[uuid.UUID, SandboxSession] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._phones = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.lids: dict[str, str] = {}  # "…@lid" → E.164 of the customer behind it

    def session(self, session_id: uuid.UUID) -> SandboxSession:
        """Return (creating) the network's record of a session."""
        return self.sessions.setdefault(session_id, SandboxSession(session_id))

    def new_message_id(self) -> str:
        """Return a WhatsApp-like message id, unique in this network."""
        return f"SBX{next(self._ids):08d}{secrets.token_hex(4).upper()}"

    # ------------------------------------------------------------------ linking

    async def scan(self, session_id: uuid.UUID, phone: str | None = None) -> str:
        """Simulate a phone scanning the session's current QR; return the linked E.164."""
        s = self.session(session_id)
        if s.connector is None or s.qr is None:
            raise SendError("no QR to scan: start the session first", transient=False)
        s.phone = normalize_phone(phone) if phone else f"+551130{next(self._phones):06d}"
        s.linked = True
        await s.connector._linked()
        return s.phone

    async def enter_code(self, session_id: uuid.UUID, code: str) -> str:
        """Simulate the phone's owner typing a pairing code; return the linked E.164."""
        s = self.session(session_id)
        pairing = s.pairing
        if s.connector is None or s.linked or pairing is None:
            raise PairingError("no pairing code to enter: ask for one first (session pair)")
        typed = "".join(ch for ch in code.upper() if ch.isalnum())
        if _now() >= pairing.expires_at:
            s.pairing = None
            raise PairingError("the pairing code expired: ask for a new one")
        if not secrets.compare_digest(typed, pairing.code):
            raise PairingError("wrong pairing code")
        s.pairing = None
        s.phone = pairing.phone
        s.linked = True
        await s.connector._linked()
        return pairing.phone

    # ------------------------------------------------------------------ customers

    async def customer_says(
        self,
        session_id: uuid.UUID,
        phone: str,
        text: str,
        *,
        name: str | None = None,
        wa_message_id: str | None = None,
        lid: str | None = None,
    ) -> MessageEvent:
        """Deliver a customer's text to the session (as WhatsApp would)."""
        s = self.session(session_id)
        if s.connector is None or not s.connected:
            raise SendError("sandbox session is not connected", transient=True)
        e164 = normalize_phone(phone)
        jid = e164_to_jid(e164)
        if lid:
            self.lids[lid] = e164
        now = _now()
        event = MessageEvent(
            session_id=session_id,
            at=now,
            wa_message_id=wa_message_id or self.new_message_id(),
            chat_jid=lid or jid,
            sender_jid=lid or jid,
            sender_lid=lid,
            sender_phone=e164 if lid else None,
            push_name=name,
            body=text,
            timestamp=now,
        )
        await s.connector.sink(event)
        return event

    def inbox(self, session_id: uuid.UUID, phone: str) -> list[Delivered]:
        """Return what a customer's phone received from the session."""
        return list(self.session(session_id).inbox.get(normalize_phone(phone), []))

    # ------------------------------------------------------------------ failures

    def fail_next_sends(self, session_id: uuid.UUID, count: int, *, transient: bool) -> None:
        """Make the next `count` sends of a session fail."""
        self.session(session_id).fail_sends.extend([transient] * count)

    def stall(self, session_id: uuid.UUID, stalled: bool = True) -> None:
        """Make a session's engine hang (pings go unanswered) or answer again."""
        answering = self.session(session_id).answering
        if stalled:
            answering.clear()
        else:
            answering.set()

    async def drop_connection(self, session_id: uuid.UUID, reason: str = "network lost") -> None:
        """Simulate a lost connection (the session stays linked; start reconnects)."""
        s = self.session(session_id)
        if s.connector is not None:
            await s.connector._disconnected(reason)

    # ------------------------------------------------------------------ delivery

    def _deliver(self, s: SandboxSession, msg: OutboundMessage, wa_id: str) -> None:
        # A chat known by LID is delivered to the phone behind it (learned when the
        # customer wrote), as WhatsApp does.
        to = self.lids.get(msg.to_jid) or jid_to_e164(msg.to_jid)
        s.inbox.setdefault(to, []).append(Delivered(wa_id, msg.body, msg.type, _now()))
        assert s.connector is not None
        self._spawn(self._acks(s.connector, wa_id))

    async def _acks(self, conn: SandboxConnector, wa_id: str) -> None:
        t = self.timing
        plan = [
            (t.sent, MessageStatus.SENT),
            (t.delivered, MessageStatus.DELIVERED),
            (t.read, MessageStatus.READ),
        ]
        if t.shuffle:
            self._rng.shuffle(plan)
            plan = [(i * t.jitter + 0.01, status) for i, (_, status) in enumerate(plan)]
        start = asyncio.get_running_loop().time()
        for delay, status in plan:
            wait = (
                delay + self._rng.uniform(0, t.jitter) - (asyncio.get_running_loop().time() - start)
            )
            if wait > 0:
                await asyncio.sleep(wait)
            if not conn.connected:
                return
            await conn.sink(
                AckEvent(session_id=conn.session_id, at=_now(), wa_message_id=wa_id, status=status)
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel pending deliveries (daemon shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class SandboxConnector:
    """A session on the sandbox network."""

    engine = Engine.SANDBOX

    def __init__(self, session_id: uuid.UUID, network: SandboxNetwork, sink: EventSink) -> None:
        self.session_id = session_id
        self.network = network
        self.sink = sink
        self.connected = False
        self._qr_task: asyncio.Task[None] | None = None

    @property
    def _state(self) -> SandboxSession:
        return self.network.session(self.session_id)

    async def _status(self, status: SessionStatus, reason: str | None = None) -> None:
        await self.sink(
            StatusEvent(
                session_id=self.session_id,
                at=_now(),
                status=status,
                reason=reason,
                phone=self._state.phone,
            )
        )

    async def start(self) -> None:
        """Connect: resume if linked, else emit rotating QR codes until scanned."""
        s = self._state
        s.connector = self
        if s.linked:
            await self._status(SessionStatus.AUTHENTICATING)
            await self._connected()
            return
        await self._status(SessionStatus.WAITING_QR, SANDBOX_LABEL)
        self._qr_task = asyncio.create_task(self._rotate_qr())

    async def _rotate_qr(self) -> None:
        while not self._state.linked:
            qr = f"zap-sandbox:{self.session_id}:{secrets.token_urlsafe(16)}"
            self._state.qr = qr
            now = _now()
            await self.sink(
                QrEvent(session_id=self.session_id, at=now, qr=qr, expires_at=now + QR_TTL)
            )
            await asyncio.sleep(QR_TTL.total_seconds())

    async def request_pairing_code(self, phone: str) -> PairingCode:
        """Give a code for `phone` to type, while the session waits to be linked."""
        s = self._state
        if s.linked or self._qr_task is None:
            raise PairingError("the session is not waiting to be linked")
        try:
            e164 = normalize_phone(phone)
        except ValueError as exc:
            raise PairingError(f"invalid phone number {phone!r}: {exc}") from None
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
        s.pairing = PairingCode(code=code, phone=e164, expires_at=_now() + PAIRING_TTL)
        return s.pairing

    async def _linked(self) -> None:
        if self._qr_task is not None:
            self._qr_task.cancel()
            self._qr_task = None
        self._state.qr = None
        self._state.pairing = None
        await self._status(SessionStatus.AUTHENTICATING)
        await self._status(SessionStatus.SYNCING)
        await self._connected()

    async def _connected(self) -> None:
        self.connected = True
        self._state.connected = True
        await self._status(SessionStatus.CONNECTED, SANDBOX_LABEL)

    async def _disconnected(self, reason: str) -> None:
        self.connected = False
        self._state.connected = False
        await self._status(SessionStatus.DISCONNECTED, reason)

    async def ping(self) -> SessionStatus:
        """Answer a heartbeat with the session's state (never, while the engine is stalled)."""
        await self._state.answering.wait()
        if self.connected:
            return SessionStatus.CONNECTED
        return SessionStatus.WAITING_QR if self._qr_task is not None else SessionStatus.DISCONNECTED

    async def stop(self) -> None:
        """Disconnect, staying linked (a session waiting for its QR stops waiting, said so)."""
        waiting = self._qr_task is not None
        if self._qr_task is not None:
            self._qr_task.cancel()
            self._qr_task = None
            self._state.qr = None
            self._state.pairing = None
        if self.connected or waiting:
            await self._disconnected("stopped")

    async def logout(self) -> None:
        """Unlink the number."""
        await self.stop()
        s = self._state
        s.linked = False
        s.phone = None
        await self._status(SessionStatus.DISCONNECTED, "logged out")

    async def send(self, message: OutboundMessage) -> str:
        """Deliver to the simulated customer; acks follow on their own.

        A repeated `idempotency_key` returns the id of the send that key already made,
        delivering nothing twice (a resend after a crash between accept and commit).
        """
        s = self._state
        if not self.connected:
            raise SendError("sandbox session is not connected", transient=True)
        key = message.idempotency_key
        if key is not None and key in s.accepted:
            return s.accepted[key]
        if s.fail_sends:
            transient = s.fail_sends.pop(0)
            raise SendError("injected sandbox failure", transient=transient)
        wa_id = self.network.new_message_id()
        self.network._deliver(s, message, wa_id)
        if key is not None:
            s.accepted[key] = wa_id
        return wa_id
