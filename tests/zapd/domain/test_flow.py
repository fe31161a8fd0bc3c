"""The greeting-menu state machine, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.enums import FlowState
from zapd.domain.flow import Customer, DepartmentInfo, Flow, FlowConfig

LAB = DepartmentInfo(uuid.uuid4(), "Laboratório", "laboratorio", 1, ("exame", "coleta"))
SALES = DepartmentInfo(uuid.uuid4(), "Comercial", "comercial", 2, ("orçamento", "preço"))
FIN = DepartmentInfo(uuid.uuid4(), "Financeiro", "financeiro", 3, ("boleto",))
ADM = DepartmentInfo(uuid.uuid4(), "Administrativo", "administrativo", 4)
DEPTS = (LAB, SALES, FIN, ADM)
# A Wednesday, 15:00 in São Paulo (18:00 UTC).
NOW = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)


def flow(**kw: object) -> Flow:
    cfg = {"company_name": "Clínica Vida", "departments": DEPTS, **kw}
    return Flow(FlowConfig(**cfg))  # type: ignore[arg-type]


def test_new_customer_gets_greeting_and_numbered_menu() -> None:
    step = flow().start(Customer(name="Maria Silva"), NOW)
    assert step.state is FlowState.AWAITING_MENU_CHOICE
    assert step.department_id is None
    (text,) = step.replies
    assert text.startswith("Olá, Maria! Bem-vindo(a) ao atendimento da Clínica Vida.")
    assert "*1* - Laboratório\n*2* - Comercial\n*3* - Financeiro\n*4* - Administrativo" in text


@pytest.mark.parametrize(
    ("answer", "dept"),
    [
        ("1", LAB),
        ("2", SALES),
        (" 3 ", FIN),
        ("4.", ADM),
        ("opção 2", SALES),
        ("*2*", SALES),
        ("2)", SALES),
        ("  02 !", SALES),
        ("Option 3", FIN),
        ("Financeiro.", FIN),
        ("sobre o BOLETO, por favor", FIN),
        ("laboratório", LAB),
        ("Laboratorio", LAB),
        ("LABORATÓRIO!", LAB),
        ("laboratorio", LAB),
        ("comercial", SALES),
        ("quero um orçamento", SALES),
        ("preco", SALES),
        ("boleto", FIN),
        ("Exame", LAB),
    ],
)
def test_answers_match_by_number_name_slug_keyword(answer: str, dept: DepartmentInfo) -> None:
    step = flow().handle(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, answer, NOW)
    assert step.state is FlowState.ROUTED
    assert step.department_id == dept.id
    assert step.replies == [
        f"Você está na fila de *{dept.name}*. Em breve um atendente falará com você."
    ]


@pytest.mark.parametrize(
    "answer",
    [
        "0", "5", "99", "", "  ", "oi", "la", "quero falar", "a",
        # Stray digits are not choices: only a number that is the whole answer is.
        "pedido 4 atrasado", "meu pedido 2", "tenho 2 filhos", "12/11", "2 3", "1234",
        "opção", "opção 2 e 3",
        # Names count as whole words only; prefixes and parts of words do not.
        "lab", "fin", "admin", "comerciais", "financeiros",
    ],
)  # fmt: skip
def test_invalid_answer_reprompts(answer: str) -> None:
    step = flow().handle(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, answer, NOW)
    assert step.state is FlowState.AWAITING_MENU_CHOICE
    assert step.data == {"attempts": 1}
    assert step.department_id is None
    assert step.replies[0].startswith("Desculpe, não entendi sua resposta.")
    assert "*1* - Laboratório" in step.replies[0]


def test_ambiguous_prefix_is_invalid() -> None:
    a = DepartmentInfo(uuid.uuid4(), "Suporte Técnico", "suporte-tecnico", 1)
    b = DepartmentInfo(uuid.uuid4(), "Suporte Comercial", "suporte-comercial", 2)
    f = flow(departments=(a, b))
    assert f.match("suporte") is None
    assert f.match("suporte tecnico") == a


def test_after_max_attempts_goes_to_default_department() -> None:
    f = flow(default_department_id=FIN.id, max_attempts=3)
    s1 = f.handle(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, "xyz", NOW)
    s2 = f.handle(s1.state, s1.data, "xyz", NOW)
    assert s2.state is FlowState.AWAITING_MENU_CHOICE and s2.data == {"attempts": 2}
    s3 = f.handle(s2.state, s2.data, "xyz", NOW)
    assert s3.state is FlowState.ROUTED and s3.department_id == FIN.id
    assert s3.reason == "default"
    assert (
        s3.replies[0] == "Não consegui identificar o setor. Vou encaminhar você para *Financeiro*."
    )


def test_default_department_falls_back_to_first_in_menu() -> None:
    f = flow(max_attempts=1)
    step = f.handle(FlowState.AWAITING_MENU_CHOICE, {}, "???", NOW)
    assert step.department_id == LAB.id


def test_single_department_skips_the_menu() -> None:
    step = flow(departments=(SALES,)).start(Customer(), NOW)
    assert step.state is FlowState.ROUTED and step.department_id == SALES.id
    assert step.reason == "single"
    assert step.replies[0] == "Olá! Bem-vindo(a) ao atendimento da Clínica Vida."


def test_returning_client_is_asked_to_go_back() -> None:
    f = flow(returning_client_days=30)
    cust = Customer(name="João", last_department_id=LAB.id, last_served_at=NOW - timedelta(days=3))
    step = f.start(cust, NOW)
    assert step.state is FlowState.AWAITING_ROUTING_CONFIRMATION
    assert "atendido(a) por *Laboratório*" in step.replies[0]
    assert "*1* - Sim" in step.replies[0]
    yes = f.handle(step.state, step.data, "1", NOW)
    assert yes.state is FlowState.ROUTED and yes.department_id == LAB.id
    assert yes.reason == "returning"
    yes2 = f.handle(step.state, step.data, "Sim!", NOW)
    assert yes2.department_id == LAB.id
    no = f.handle(step.state, step.data, "não", NOW)
    assert no.state is FlowState.AWAITING_MENU_CHOICE and no.department_id is None
    assert "*1* - Laboratório" in no.replies[0]
    named = f.handle(step.state, step.data, "financeiro", NOW)
    assert named.department_id == FIN.id
    for yes_word in ("s", "Sim.", "YES", "claro!", "1."):
        assert f.handle(step.state, step.data, yes_word, NOW).department_id == LAB.id, yes_word
    for no_word in ("n", "Nao", "no", "2", "não, obrigado"):
        assert f.handle(step.state, step.data, no_word, NOW).state is (
            FlowState.AWAITING_MENU_CHOICE
        ), no_word
    # Other numbers, and digits inside a sentence, are neither yes, no nor a department.
    for stray in ("4", "3", "pedido 4 atrasado", "financeiro 3", "sim 4"):
        again = f.handle(step.state, step.data, stray, NOW)
        assert again.state is FlowState.AWAITING_ROUTING_CONFIRMATION, stray
        assert again.department_id is None
    bad = f.handle(step.state, step.data, "talvez", NOW)
    assert bad.state is FlowState.AWAITING_ROUTING_CONFIRMATION
    assert bad.replies == ["Por favor, responda *1* para Sim ou *2* para Não."]


def test_returning_window_and_vanished_department() -> None:
    f = flow(returning_client_days=30)
    old = Customer(last_department_id=LAB.id, last_served_at=NOW - timedelta(days=31))
    assert f.start(old, NOW).state is FlowState.AWAITING_MENU_CHOICE
    gone = Customer(last_department_id=uuid.uuid4(), last_served_at=NOW - timedelta(days=1))
    assert f.start(gone, NOW).state is FlowState.AWAITING_MENU_CHOICE


def test_out_of_hours_still_routes_with_the_message() -> None:
    hours = {d: [("08:00", "12:00")] for d in ("mon", "tue", "wed", "thu", "fri")}
    lab = DepartmentInfo(LAB.id, LAB.name, LAB.slug, 1, business_hours=hours)
    f = flow(departments=(lab, SALES))
    step = f.handle(FlowState.AWAITING_MENU_CHOICE, {}, "1", NOW)  # Wed 15:00 local
    assert step.state is FlowState.ROUTED and step.department_id == LAB.id
    assert step.out_of_hours is True
    assert step.replies == [
        "Nosso horário de atendimento em *Laboratório* já encerrou. Sua mensagem ficou "
        "registrada e responderemos assim que possível, a partir de quinta-feira às 08:00."
    ]
    custom = DepartmentInfo(
        LAB.id, LAB.name, LAB.slug, 1, business_hours=hours, out_of_hours_message="Voltamos amanhã!"
    )
    s2 = flow(departments=(custom, SALES)).handle(FlowState.AWAITING_MENU_CHOICE, {}, "1", NOW)
    assert s2.replies == ["Voltamos amanhã!"]


def test_department_greeting_replaces_queue_text() -> None:
    lab = DepartmentInfo(LAB.id, LAB.name, LAB.slug, 1, greeting="Bem-vindo ao laboratório!")
    step = flow(departments=(lab, SALES)).handle(FlowState.AWAITING_MENU_CHOICE, {}, "1", NOW)
    assert step.replies == ["Bem-vindo ao laboratório!"]


def test_routed_and_done_tickets_get_no_flow_replies() -> None:
    for state in (FlowState.ROUTED, FlowState.DONE):
        step = flow().handle(state, {}, "1", NOW)
        assert step.state is state and step.replies == [] and step.department_id is None


def test_english_locale_and_overrides() -> None:
    f = flow(locale="en-US", text_overrides={"menu_footer": "Type a number."})
    text = f.start(Customer(name="Ann"), NOW).replies[0]
    assert text.startswith("Hello, Ann! Welcome to Clínica Vida.")
    assert text.endswith("Type a number.")


def test_no_departments_queues_without_department() -> None:
    step = flow(departments=()).start(Customer(), NOW)
    assert step.state is FlowState.ROUTED and step.department_id is None
