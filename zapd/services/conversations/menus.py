"""The greeting flow's questions as WhatsApp interactive messages, where the engine has them.

Invariants:
- Every reply keeps its full plain text (the message body, what history and other
  engines show); the interactive form rides along in `message.extra["interactive"]`.
- The department menu becomes a list message (one row per department, row id = the
  menu number the flow understands) only when it fits Meta's limits (≤ 10 rows, titles
  ≤ 24 characters...); otherwise it goes as text, exactly as on other engines.
- The returning-client question becomes two reply buttons whose ids are "1" and "2",
  the answers the flow already reads as yes and no.
"""

from __future__ import annotations

import re
from typing import Any

from shared.enums import FlowState
from zapd.connectors.cloud.payloads import buttons_fit, list_fits
from zapd.domain.flow import Flow, Step

_OPTION_LINE = re.compile(r"^\W*\d+\W*\s*[-–:.)]\s*\S.*$")


def menu_list(flow: Flow, text: str) -> dict[str, Any] | None:
    """Return the list form of a reply that ends with the department menu, if it fits."""
    menu_text = flow.menu_text()
    if not text.endswith(menu_text):
        return None
    intro = text[: -len(menu_text)].strip()
    header = flow.texts.render("menu_header")
    body = f"{intro}\n\n{header}" if intro else header
    rows = [
        {"id": str(number), "title": d.name.strip()}
        for number, d in enumerate(flow.config.menu(), start=1)
    ]
    button = flow.texts.render("menu_button")
    if not list_fits(body, button, rows):
        return None
    return {"list": {"body": body, "button": button, "rows": rows}}


def yes_no_buttons(flow: Flow, text: str) -> dict[str, Any] | None:
    """Return the reply-buttons form of a yes/no question, if it fits."""
    lines = text.rstrip().splitlines()
    while lines and _OPTION_LINE.match(lines[-1].strip()):
        lines.pop()  # "*1* - Sim" / "*2* - Não": the buttons say it
    body = "\n".join(lines).strip() or text
    buttons = [
        {"id": "1", "title": flow.texts.render("button_yes")},
        {"id": "2", "title": flow.texts.render("button_no")},
    ]
    if not buttons_fit(body, buttons):
        return None
    return {"buttons": {"body": body, "buttons": buttons}}


def menu_messages(
    flow: Flow, step: Step, *, native: bool
) -> list[tuple[str, dict[str, Any] | None]]:
    """Return the step's replies, each with its interactive form when `native` allows one."""
    out: list[tuple[str, dict[str, Any] | None]] = [(text, None) for text in step.replies]
    if not native or not out:
        return out
    last = step.replies[-1]
    interactive: dict[str, Any] | None = None
    if step.state == FlowState.AWAITING_MENU_CHOICE:
        interactive = menu_list(flow, last)
    elif step.state == FlowState.AWAITING_ROUTING_CONFIRMATION:
        interactive = yes_no_buttons(flow, last)
    out[-1] = (last, interactive)
    return out
