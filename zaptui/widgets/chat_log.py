"""The chat pane's history: a `ScrollView` that renders only the lines on screen.

Invariants:
- The widget holds a reference to the chat's `ChatItem`s (oldest first) and a prefix
  sum of their heights; `render_line` finds the item of a line by bisection and builds
  its `Strip`s on demand (cached per item version, width and selection), so a chat of
  10,000+ messages costs one height per item, never 10,000 widgets.
- Heights come from word-wrapping at the current width, cached per (item version,
  width); a resize recomputes heights, not renders.
- Loading an older page keeps the lines on screen where they were (the scroll offset
  moves by the height added above); new messages follow the bottom only when the view
  was already at the bottom.
- The older page is asked for when the top line is drawn, and not while the view is
  still on its way to the bottom (a chat just shown is drawn once at the top before
  its height is known): opening a chat loads its newest page only.
- A selected item (keyboard ↑/↓ when focused, or a click) shows its details inline: the
  failure reason of a ✗, or how to save an attachment.
"""

from __future__ import annotations

import bisect
import functools
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from shared.enums import MessageDirection, MessageStatus, MessageType
from zaptui.i18n import t
from zaptui.model import ChatItem

MEDIA_MARK = "▣"
BOT_MARK = "⚙"
# zapd puts "*Agent name - Department*:" on top of what the customer reads.
AGENT_PREFIX = re.compile(r"\A\*[^*\n]{1,120}\*:\n")

MEDIA_TYPES = {
    MessageType.IMAGE,
    MessageType.AUDIO,
    MessageType.VIDEO,
    MessageType.DOCUMENT,
    MessageType.STICKER,
}
ATTACHMENT_TYPES = MEDIA_TYPES | {MessageType.LOCATION, MessageType.CONTACT}


def wrap_cells(text: str, width: int) -> list[str]:
    """Word-wrap `text` to `width` terminal cells (hard-splitting words longer than that)."""
    width = max(4, width)
    out: list[str] = []
    for para in text.split("\n"):
        if len(para) * 2 <= width or cell_len(para) <= width:
            out.append(para)
        elif para.isascii():
            out.extend(_wrap_ascii(para, width))
        else:
            out.extend(_wrap_wide(para, width))
    return out


@functools.lru_cache(maxsize=64)
def _ascii_wrapper(width: int) -> re.Pattern[str]:
    # Greedy: the longest run of up to `width` characters that ends before a space (or at
    # the end); a word longer than the line is cut at `width`. The regex engine does the
    # scanning, which is what keeps a 10,000-message chat quick to lay out.
    return re.compile(rf"[^ ].{{0,{width - 1}}}(?= |$)|[^ ]{{{width}}}|[^ ]+")


def _wrap_ascii(para: str, width: int) -> list[str]:
    # One cell per character: lengths are plain `len`, the hot path of long chats.
    lines = _ascii_wrapper(width).findall(para)
    return lines or [""]


