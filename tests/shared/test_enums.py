"""Pin every stored enum value: these numbers are in databases and on the wire."""

from __future__ import annotations

from enum import IntEnum

import pytest

from shared import enums
from shared.enums import MessageStatus

PINNED: dict[type[IntEnum], dict[str, int]] = {
    enums.SessionStatus: {
        "CONNECTED": 0,
        "DISCONNECTED": 1,
        "WAITING_QR": 2,
        "AUTHENTICATING": 3,
        "SYNCING": 4,
        "ERROR": 5,
    },
    enums.Engine: {"SANDBOX": 0, "WEBJS": 1, "CLOUD": 2},
    enums.MessageDirection: {"INBOUND": 0, "OUTBOUND": 1},
    enums.MessageType: {
        "TEXT": 0,
        "IMAGE": 1,
        "AUDIO": 2,
        "VIDEO": 3,
        "DOCUMENT": 4,
        "STICKER": 5,
        "LOCATION": 6,
        "CONTACT": 7,
        "REACTION": 8,
        "SYSTEM": 9,
        "UNKNOWN": 10,
    },
    enums.MessageStatus: {
        "QUEUED": 0,
        "SENT": 1,
        "DELIVERED": 2,
        "READ": 3,
        "PLAYED": 4,
        "FAILED": 5,
        "RECEIVED": 6,
    },
    enums.TicketStatus: {"PENDING": 0, "OPEN": 1, "CLOSED": 2},
    enums.FlowState: {
        "NEW": 0,
        "AWAITING_MENU_CHOICE": 1,
        "AWAITING_ROUTING_CONFIRMATION": 2,
        "ROUTED": 3,
        "DONE": 4,
    },
    enums.Role: {"ADMIN": 0, "SUPERVISOR": 1, "AGENT": 2},
    enums.Presence: {"OFFLINE": 0, "ONLINE": 1, "AWAY": 2, "BUSY": 3},
    enums.Priority: {"LOW": 0, "NORMAL": 1, "HIGH": 2, "URGENT": 3},
    enums.LogLevel: {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40},
    enums.OutboxState: {"PENDING": 0, "SENDING": 1, "SENT": 2, "DEAD": 3, "CANCELLED": 4},
    enums.ChatType: {"DIRECT": 0, "GROUP": 1, "BROADCAST": 2, "NEWSLETTER": 3},
    enums.ClientIdentityKind: {"PHONE": 0, "LID": 1, "PHONE_ALT": 2, "BSUID": 3},
    enums.WebhookEventState: {"PENDING": 0, "PROCESSED": 1, "FAILED": 2, "IGNORED": 3},
    enums.AutoAssignMode: {"OFF": 0, "ROUND_ROBIN": 1, "LEAST_LOADED": 2},
}


def test_every_enum_is_pinned() -> None:
    defined = {
        obj
        for obj in vars(enums).values()
        if isinstance(obj, type) and issubclass(obj, IntEnum) and obj is not IntEnum
    }
    assert defined == set(PINNED), "a new enum must be added to PINNED with its values"


@pytest.mark.parametrize("enum_cls", list(PINNED), ids=lambda c: c.__name__)
def test_values_never_change(enum_cls: type[IntEnum]) -> None:
    assert {m.name: m.value for m in enum_cls} == PINNED[enum_cls]


def test_status_moves_only_forward() -> None:
    order = [
        MessageStatus.QUEUED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.PLAYED,
    ]
    for i, old in enumerate(order):
        for j, new in enumerate(order):
            assert old.can_advance_to(new) is (j > i)


def test_failed_is_terminal_and_only_before_delivery() -> None:
    assert MessageStatus.QUEUED.can_advance_to(MessageStatus.FAILED)
    assert MessageStatus.SENT.can_advance_to(MessageStatus.FAILED)
    assert not MessageStatus.DELIVERED.can_advance_to(MessageStatus.FAILED)
    for s in MessageStatus:
        assert not MessageStatus.FAILED.can_advance_to(s)
        assert not MessageStatus.RECEIVED.can_advance_to(s)
