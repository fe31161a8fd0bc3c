"""Every wa-js name the webjs engine relies on (bridge.js uses exactly these).

The surface-check test loads the pinned bundle into real Chromium and asserts each
function exists on `window.WPP`; the contract fake implements the same list. When the
pin moves, that test names what broke.
"""

from __future__ import annotations

FUNCTIONS: tuple[str, ...] = (
    "on",
    "conn.isRegistered",
    "conn.isAuthenticated",
    "conn.isMainReady",
    "conn.isOnline",
    "conn.getMyUserWid",
    "conn.getAuthCode",
    "conn.logout",
    "conn.startLinkDeviceCodeForPhoneNumber",
    "chat.sendTextMessage",
    "chat.sendFileMessage",
    "chat.getMessageById",
    "chat.getMessages",
    "chat.getQuotedMsgKey",
    "chat.list",
    "chat.downloadMedia",
    "contact.getPnLidEntry",
    "contact.subscribePresence",
)

EVENTS: tuple[str, ...] = (
    "conn.auth_code_change",
    "conn.qrcode_idle",
    "conn.authenticated",
    "conn.main_ready",
    "conn.logout",
    "conn.require_auth",
    "conn.online",
    "conn.link_code_change",
    "chat.new_message",
    "chat.msg_ack_change",
    "chat.presence_change",
)
