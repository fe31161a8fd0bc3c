"""Delivery acks: map each engine's codes to MessageStatus and only ever move forward."""

from __future__ import annotations

from shared.enums import MessageStatus

# WhatsApp Web (wa-js / whatsapp-web.js) ack codes.
WEBJS_ACKS: dict[int, MessageStatus] = {
    -1: MessageStatus.FAILED,  # ACK_ERROR
    0: MessageStatus.QUEUED,  # ACK_PENDING
    1: MessageStatus.SENT,  # ACK_SERVER
    2: MessageStatus.DELIVERED,  # ACK_DEVICE
    3: MessageStatus.READ,  # ACK_READ
    4: MessageStatus.PLAYED,  # ACK_PLAYED (voice notes, videos)
}

# Meta WhatsApp Cloud API `statuses[].status` values.
CLOUD_ACKS: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.PLAYED,
    "failed": MessageStatus.FAILED,
}


def from_webjs(code: int) -> MessageStatus | None:
    """Map a WhatsApp Web ack code (None when unknown)."""
    return WEBJS_ACKS.get(code)


def from_cloud(status: str) -> MessageStatus | None:
    """Map a Cloud API status string (None when unknown)."""
    return CLOUD_ACKS.get(status.strip().lower())


def advance(current: MessageStatus, incoming: MessageStatus) -> MessageStatus | None:
    """Return the status to store after `incoming`, or None when it would move backwards."""
    return incoming if current.can_advance_to(incoming) else None


def fold_acks(current: MessageStatus, incoming: list[MessageStatus]) -> list[MessageStatus]:
    """Apply acks in arrival order; return the statuses actually taken, in order."""
    taken = []
    for status in incoming:
        nxt = advance(current, status)
        if nxt is not None:
            current = nxt
            taken.append(nxt)
    return taken
