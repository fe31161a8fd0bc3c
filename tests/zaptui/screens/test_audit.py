"""The audit screen against a real zapd: pages and filters give what the API gives.

The audit rows are real: sessions created, started and stopped, departments renamed,
through the API (the tenant's sandbox session adds its own create and start).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, Select, Static

from shared.client import ZapClient
from shared.protocol.audit import AuditOut
from shared.protocol.departments import DepartmentUpdate
from tests.zaptui.conftest import TuiZapd, wait_until
from tests.zaptui.screens.test_sessions import Host, new_session, token_of
from zaptui.screens.audit import AuditScreen


@pytest.fixture
async def admin(tui_zapd: TuiZapd) -> AsyncIterator[ZapClient]:
    async with ZapClient(tui_zapd.url, token=token_of(tui_zapd, "admin")) as client:
        for name in ("Loja", "Filial"):
            sid = await new_session(client, name)
            await client.start_session(sid)
            await client.stop_session(sid)
        await client.update_department(tui_zapd.t.lab_id, DepartmentUpdate(name="Exames"))
        yield client


def shown(screen: AuditScreen) -> list[str]:
    """The action column, top to bottom."""
    table = screen.query_one(DataTable)
    return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]


def actions(rows: list[AuditOut]) -> list[str]:
    return [r.action for r in rows]


async def apply(screen: AuditScreen, pilot: object, **fields: str) -> None:
    """Fill filter inputs (others emptied) and press Enter in the last; wait for the page."""
    loads = screen.loads
    for name in ("action", "entity", "since", "until"):
        screen.query_one(f"#audit-{name}", Input).value = fields.get(name, "")
    screen.query_one("#audit-action", Input).focus()
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(lambda: screen.loads > loads)
    await pilot.pause()  # type: ignore[attr-defined]


async def test_pages_and_filters_match_the_api(tui_zapd: TuiZapd, admin: ZapClient) -> None:
    screen = AuditScreen(admin, page_size=3)
    app = Host(screen)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(lambda: screen.loads >= 1)
        await pilot.pause()
        first = await admin.list_audit(limit=3)
        assert shown(screen) == actions(first.items) and len(first.items) == 3
        assert "Página 1" in str(screen.query_one("#audit-pager", Static).render())
        # The selected row's details beside the table.
        detail = str(screen.query_one("#audit-data", Static).render())
        assert first.items[0].action in detail and first.items[0].entity_type in detail

        # Next page, then back.
        await pilot.press("right_square_bracket")
        await wait_until(lambda: screen.page == 2)
        await pilot.pause()
        second = await admin.list_audit(limit=3, cursor=first.next_cursor)
        assert shown(screen) == actions(second.items)
        assert {r.id for r in second.items}.isdisjoint(r.id for r in first.items)
        await pilot.press("left_square_bracket")
        await wait_until(lambda: screen.page == 1)
        await pilot.pause()
        assert shown(screen) == actions(first.items)

        # An action prefix: only session actions, as the API filters them.
        await apply(screen, pilot, action="session.*")
        sessions = await admin.list_audit(action="session.*", limit=3)
        assert shown(screen) == actions(sessions.items)
        assert all(a.startswith("session.") for a in shown(screen))
        # Walk every page of that filter: the screen and the API agree to the end.
        seen = list(shown(screen))
        while screen._next:
            page = screen.page
            await pilot.press("right_square_bracket")
            await wait_until(lambda p=page: screen.page == p + 1)
            await pilot.pause()
            seen += shown(screen)
        every = [r.action async for r in admin.iterate(admin.list_audit, action="session.*")]
        assert seen == every and "session.stop" in every
        assert "última página" in str(screen.query_one("#audit-pager", Static).render())

        # An exact action and an entity type.
        await apply(screen, pilot, action="department.update", entity="department")
        assert shown(screen) == ["department.update"]
        assert "Exames" in str(screen.query_one("#audit-data", Static).render())

        # A person: the admin did all of it, the agent nothing.
        admin_id = str(tui_zapd.t.users["admin"])
        agent_id = str(tui_zapd.t.users["agent"])
        select = screen.query_one("#audit-user", Select)
        await wait_until(lambda: len(select._options) > 1)
        await apply(screen, pilot)
        loads = screen.loads
        select.value = agent_id
        await wait_until(lambda: screen.loads > loads)
        await pilot.pause()
        assert shown(screen) == []
        assert "Nada no registro" in str(screen.query_one("#audit-data", Static).render())
        loads = screen.loads
        select.value = admin_id
        await wait_until(lambda: screen.loads > loads)
        await pilot.pause()
        mine = await admin.list_audit(user_id=tui_zapd.t.users["admin"], limit=3)
        assert shown(screen) == actions(mine.items) != []
        assert str(screen.query_one(DataTable).get_row_at(0)[1]) == "Admin"  # a name, not an id

        # Days: everything happened today; tomorrow onwards is empty.
        select.value = "anyone"
        today = first.items[0].created_at.astimezone().date()
        await apply(screen, pilot, since=today.isoformat(), until=today.isoformat())
        assert shown(screen) == actions(first.items)
        await apply(screen, pilot, since=f"{today + timedelta(days=1):%d/%m/%Y}")
        assert shown(screen) == []


async def test_bad_filters_are_said_and_fetch_nothing(admin: ZapClient) -> None:
    screen = AuditScreen(admin, page_size=5)
    app = Host(screen)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(lambda: screen.loads >= 1)
        await pilot.pause()
        before, loads = shown(screen), screen.loads
        error = screen.query_one("#audit-error", Static)
        for field, value, says in (
            ("action", "Ticket!!", "Ação inválida"),
            ("since", "2026-13-45", "data inválida"),
            ("until", "amanhã", "data inválida"),
        ):
            screen.query_one(f"#audit-{field}", Input).value = value
            screen.query_one(f"#audit-{field}", Input).focus()
            await pilot.press("enter")
            await pilot.pause()
            assert says in str(error.render())
            screen.query_one(f"#audit-{field}", Input).value = ""
        screen.query_one("#audit-since", Input).value = "2026-12-10"
        screen.query_one("#audit-until", Input).value = "2026-12-01"
        await pilot.press("enter")
        await pilot.pause()
        assert "início vem depois do fim" in str(error.render())
        assert screen.loads == loads and shown(screen) == before


async def test_a_supervisor_is_told_no(tui_zapd: TuiZapd) -> None:
    async with ZapClient(tui_zapd.url, token=token_of(tui_zapd, "supervisor")) as sup:
        screen = AuditScreen(sup)
        app = Host(screen)
        async with app.run_test(size=(120, 36)) as pilot:
            error = screen.query_one("#audit-error", Static)
            await wait_until(lambda: str(error.render()) != "")
            await pilot.pause()
            assert screen.loads == 0 and shown(screen) == []
