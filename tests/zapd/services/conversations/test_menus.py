"""The greeting flow's questions as Cloud API lists and buttons, and when they stay text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.enums import FlowState
from zapd.domain.flow import Customer, DepartmentInfo, Flow, FlowConfig
from zapd.services.conversations.menus import menu_messages

NOW = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
LAB = DepartmentInfo(uuid.uuid4(), "Laboratório", "laboratorio", 1)
SALES = DepartmentInfo(uuid.uuid4(), "Comercial", "comercial", 2)


def flow(*depts: DepartmentInfo, locale: str = "pt_BR") -> Flow:
    return Flow(FlowConfig(company_name="Clínica Vida", departments=depts, locale=locale))


def test_menu_is_a_list_whose_rows_answer_with_the_menu_number() -> None:
    f = flow(LAB, SALES)
    step = f.start(Customer(name="Maria"), NOW)
    [(text, interactive)] = menu_messages(f, step, native=True)
    assert "*2* - Comercial" in text  # the plain text stays the body
    assert interactive is not None
    lst = interactive["list"]
    assert lst["body"].startswith("Olá, Maria!") and "Comercial" not in lst["body"]
    assert lst["rows"] == [{"id": "1", "title": "Laboratório"}, {"id": "2", "title": "Comercial"}]
    assert lst["button"] == "Ver setores"
    # The row id is an answer the flow already understands.
    routed = f.handle(step.state, step.data, lst["rows"][1]["id"], NOW)
    assert routed.department_id == SALES.id
    # Not on the Cloud API: text only.
    assert menu_messages(f, step, native=False) == [(text, None)]


def test_invalid_answer_repeats_the_menu_as_a_list() -> None:
    f = flow(LAB, SALES)
    step = f.handle(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, "hã?", NOW)
    [(_, interactive)] = menu_messages(f, step, native=True)
    assert interactive is not None and interactive["list"]["body"].startswith("Desculpe")


def test_menus_that_do_not_fit_stay_text() -> None:
    many = [DepartmentInfo(uuid.uuid4(), f"Setor {i}", f"setor-{i}", i) for i in range(11)]
    f = flow(*many)
    [(_, interactive)] = menu_messages(f, f.start(Customer(), NOW), native=True)
    assert interactive is None  # 11 rows: over Meta's 10
    long = DepartmentInfo(uuid.uuid4(), "Laboratório de Análises Clínicas", "lab", 1)
    f = flow(long, SALES)
    [(_, interactive)] = menu_messages(f, f.start(Customer(), NOW), native=True)
    assert interactive is None  # a title over 24 characters


def test_returning_client_question_is_yes_no_buttons() -> None:
    f = flow(LAB, SALES, locale="en")
    customer = Customer(
        name="Ana", last_department_id=SALES.id, last_served_at=NOW - timedelta(days=2)
    )
    step = f.start(customer, NOW)
    assert step.state is FlowState.AWAITING_ROUTING_CONFIRMATION
    [(text, interactive)] = menu_messages(f, step, native=True)
    assert "*1* - Yes" in text
    assert interactive is not None
    buttons = interactive["buttons"]
    assert buttons["buttons"] == [{"id": "1", "title": "Yes"}, {"id": "2", "title": "No"}]
    assert "*1*" not in buttons["body"] and "Comercial" in buttons["body"]
    assert f.handle(step.state, step.data, "1", NOW).department_id == SALES.id
    no = f.handle(step.state, step.data, "2", NOW)
    assert no.state is FlowState.AWAITING_MENU_CHOICE
    [(_, as_list)] = menu_messages(f, no, native=True)
    assert as_list is not None and "list" in as_list  # "no" shows the menu, as a list


def test_routed_steps_have_no_interactive_part() -> None:
    f = flow(LAB)
    step = f.start(Customer(), NOW)  # one department: routed at once
    assert all(i is None for _, i in menu_messages(f, step, native=True))
