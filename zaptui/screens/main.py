"""The agent's main screen: departments sidebar, ticket list, chat pane and composer.

Invariants:
- The screen reads the app's `Inbox` and never keeps its own copy of tickets or
  messages; the app calls `apply_change` after every event (data down), the widgets
  post messages (news up), and every network call runs in a worker through
  `ZapApp.call`, which turns failures into a banner, a toast or the login screen.
- A burst of updates is coalesced: rows and counts are redrawn at most once per
  `REDRAW_DELAY`, the open chat only when its own messages changed.
- Usable at 80×24: below `NARROW` columns the sidebar hides (Ctrl+B shows it).
- On a Cloud API ticket the chat header shows the 24-hour window (open, closing soon
  with the time left, closed), re-read from the clock every `WINDOW_TICK` seconds; while
  it is closed the composer says free text is refused and names the way out (a template
  or an internal note). The window comes from `GET /tickets/{id}`, fetched once per
  ticket when it is first opened and again whenever its customer writes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from shared.enums import MessageDirection, Priority, TicketStatus
from shared.protocol.clients import ClientUpdate
from shared.protocol.tickets import TicketClose, TicketTransfer, TicketUpdate
from zaptui.i18n import t
from zaptui.messages import SendRequested, TypingChanged
from zaptui.model import Change, TicketRow, WindowState
from zaptui.screens.client import ClientScreen
from zaptui.screens.close import CloseResult, CloseScreen
from zaptui.screens.confirm import ConfirmScreen
from zaptui.screens.path_prompt import PathScreen
from zaptui.screens.priority import PriorityScreen
from zaptui.screens.quick_replies import QuickRepliesScreen
from zaptui.screens.tags import TagsResult, TagsScreen
from zaptui.screens.transfer import TransferResult, TransferScreen
from zaptui.widgets.chat_log import ChatLog
from zaptui.widgets.composer import Composer, ComposerInput
from zaptui.widgets.ticket_list import TicketList

if TYPE_CHECKING:
    from zaptui.app import ZapApp

NARROW = 100
REDRAW_DELAY = 0.05
PREVIEW_FETCH = 40  # tickets whose last message is fetched for the preview at start
TYPING_IDLE = 5.0  # seconds without a keystroke before "stopped typing" is sent
WINDOW_TICK = 20.0  # seconds between redraws of the open chat's 24-hour window


class MainScreen(Screen[None]):
    """Queues on the left, the conversation on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", t("main.accept")),
        Binding("t", "transfer", t("main.transfer")),
        Binding("c", "close_ticket", t("main.close")),
        Binding("r", "reopen", t("main.reopen"), show=False),
        Binding("g", "tags", t("main.tags"), show=False),
        Binding("p", "priority", t("main.priority"), show=False),
        Binding("i", "client", t("main.client")),
        Binding("n", "note", t("main.note"), show=False),
        Binding("slash", "quick", t("main.quick"), show=False),
        Binding("ctrl+b", "toggle_sidebar", t("main.sidebar"), show=False),
        Binding("escape", "focus_list", t("main.focus_list"), show=False),
        Binding("f2", "compose", t("main.compose"), show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = "all"
        self.department_id: uuid.UUID | None = None
        self.current: uuid.UUID | None = None
        self._redraw_pending = False
        self._typing_at = 0.0  # when "typing" was last sent (monotonic)
        self._typing_on: uuid.UUID | None = None  # the ticket it was sent for
        self._typing_idle: Timer | None = None
        self._detailed: set[uuid.UUID] = set()  # tickets fetched once for their window

    @property
    def zap(self) -> ZapApp:
        return self.app  # type: ignore[return-value]

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="topbar")
        yield Static(t("banner.offline"), id="banner")
        with Horizontal(id="body"):
            yield OptionList(id="sidebar")
            with Vertical(id="queue"):
                yield Static("", id="queue-title")
                yield TicketList(id="tickets")
            with Vertical(id="chat"):
                yield Static(t("chat.none"), id="chat-header")
                yield ChatLog(id="chatlog")
                yield Static("", id="chat-typing")
                yield Composer(id="composer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#composer", Composer).display = False
        self.set_online(self.zap.online)
        self.redraw()
        self.query_one(TicketList).focus()
        self._narrow(self.size.width)
        self.set_interval(WINDOW_TICK, self._window_tick)

    def _window_tick(self) -> None:
        row = self.row
        if row is not None and row.window is not None:
            self._chat_header()

    def on_resize(self, event: Resize) -> None:
        self._narrow(event.size.width)

    def _narrow(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")

    # ------------------------------------------------------------------ data down

    def set_online(self, online: bool) -> None:
        """Show or hide the 'zapd unreachable' banner."""
        for banner in self.query("#banner"):  # none while the screen is torn down
            banner.display = not online
        if self.query("#topbar"):
            self._topbar()

    def _chat_log(self) -> ChatLog | None:
        """The chat log, or None while the screen is torn down (logout, quit)."""
        found = self.query(ChatLog)
        return found.first() if found else None

    def apply_change(self, change: Change) -> None:
        """The app applied an event: redraw what it touched."""
        if self._chat_log() is None:  # an event that came in during teardown
            return
        if change.tickets or change.fetch:
            self.schedule_redraw()
        if self.current is not None:
            if self.current in change.chats:
                self._refresh_chat()
            if self.current in change.tickets:
                self._chat_header()

    def schedule_redraw(self) -> None:
        if not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(REDRAW_DELAY, self.redraw)

    def redraw(self) -> None:
        """Redraw the sidebar, the list and the header from the inbox."""
        self._redraw_pending = False
        inbox = self.zap.inbox
        if inbox is None:
            return
        self._sidebar()
        rows = inbox.sorted_rows(self.view, self.department_id)
        self.query_one(TicketList).set_rows(rows)
        self.query_one("#queue-title", Static).update(self._view_title(len(rows)))
        self._chat_header()
        self._topbar()

    def _topbar(self) -> None:
        inbox = self.zap.inbox
        if inbox is None:
            return
        me = inbox.me
        state = t("top.online") if self.zap.online else t("top.offline")
        bell = "♪" if self.zap.settings.bell else " "
        text = Text.assemble(
            (" zap ", "bold reverse"),
            f"  {me.name}",
            (f"  {t('role.' + (me.role.name.lower() if me.role is not None else 'root'))}", "dim"),
            f"  {bell}  ",
            (state, "bold green" if self.zap.online else "bold red"),
        )
        self.query_one("#topbar", Static).update(text)

    def _view_title(self, n: int) -> str:
        names = {
            "all": t("view.all"),
            "queue": t("view.queue"),
            "mine": t("view.mine"),
            "closed": t("view.closed"),
        }
        title = names.get(self.view, self.view)
        inbox = self.zap.inbox
        if self.department_id is not None and inbox is not None:
            dep = inbox.departments.get(self.department_id)
            title = dep.name if dep else title
        return f"{title} ({n})"

    def _sidebar(self) -> None:
        inbox = self.zap.inbox
        if inbox is None:
            return
        ol = self.query_one("#sidebar", OptionList)
        counts = inbox.counts()
        total = counts[None]
        options = [
            Option(t("side.all", waiting=total.waiting, mine=total.mine), id="view:all"),
            Option(t("side.mine", n=total.mine), id="view:mine"),
            Option(t("side.queue", n=total.waiting), id="view:queue"),
        ]
        for dep in inbox.my_departments():
            c = counts.get(dep.id)
            waiting, mine = (c.waiting, c.mine) if c else (0, 0)
            label = Text.assemble(
                (dep.name[:14], "bold"),
                f"  {waiting}",
                (" ◔", "yellow"),
                f" {mine}",
                (" ●", "green"),
            )
            options.append(Option(label, id=f"dep:{dep.id}"))
        options.append(Option(t("side.closed"), id="view:closed"))
        highlighted = ol.highlighted
        ol.clear_options()
        ol.add_options(options)
        if highlighted is not None and highlighted < len(options):
            ol.highlighted = highlighted

    @on(OptionList.OptionSelected, "#sidebar")
    def _pick_view(self, event: OptionList.OptionSelected) -> None:
        oid = event.option.id or "view:all"
        kind, _, value = oid.partition(":")
        if kind == "view":
            self.view, self.department_id = value, None
            if value == "closed":
                self.load_closed()
        else:
            self.view, self.department_id = "all", uuid.UUID(value)
        self.redraw()
        self.query_one(TicketList).focus()

    # ------------------------------------------------------------------ the chat pane

    @property
    def row(self) -> TicketRow | None:
        inbox = self.zap.inbox
        if inbox is None or self.current is None:
            return None
        return inbox.rows.get(self.current)

    def _chat_header(self) -> None:
        row = self.row
        header = self.query_one("#chat-header", Static)
        typing = self.query_one("#chat-typing", Static)
        if row is None:
            header.update(t("chat.none"))
            typing.update("")
            return
        tk = row.ticket
        status = t(f"status.{tk.status.name.lower()}")
        dep = tk.department.name if tk.department else "—"
        who = tk.assignee.name if tk.assignee else t("chat.unassigned")
        prio = t(f"priority.{tk.priority.name.lower()}")
        text = Text.assemble(
            (row.client_label, "bold"),
            (f"  {tk.client.phone or ''}", "dim"),
            f"  #{tk.number}  ",
            (status, "bold"),
        )
        window = row.window_state()
        if window is not None:  # before the rest: it must not be cut off at 80 columns
            text.append("  ")
            text.append(*_window_label(*window))
        text.append(f"  {dep} · {who}")
        text.append(f"  {prio}", "bold red" if tk.priority >= Priority.HIGH else "dim")
        header.update(text)
        doing = "chat.recording" if row.recording else "chat.typing"
        typing.update(t(doing, name=row.typing) if row.typing else "")
        self._composer_state()

    def _composer_state(self) -> None:
        row = self.row
        composer = self.query_one("#composer", Composer)
        composer.display = row is not None and row.ticket.status != TicketStatus.CLOSED
        window = row.window_state() if row is not None else None
        composer.window_closed = window is not None and window[0] is WindowState.CLOSED

    def _refresh_chat(self) -> None:
        inbox = self.zap.inbox
        if inbox is None or self.current is None:
            return
        chat = inbox.chats.get(self.current)
        if chat is None:
            return
        log = self._chat_log()
        if log is not None:
            log.update_items(chat.items, chat.complete)

    @on(TicketList.Opened)
    def _opened(self, event: TicketList.Opened) -> None:
        self.open_ticket(event.ticket_id)

    def open_ticket(self, ticket_id: uuid.UUID) -> None:
        """Show a ticket's chat (loading its newest page when not loaded yet)."""
        inbox = self.zap.inbox
        if inbox is None:
            return
        self.current = ticket_id
        if ticket_id not in self._detailed:  # learn its 24-hour window (Cloud API)
            self._detailed.add(ticket_id)
            self.zap.fetch_ticket(ticket_id)
        chat = inbox.chat(ticket_id)
        self._chat_header()  # first: the composer's place decides the log's size
        log = self.query_one(ChatLog)
        log.show(ticket_id, chat.items, chat.complete or not chat.loaded)
        if not chat.loaded:
            self.load_latest(ticket_id)
        row = inbox.rows.get(ticket_id)
        if row is not None and row.ticket.unread_count and self._is_mine(row):
            self.mark_read(ticket_id)

    def _is_mine(self, row: TicketRow) -> bool:
        a = row.ticket.assignee
        return a is not None and self.zap.inbox is not None and a.id == self.zap.inbox.me.id

    @work(group="history")
    async def load_latest(self, ticket_id: uuid.UUID) -> None:
        inbox = self.zap.inbox
        client = self.zap.client
        if inbox is None or client is None:
            return
        page = await self.zap.call(
            client.list_ticket_messages(ticket_id, limit=self.zap.settings.page_size, order="desc")
        )
        if page is None:
            return
        chat = inbox.chat(ticket_id)
        inbox.put_messages(ticket_id, page.items, older=False)
        chat.older_cursor = page.next_cursor
        chat.complete = page.next_cursor is None
        chat.loaded = True
        if page.items:
            inbox.set_preview(ticket_id, page.items[0])
        log = self._chat_log()
        if self.current == ticket_id and log is not None:
            log.show(ticket_id, chat.items, chat.complete)

    @on(ChatLog.NeedOlder)
    def _need_older(self, event: ChatLog.NeedOlder) -> None:
        self.load_older(event.ticket_id)

    @work(group="history-older", exclusive=True)
    async def load_older(self, ticket_id: uuid.UUID) -> None:
        inbox = self.zap.inbox
        client = self.zap.client
        if inbox is None or client is None:
            return
        chat = inbox.chat(ticket_id)
        if chat.complete or chat.older_cursor is None:
            return
        page = await self.zap.call(
            client.list_ticket_messages(
                ticket_id,
                cursor=chat.older_cursor,
                limit=self.zap.settings.page_size,
                order="desc",
            )
        )
        if page is None:
            return
        inbox.put_messages(ticket_id, page.items, older=True)
        chat.older_cursor = page.next_cursor
        chat.complete = page.next_cursor is None
        log = self._chat_log()
        if self.current == ticket_id and log is not None:
            log.update_items(chat.items, chat.complete)

    @work(group="read")
    async def mark_read(self, ticket_id: uuid.UUID) -> None:
        client = self.zap.client
        inbox = self.zap.inbox
        if client is None or inbox is None:
            return
        ticket = await self.zap.call(client.mark_ticket_read(ticket_id), quiet=True)
        if ticket is not None:
            inbox.put_ticket(ticket)
            self.schedule_redraw()

    @work(group="previews")
    async def load_previews(self) -> None:
        """Fetch the last message of the first tickets, for their preview line."""
        inbox = self.zap.inbox
        client = self.zap.client
        if inbox is None or client is None:
            return
        rows = inbox.sorted_rows("all", None)[:PREVIEW_FETCH]
        for row in rows:
            if row.preview is not None:
                continue
            page = await self.zap.call(
                client.list_ticket_messages(row.id, limit=1, order="desc"), quiet=True
            )
            if page is None:
                return
            if page.items:
                inbox.set_preview(row.id, page.items[0])
        self.schedule_redraw()

    @work(group="closed", exclusive=True)
    async def load_closed(self) -> None:
        inbox = self.zap.inbox
        client = self.zap.client
        if inbox is None or client is None:
            return
        page = await self.zap.call(client.list_tickets(status=TicketStatus.CLOSED, limit=100))
        if page is None:
            return
        for tk in page.items:
            inbox.put_ticket(tk)
        self.schedule_redraw()

    # ------------------------------------------------------------------ composing

    @on(ComposerInput.Submitted)
    def _submit(self, event: ComposerInput.Submitted) -> None:
        composer = self.query_one("#composer", Composer)
        text = event.text.strip()
        attachment = composer.attachment
        if self.current is None or (not text and not attachment):
            return
        self.post_message(SendRequested(self.current, text or None, composer.note_mode, attachment))
        composer.clear()
        self._typing_done()

    @on(ComposerInput.Edited)
    def _edited(self, event: ComposerInput.Edited) -> None:
        """Tell the others the agent types: at most once per interval, 'stopped' when idle."""
        if self.current is None or self.query_one("#composer", Composer).note_mode:
            return
        if event.empty:
            self._typing_done()
            return
        now = time.monotonic()
        if self._typing_on != self.current or now - self._typing_at >= self._typing_every:
            self._typing_on, self._typing_at = self.current, now
            self.post_message(TypingChanged(self.current, True))
        if self._typing_idle is not None:
            self._typing_idle.stop()
        self._typing_idle = self.set_timer(TYPING_IDLE, self._typing_done)

    @property
    def _typing_every(self) -> float:
        return self.zap.settings.typing_interval

    def _typing_done(self) -> None:
        if self._typing_on is not None:
            self.post_message(TypingChanged(self._typing_on, False))
        self._typing_on = None
        self._typing_at = 0.0

    @on(ComposerInput.SlashTyped)
    def action_quick(self) -> None:
        if self.current is None:
            return
        self.open_quick_replies()

    @work(group="modal")
    async def open_quick_replies(self) -> None:
        client = self.zap.client
        row = self.row
        if client is None or row is None:
            return
        dep = row.ticket.department.id if row.ticket.department else None
        replies = await self.zap.call(client.list_quick_replies(department_id=dep))
        if replies is None:
            return
        chosen = await self.app.push_screen_wait(QuickRepliesScreen(replies))
        composer = self.query_one("#composer", Composer)
        if chosen is not None:
            composer.input.insert(chosen.body)
        composer.input.focus()

    @on(Composer.AttachRequested)
    @work(group="modal")
    async def _attach_file(self) -> None:
        path = await self.app.push_screen_wait(PathScreen(t("attach.title"), must_exist=True))
        composer = self.query_one("#composer", Composer)
        if path is not None:
            composer.attachment = str(path)
        composer.input.focus()

    @on(ChatLog.SaveMedia)
    @work(group="modal")
    async def _save_media(self, event: ChatLog.SaveMedia) -> None:
        client = self.zap.client
        media_id = event.item.media_id
        if client is None or media_id is None:
            return
        meta = await self.zap.call(client.media_meta(media_id))
        if meta is None:
            return
        name = meta.filename or f"{media_id}"
        default = str(Path.home() / "Downloads" / name)
        path = await self.app.push_screen_wait(
            PathScreen(t("save.title"), default, must_exist=False)
        )
        if path is None:
            return
        data = await self.zap.call(client.download_media(media_id))
        if data is None:
            return
        await asyncio.to_thread(path.write_bytes, data)
        self.app.notify(t("save.done", path=str(path)))

    # ------------------------------------------------------------------ actions

    def _target(self) -> TicketRow | None:
        """The ticket an action applies to: the open one, else the highlighted one."""
        inbox = self.zap.inbox
        if inbox is None:
            return None
        tid = self.current
        tl = self.query_one(TicketList)
        if self.focused is tl or tid is None:
            tid = tl.current_id
        return inbox.rows.get(tid) if tid else None

    def action_focus_list(self) -> None:
        self.query_one(TicketList).focus()

    def action_compose(self) -> None:
        composer = self.query_one("#composer", Composer)
        if composer.display:
            composer.input.focus()

    def action_note(self) -> None:
        composer = self.query_one("#composer", Composer)
        if composer.display:
            composer.note_mode = not composer.note_mode
            composer.input.focus()

    def action_toggle_sidebar(self) -> None:
        side = self.query_one("#sidebar")
        side.set_class(not side.has_class("-shown"), "-shown")

    @work(group="modal")
    async def action_accept(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None:
            return
        if row.ticket.status != TicketStatus.PENDING:
            self.app.notify(t("accept.not_waiting"), severity="warning")
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                t("accept.title", number=row.ticket.number),
                t("accept.detail", name=row.client_label, preview=row.preview or ""),
            )
        )
        if not ok:
            return
        ticket = await self.zap.call(client.accept_ticket(row.id))
        if ticket is None:
            return
        self.zap.ticket_changed(ticket)
        self.open_ticket(ticket.id)
        self.action_compose()

    @work(group="modal")
    async def action_transfer(self) -> None:
        row = self._target()
        client = self.zap.client
        inbox = self.zap.inbox
        if row is None or client is None or inbox is None:
            return
        if not inbox.departments:  # the start-up read failed: read them now
            fetched = await self.zap.call(client.list_departments())
            if fetched is None:
                return
            inbox.set_departments(fetched)
        deps = [(d.name, d.id) for d in inbox.departments.values() if d.active]
        agents = await self.zap.agents()
        result: TransferResult | None = await self.app.push_screen_wait(
            TransferScreen(
                deps, agents, row.ticket.department.id if row.ticket.department else None
            )
        )
        if result is None:
            return
        body = TicketTransfer(
            department_id=result.department_id,
            user_id=result.user_id,
            message=result.message,
            notify_customer=result.notify_customer,
        )
        ticket = await self.zap.call(client.transfer_ticket(row.id, body))
        if ticket is not None:
            self.zap.ticket_changed(ticket)
            self.app.notify(t("transfer.done", number=ticket.number))

    @work(group="modal")
    async def action_close_ticket(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None or row.ticket.status == TicketStatus.CLOSED:
            return
        cats = await self.zap.call(client.list_categories(), quiet=True) or []
        result: CloseResult | None = await self.app.push_screen_wait(
            CloseScreen([(c.name, c.id) for c in cats])
        )
        if result is None:
            return
        body = TicketClose(
            category_id=result.category_id, farewell=result.farewell, message=result.message
        )
        ticket = await self.zap.call(client.close_ticket(row.id, body))
        if ticket is not None:
            self.zap.ticket_changed(ticket)
            self.app.notify(t("close.done", number=ticket.number))

    @work(group="modal")
    async def action_reopen(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None:
            return
        if row.ticket.status != TicketStatus.CLOSED:
            self.app.notify(t("reopen.not_closed"), severity="warning")
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(t("reopen.title", number=row.ticket.number))
        )
        if not ok:
            return
        ticket = await self.zap.call(client.reopen_ticket(row.id))
        if ticket is not None:
            self.zap.ticket_changed(ticket)

    @work(group="modal")
    async def action_priority(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None:
            return
        chosen = await self.app.push_screen_wait(PriorityScreen(row.ticket.priority))
        if chosen is None or chosen == row.ticket.priority:
            return
        ticket = await self.zap.call(client.update_ticket(row.id, TicketUpdate(priority=chosen)))
        if ticket is not None:
            self.zap.ticket_changed(ticket)

    @work(group="modal")
    async def action_tags(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None:
            return
        tags = await self.zap.call(client.list_tags())
        customer = await self.zap.call(client.get_client(row.ticket.client.id))
        if tags is None or customer is None:
            return
        result: TagsResult | None = await self.app.push_screen_wait(
            TagsScreen([(tg.name, tg.id) for tg in tags], set(customer.tag_ids))
        )
        if result is None:
            return
        saved = await self.zap.call(client.set_client_tags(customer.id, result.tag_ids))
        if saved is not None:
            self.app.notify(t("tags.done"))

    @work(group="modal")
    async def action_client(self) -> None:
        row = self._target()
        client = self.zap.client
        if row is None or client is None:
            return
        customer = await self.zap.call(client.get_client(row.ticket.client.id))
        if customer is None:
            return
        tags = await self.zap.call(client.list_tags(), quiet=True) or []
        names = {tg.id: tg.name for tg in tags}
        history = await self.zap.call(
            client.list_tickets(client_id=customer.id, limit=20), quiet=True
        )
        notes = await self.app.push_screen_wait(
            ClientScreen(
                customer,
                [names.get(x, "?") for x in customer.tag_ids],
                history.items if history else [],
            )
        )
        if notes is None:
            return
        saved = await self.zap.call(client.update_client(customer.id, ClientUpdate(notes=notes)))
        if saved is not None:
            self.app.notify(t("client.saved"))

    # ------------------------------------------------------------------ helpers for tests

    def chat_texts(self) -> list[str]:
        """The bodies shown in the open chat (tests read what the agent sees)."""
        return [i.body or "" for i in self.query_one(ChatLog).items]

    def inbound_count(self) -> int:
        return sum(
            1 for i in self.query_one(ChatLog).items if i.direction == MessageDirection.INBOUND
        )


def _left(left: timedelta) -> str:
    """Say a time left as "1 h 05 min" or "12 min" (at least 1 min)."""
    minutes = max(1, int(left.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return t("window.hours", h=hours, m=f"{minutes:02d}")
    return t("window.minutes", m=minutes)


def _window_label(state: WindowState, left: timedelta) -> tuple[str, str]:
    """The header's words and style for a 24-hour window."""
    if state is WindowState.OPEN:
        return t("window.open", left=_left(left)), "green"
    if state is WindowState.CLOSING:
        return t("window.closing", left=_left(left)), "bold yellow"
    return t("window.closed"), "bold red"
