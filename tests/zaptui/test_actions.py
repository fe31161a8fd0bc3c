"""Actions and side channels through the real app and a real zapd: typing both ways, a
file attached by path and saved back, and the supervisor's priority, tags, client notes
and reopen modals (each returns a typed result the screen applies)."""

from __future__ import annotations

from pathlib import Path

from shared.client import ZapClient
from shared.enums import Priority, TicketStatus
from shared.protocol.events import TYPING
from tests.zaptui.conftest import PASSWORD, TuiZapd, wait_until
from tests.zaptui.test_journey import log_in, routed_ticket, settings
from zaptui.app import make_app
from zaptui.screens.client import ClientScreen
from zaptui.screens.confirm import ConfirmScreen
from zaptui.screens.main import MainScreen
from zaptui.screens.path_prompt import PathScreen
from zaptui.screens.priority import PriorityScreen
from zaptui.screens.tags import TagsScreen
from zaptui.widgets.chat_log import ChatLog
from zaptui.widgets.composer import ComposerInput
from zaptui.widgets.ticket_list import TicketList


async def test_typing_goes_out_and_comes_in(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        await wait_until(lambda: app.subscription is not None and app.subscription.connected)
        tid = await routed_ticket(z, app, name="Tina")
        r = await z.t.agent.post(f"/api/v1/tickets/{tid}/accept")
        assert r.status_code == 200, r.text
        main.open_ticket(tid)
        async with ZapClient(z.url) as boss:
            await boss.login(z.t.emails["supervisor"], PASSWORD)
            async with boss.subscribe() as sub:
                # The agent types: the supervisor's stream hears it (once, not per key).
                main.query_one(ComposerInput).focus()
                await pilot.press(*"Olá")
                seen = []
                async for event in sub:
                    if event.type == TYPING:
                        seen.append(event.data)
                        break
                assert seen[0]["ticket_id"] == str(tid) and seen[0]["typing"] is True
                # The supervisor types on the ticket: the agent's chat says so.
                assert await sub.send_typing(tid, True)
                typing = main.query_one("#chat-typing")
                await wait_until(lambda: "Supervisor" in str(typing.render()))


async def test_attach_a_file_and_save_it_back(tui_zapd: TuiZapd, tmp_path: Path) -> None:
    z = tui_zapd
    src = tmp_path / "laudo.pdf"
    src.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        tid = await routed_ticket(z, app, name="Ana Paula")
        r = await z.t.agent.post(f"/api/v1/tickets/{tid}/accept")
        assert r.status_code == 200, r.text
        main.open_ticket(tid)
        main.query_one(ComposerInput).focus()
        await pilot.press("ctrl+o")
        await wait_until(lambda: isinstance(app.screen, PathScreen))
        app.screen.query_one("#path-input").value = str(tmp_path / "missing.pdf")  # type: ignore[attr-defined]
        await pilot.press("enter")  # a path that is not a file is refused on the spot
        await wait_until(lambda: "missing.pdf" in str(app.screen.query_one("#path-error").render()))
        app.screen.query_one("#path-input").value = str(src)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, MainScreen))
        await pilot.press(*"Segue o laudo", "enter")
        log = main.query_one(ChatLog)
        await wait_until(lambda: any(i.media_id and not i.pending for i in log.items))
        item = next(i for i in log.items if i.media_id)
        # Save it: select the attachment, `s`, a path.
        log.focus()
        log.selected = log.items.index(item)
        await pilot.press("s")
        await wait_until(lambda: isinstance(app.screen, PathScreen))
        dest = tmp_path / "salvo.pdf"
        app.screen.query_one("#path-input").value = str(dest)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(lambda: dest.exists() and dest.read_bytes() == src.read_bytes())


async def test_supervisor_priority_tags_notes_and_reopen(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    r = await z.t.admin.post("/api/v1/tags", json={"name": "VIP"})
    assert r.status_code == 201, r.text
    vip = r.json()["id"]
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.t.emails["supervisor"])
        tid = await routed_ticket(z, app, name="Sara")
        tl = main.query_one(TicketList)
        await wait_until(lambda: tl.select_id(tid))
        tl.focus()

        await pilot.press("p")  # priority
        await wait_until(lambda: isinstance(app.screen, PriorityScreen))
        await pilot.press("up", "enter")  # from Normal to High
        await wait_until(lambda: app.inbox.rows[tid].ticket.priority == Priority.HIGH)  # type: ignore[union-attr]
        assert (await z.t.supervisor.get(f"/api/v1/tickets/{tid}")).json()["priority"] == 2

        await pilot.press("g")  # the client's tags
        await wait_until(lambda: isinstance(app.screen, TagsScreen))
        await pilot.press("space")
        await pilot.click("#ok")
        client_id = app.inbox.rows[tid].ticket.client.id  # type: ignore[union-attr]

        async def tagged() -> bool:
            got = await z.t.supervisor.get(f"/api/v1/clients/{client_id}")
            return bool(got.json()["tag_ids"] == [vip])

        await wait_until(tagged)

        await pilot.press("i")  # the client panel: notes
        await wait_until(lambda: isinstance(app.screen, ClientScreen))
        app.screen.query_one("#client-notes").text = "Prefere WhatsApp à tarde"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")

        async def noted() -> bool:
            got = await z.t.supervisor.get(f"/api/v1/clients/{client_id}")
            return bool(got.json()["notes"] == "Prefere WhatsApp à tarde")

        await wait_until(noted)

        r = await z.t.supervisor.post(f"/api/v1/tickets/{tid}/close", json={"farewell": False})
        assert r.status_code == 200, r.text
        await wait_until(lambda: app.inbox.rows[tid].ticket.status == TicketStatus.CLOSED)  # type: ignore[union-attr]
        main.open_ticket(tid)  # a closed ticket is out of the queues: open it in the chat
        main.query_one(ChatLog).focus()
        await pilot.press("r")  # reopen
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(lambda: app.inbox.rows[tid].ticket.status != TicketStatus.CLOSED)  # type: ignore[union-attr]