def _wrap_wide(para: str, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in para.split(" "):
        while cell_len(word) > width:
            if line:
                out.append(line)
                line = ""
            head = chop_cells(word, width)[0]
            out.append(head)
            word = word[len(head) :]
        if not line:
            line = word
        elif cell_len(line) + 1 + cell_len(word) <= width:
            line = f"{line} {word}"
        else:
            out.append(line)
            line = word
    out.append(line)
    return out


def ticks(status: MessageStatus, pending: bool) -> tuple[str, str]:
    """The delivery mark of an outbound message and its component class."""
    if pending:
        return "◷", "chatlog--pending"
    if status == MessageStatus.QUEUED:
        return "◷", "chatlog--tick"
    if status == MessageStatus.SENT:
        return "✓", "chatlog--tick"
    if status == MessageStatus.DELIVERED:
        return "✓✓", "chatlog--tick"
    if status in (MessageStatus.READ, MessageStatus.PLAYED):
        return "✓✓", "chatlog--read"
    if status == MessageStatus.FAILED:
        return "✗", "chatlog--failed"
    return "", "chatlog--tick"


@dataclass
class _Layout:
    """One item's text lines at one width."""

    version: int
    width: int
    selected: bool
    lines: list[list[Segment]]


class ChatLog(ScrollView, can_focus=True):
    """A ticket's messages, notes and system lines; only the visible lines are rendered."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chatlog--inbound",
        "chatlog--outbound",
        "chatlog--note",
        "chatlog--menu",
        "chatlog--system",
        "chatlog--meta",
        "chatlog--tick",
        "chatlog--read",
        "chatlog--failed",
        "chatlog--pending",
        "chatlog--media",
        "chatlog--selected",
        "chatlog--bar-in",
        "chatlog--bar-out",
        "chatlog--bar-note",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "select(-1)", t("chat.prev"), show=False),
        Binding("down", "select(1)", t("chat.next"), show=False),
        Binding("home", "top", t("chat.top"), show=False),
        Binding("end", "bottom", t("chat.bottom"), show=False),
        Binding("s", "save", t("chat.save"), show=True),
        Binding("escape", "unselect", t("chat.unselect"), show=False),
    ]

    class NeedOlder(Message):
        """The view reached the top of what is loaded: fetch an older page."""

        def __init__(self, ticket_id: uuid.UUID) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    class SaveMedia(Message):
        """The agent asked to save the selected attachment."""

        def __init__(self, item: ChatItem) -> None:
            super().__init__()
            self.item = item

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.ticket_id: uuid.UUID | None = None
        self.items: list[ChatItem] = []
        self.complete = True
        self.selected: int | None = None
        self._layouts: dict[str, _Layout] = {}
        self._heights: dict[str, tuple[tuple[int, int, bool], int]] = {}
        self._styles: dict[str, Style] = {}
        self._offsets: list[int] = []  # first line of each item
        self._total = 0
        self._asked_older = False
        self._width = 0
        self._follow = True  # stay at the newest line as it grows
        self._settling = False  # scrolling to the end: the top line shown is not a request
        self.typing: str | None = None

    # ------------------------------------------------------------------ feeding

    def show(self, ticket_id: uuid.UUID | None, items: list[ChatItem], complete: bool) -> None:
        """Show another chat, scrolled to its newest message."""
        self.ticket_id = ticket_id
        self.items = items
        self.complete = complete
        self.selected = None
        self._layouts.clear()
        self._asked_older = False
        self._follow = True
        self._relayout()
        self._to_end()
        self.refresh()

    def _to_end(self) -> None:
        self._settling = True
        self.scroll_end(animate=False, immediate=True)
        self.call_after_refresh(self._at_end)

    def _at_end(self) -> None:
        self.scroll_end(animate=False, immediate=True)
        self._settling = False
        self.refresh()  # drawn again where it settled (the top, for a short chat)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._follow = new_value >= self.max_scroll_y - 1

    def update_items(self, items: list[ChatItem], complete: bool) -> None:
        """The chat changed (new, older or updated messages): redraw keeping the view."""
        first_key = self.items[0].key if self.items else None
        at_bottom = self._follow
        selected_key = self.items[self.selected].key if self.selected is not None else None
        old_top_line = self.scroll_y
        old_first_offset = 0
        self.items = items
        self.complete = complete
        self._relayout()
        if selected_key is not None:
            self.selected = next((i for i, x in enumerate(items) if x.key == selected_key), None)
        if at_bottom:
            self._follow = True
            self._to_end()
        elif first_key is not None and items and items[0].key != first_key:
            # Older messages were put above: keep the same lines on screen.
            idx = next((i for i, x in enumerate(items) if x.key == first_key), 0)
            added = self._offsets[idx] - old_first_offset
            self.scroll_to(y=old_top_line + added, animate=False, immediate=True)
        self._asked_older = False
        self.refresh()

    # ------------------------------------------------------------------ layout

    def _relayout(self) -> None:
        width = max(10, self.scrollable_content_region.width or self.size.width or 60)
        self._width = width
        offsets: list[int] = []
        total = 0
        height = self._height
        selected = self.selected
        for i, item in enumerate(self.items):
            offsets.append(total)
            total += height(item, i == selected)
        self._offsets = offsets
        self._total = total
        self.virtual_size = Size(width, total)

    def _layout(self, item: ChatItem, selected: bool) -> _Layout:
        cached = self._layouts.get(item.key)
        if (
            cached is not None
            and cached.version == item.version
            and cached.width == self._width
            and cached.selected == selected
        ):
            return cached
        lay = _Layout(item.version, self._width, selected, self._build(item, selected))
        self._layouts[item.key] = lay
        return lay

    def _height(self, item: ChatItem, selected: bool) -> int:
        """How many lines `_build` makes of this item, without building them."""
        cached = self._heights.get(item.key)
        if cached is not None and cached[0] == (item.version, self._width, selected):
            return cached[1]
        width = self._width
        if item.type == MessageType.SYSTEM or item.kind in ("system", "local"):
            n = len(wrap_cells(_system_text(item), width - 6)) + 1
        else:
            inbound = item.direction == MessageDirection.INBOUND
            inner = _inner(width, inbound)
            n = 2  # header and the blank line after
            if _has_media_line(item):
                n += 1
            body = _body_text(item)
            if body:
                n += (
                    1
                    if "\n" not in body and len(body) * 2 <= inner
                    else len(wrap_cells(body, inner))
                )
            if _shows_failure(item, selected):
                reason = t("chat.failed_reason", reason=item.error or t("chat.failed_unknown"))
                n += len(wrap_cells(reason, inner))
        self._heights[item.key] = ((item.version, width, selected), n)
        return n

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name, partial=True)
        return style

    def _build(self, item: ChatItem, selected: bool) -> list[list[Segment]]:
        width = self._width
        if item.type == MessageType.SYSTEM or item.kind in ("system", "local"):
            return self._build_system(item, width, selected)
        inbound = item.direction == MessageDirection.INBOUND
        indent = _indent(width, inbound)
        inner = _inner(width, inbound)
        if item.is_note:
            body_style, bar_style = self._style("chatlog--note"), self._style("chatlog--bar-note")
        elif inbound:
            body_style, bar_style = self._style("chatlog--inbound"), self._style("chatlog--bar-in")
        elif item.kind == "menu":
            body_style, bar_style = self._style("chatlog--menu"), self._style("chatlog--bar-out")
        else:
            body_style, bar_style = (
                self._style("chatlog--outbound"),
                self._style("chatlog--bar-out"),
            )
        meta = self._style("chatlog--meta")
        pad = [Segment(" " * indent)] if indent else []
        # Header: who · when · ticks
        if item.is_note:
            who = t("chat.note_by", name=item.author or t("chat.agent"))
        elif inbound:
            who = t("chat.customer")
        elif item.kind == "menu":
            who = t("chat.bot")
        else:
            who = item.author or t("chat.agent")
        header: list[Segment] = [
            *pad,
            Segment("▎ ", bar_style),
            Segment(who, meta + Style(bold=True)),
        ]
        header.append(Segment(f"  {_clock(item.created_at)}", meta))
        if not inbound and not item.is_note:
            mark, cls = ticks(item.status, item.pending)
            header.append(Segment(f"  {mark}", self._style(cls)))
            if item.pending:
                header.append(Segment(f" {t('chat.pending')}", self._style("chatlog--pending")))
        if selected:
            sel = self._style("chatlog--selected")
            start = 1 if pad else 0  # the indentation stays unmarked
            header[start:] = [Segment(s.text, (s.style or Style()) + sel) for s in header[start:]]
        lines: list[list[Segment]] = [header]
        bar = Segment("▎ ", bar_style)
        if item.type in ATTACHMENT_TYPES:
            label = t(f"media.{item.type.name.lower()}")
            hint = f"  [{t('chat.save_hint')}]" if item.media_id and selected else ""
            media = self._style("chatlog--media")
            lines.append([*pad, bar, Segment(f"{MEDIA_MARK} {label}{hint}", media)])
        elif item.type in (MessageType.REACTION, MessageType.UNKNOWN) and not item.body:
            lines.append([*pad, bar, Segment(t(f"media.{item.type.name.lower()}"), meta)])
        body = _body_text(item)
        for text in wrap_cells(body, inner) if body else []:
            lines.append([*pad, bar, Segment(text, body_style)])
        if _shows_failure(item, selected):
            reason = item.error or t("chat.failed_unknown")
            for text in wrap_cells(t("chat.failed_reason", reason=reason), inner):
                lines.append([*pad, bar, Segment(text, self._style("chatlog--failed"))])
        lines.append([])
        return lines

    def _build_system(self, item: ChatItem, width: int, selected: bool) -> list[list[Segment]]:
        style = self._style("chatlog--system")
        if selected:
            style = style + self._style("chatlog--selected")
        out: list[list[Segment]] = []
        for text in wrap_cells(_system_text(item), width - 6):
            gap = max(0, (width - cell_len(text) - 4) // 2)
            out.append([Segment(" " * gap), Segment(f"─ {text} ─", style)])
        out.append([])
        return out

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line_no = scroll_y + y
        width = self.scrollable_content_region.width
        if width != self._width and width > 0:
            self._layouts.clear()
            self._relayout()
        if (
            line_no == 0
            and not self.complete
            and not self._asked_older
            and not self._settling
            and self.ticket_id
        ):
            self._asked_older = True
            self.post_message(self.NeedOlder(self.ticket_id))
        if not self.items or line_no >= self._total:
            if not self.items and y == 0:
                return Strip([Segment(t("chat.empty"), self._style("chatlog--meta"))]).crop(
                    0, width
                )
            return Strip.blank(width, self.rich_style)
        idx = bisect.bisect_right(self._offsets, line_no) - 1
        item = self.items[idx]
        lay = self._layout(item, idx == self.selected)
        segs = lay.lines[line_no - self._offsets[idx]]
        strip = Strip(segs).apply_style(self.rich_style)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def on_resize(self, event: events.Resize) -> None:
        follow = self._follow
        if self.scrollable_content_region.width != self._width:
            self._layouts.clear()
            self._relayout()
        if follow:
            self._follow = True
            self._to_end()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._layouts.clear()
        self.refresh()

    # ------------------------------------------------------------------ selection

    def _select(self, idx: int | None) -> None:
        self.selected = idx
        self._relayout()
        if idx is not None:
            top = self._offsets[idx]
            bottom = top + len(self._layout(self.items[idx], True).lines)
            if top < self.scroll_y:
                self.scroll_to(y=top, animate=False, immediate=True)
            elif bottom > self.scroll_y + self.scrollable_content_region.height:
                self.scroll_to(
                    y=bottom - self.scrollable_content_region.height, animate=False, immediate=True
                )
        self.refresh()

    def action_select(self, step: int) -> None:
        if not self.items:
            return
        if self.selected is None:
            idx = len(self.items) - 1 if step < 0 else 0
        else:
            idx = max(0, min(len(self.items) - 1, self.selected + step))
        self._select(idx)

    def action_unselect(self) -> None:
        self._select(None)

    def action_top(self) -> None:
        self.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.scroll_end(animate=False)

    def action_save(self) -> None:
        if self.selected is None:
            return
        item = self.items[self.selected]
        if item.media_id is not None:
            self.post_message(self.SaveMedia(item))

    def on_click(self, event: events.Click) -> None:
        line_no = int(self.scroll_y + event.y)
        if 0 <= line_no < self._total:
            self._select(bisect.bisect_right(self._offsets, line_no) - 1)

    @property
    def selected_item(self) -> ChatItem | None:
        return self.items[self.selected] if self.selected is not None else None


def _indent(width: int, inbound: bool) -> int:
    return 0 if inbound else max(2, min(12, width // 6))


def _inner(width: int, inbound: bool) -> int:
    return max(8, width - _indent(width, inbound) - 4)


def _body_text(item: ChatItem) -> str:
    body = item.body or ""
    if item.direction == MessageDirection.OUTBOUND and item.kind == "agent" and not item.is_note:
        body = AGENT_PREFIX.sub("", body, count=1)  # the header already names the agent
    return body


def _system_text(item: ChatItem) -> str:
    prefix = f"{BOT_MARK} " if item.kind == "system" else ""
    return f"{prefix}{item.body or ''} · {_clock(item.created_at)}"


def _has_media_line(item: ChatItem) -> bool:
    if item.type in ATTACHMENT_TYPES:
        return True
    return item.type in (MessageType.REACTION, MessageType.UNKNOWN) and not item.body


def _shows_failure(item: ChatItem, selected: bool) -> bool:
    return selected and (item.status == MessageStatus.FAILED or bool(item.error))


def _clock(when: datetime) -> str:
    return when.astimezone().strftime("%H:%M")
