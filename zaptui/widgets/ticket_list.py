"""The ticket list: a `ScrollView` drawing two lines per ticket, only those on screen.

Invariants:
- It holds the rows of the current view (already filtered and sorted by `Inbox`) and a
  cursor; it never fetches anything. A new row list keeps the cursor on the same ticket.
- Waiting times are computed at render time, so a once-a-second `refresh()` keeps them
  live without touching the data; a burst of updates is one `set_rows` and one repaint.
- Line 1: priority bar, status mark, client name, ticket number, waiting time.
  Line 2: last message preview (or who is typing) and the unread badge.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from shared.enums import Priority, TicketStatus
from zaptui.i18n import t
from zaptui.model import TicketRow, utcnow

ROW_HEIGHT = 2


def waited(since: datetime | None, now: datetime) -> str:
    """A compact duration: 45s, 12m, 3h05, 2d."""
    if since is None:
        return ""
    secs = max(0, int((now - since).total_seconds()))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h{(secs % 3600) // 60:02d}"
    return f"{secs // 86400}d"


class TicketList(ScrollView, can_focus=True):
    """The tickets of the selected queue; Enter opens one."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "ticketlist--cursor",
        "ticketlist--name",
        "ticketlist--meta",
        "ticketlist--preview",
        "ticketlist--typing",
        "ticketlist--badge",
        "ticketlist--waiting",
        "ticketlist--open",
        "ticketlist--closed",
        "ticketlist--urgent",
        "ticketlist--high",
        "ticketlist--normal",
        "ticketlist--low",
        "ticketlist--empty",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", t("list.up"), show=False),
        Binding("down,j", "move(1)", t("list.down"), show=False),
        Binding("enter", "open", t("list.open"), show=False),
    ]

    class Opened(Message):
        """The agent opened a ticket (Enter or click)."""

        def __init__(self, ticket_id: uuid.UUID) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    class Highlighted(Message):
        """The cursor moved to a ticket."""

        def __init__(self, ticket_id: uuid.UUID | None) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[TicketRow] = []
        self.cursor = 0
        self.open_id: uuid.UUID | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)  # live waiting times

    def set_rows(self, rows: list[TicketRow]) -> None:
        """Show these rows, keeping the cursor on the ticket it was on."""
        current = self.current_id
        self.rows = rows
        if current is not None:
            for i, row in enumerate(rows):
                if row.id == current:
                    self.cursor = i
                    break
            else:
                self.cursor = min(self.cursor, max(0, len(rows) - 1))
        self.virtual_size = Size(self.size.width, len(rows) * ROW_HEIGHT)
        self.refresh()

    @property
    def current_id(self) -> uuid.UUID | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor].id
        return None

    def select_id(self, ticket_id: uuid.UUID) -> bool:
        for i, row in enumerate(self.rows):
            if row.id == ticket_id:
                self._move_to(i)
                return True
        return False

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line_no = scroll_y + y
        width = self.scrollable_content_region.width
        idx, part = divmod(line_no, ROW_HEIGHT)
        if idx >= len(self.rows):
            if not self.rows and y == 0:
                style = self.get_component_rich_style("ticketlist--empty")
                return Strip([Segment(t("list.empty"), style)]).crop_extend(0, width, style)
            return Strip.blank(width, self.rich_style)
        row = self.rows[idx]
        segs = self._line(row, part, width)
        if idx == self.cursor:
            cursor = self.get_component_rich_style("ticketlist--cursor")
            segs = [Segment(s.text, (s.style or Style()) + cursor) for s in segs]
            base = self.rich_style + cursor
        else:
            base = self.rich_style
        strip = Strip(segs).apply_style(self.rich_style)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _line(self, row: TicketRow, part: int, width: int) -> list[Segment]:
        s = self.get_component_rich_style
        tk = row.ticket
        prio = {
            Priority.URGENT: "ticketlist--urgent",
            Priority.HIGH: "ticketlist--high",
            Priority.NORMAL: "ticketlist--normal",
            Priority.LOW: "ticketlist--low",
        }[tk.priority]
        bar = Segment("▌", s(prio))
        if part == 0:
            status_cls, mark = {
                TicketStatus.PENDING: ("ticketlist--waiting", "◔"),
                TicketStatus.OPEN: ("ticketlist--open", "●"),
                TicketStatus.CLOSED: ("ticketlist--closed", "○"),
            }[tk.status]
            right = f" #{tk.number}"
            wait = waited(row.waiting_since(), utcnow())
            if wait:
                right += f" {wait}"
            room = max(3, width - 4 - cell_len(right))
            name = set_cell_size(row.client_label, room)
            return [
                bar,
                Segment(f"{mark} ", s(status_cls)),
                Segment(name, s("ticketlist--name")),
                Segment(right + " ", s("ticketlist--meta")),
            ]
        badge = f" {tk.unread_count} " if tk.unread_count else ""
        room = max(3, width - 3 - cell_len(badge))
        if row.typing:
            doing = "list.recording" if row.recording else "list.typing"
            text, style = t(doing, name=row.typing), s("ticketlist--typing")
        else:
            prefix = "" if row.preview_inbound or row.preview is None else t("list.you")
            text, style = prefix + (row.preview or ""), s("ticketlist--preview")
        segs = [bar, Segment("  "), Segment(set_cell_size(text, room - 1), style)]
        if badge:
            segs.append(Segment(badge, s("ticketlist--badge")))
        return segs

    # ------------------------------------------------------------------ moving

    def _move_to(self, idx: int) -> None:
        if not self.rows:
            return
        idx = max(0, min(len(self.rows) - 1, idx))
        self.cursor = idx
        top = idx * ROW_HEIGHT
        height = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif top + ROW_HEIGHT > self.scroll_y + height:
            self.scroll_to(y=top + ROW_HEIGHT - height, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(self.current_id))

    def action_move(self, step: int) -> None:
        self._move_to(self.cursor + step)

    def action_open(self) -> None:
        if self.current_id is not None:
            self.post_message(self.Opened(self.current_id))

    def on_click(self, event: events.Click) -> None:
        idx = int(self.scroll_y + event.y) // ROW_HEIGHT
        if 0 <= idx < len(self.rows):
            self._move_to(idx)
            self.post_message(self.Opened(self.rows[idx].id))

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) * ROW_HEIGHT)
