"""The greeting-menu flow as a pure state machine (no I/O, no clock: `now` is given).

A new ticket starts the flow; every customer message while the ticket is in the flow
goes through `handle`. Each step returns a `Step`: the new flow state and data, the
texts to send to the customer (in order), and the department chosen, if any. The
caller persists the state, queues the texts in the outbox and moves the ticket.

    start ─┬─ one department ───────────────────────────────► ROUTED
           ├─ returning client ─► AWAITING_ROUTING_CONFIRMATION ─ yes ─► ROUTED
           │                                          └─ no ──► AWAITING_MENU_CHOICE
           └─ otherwise ────────► AWAITING_MENU_CHOICE ─ match ─► ROUTED
                                        └─ N invalid answers ─► ROUTED (default department)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.enums import FlowState
from shared.text import fold
from zapd.domain.hours import WEEKDAYS, Hours, is_open, next_opening
from zapd.domain.texts import MENU_NUMBER_WORDS, NO_WORDS, YES_WORDS, Texts

_PUNCT = re.compile(r"[^\w\s]|_")
_NUMBER = re.compile(r"[0-9]{1,3}")


def _answer(text: str) -> str:
    """Fold an answer for matching: lower case, no accents, punctuation as spaces."""
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


def _menu_number(answer: str) -> int | None:
    """Return the option number when the whole answer is one ("2", "opcao 2"), else None."""
    tokens = answer.split()
    if len(tokens) == 2 and tokens[0] in MENU_NUMBER_WORDS:
        tokens = tokens[1:]
    if len(tokens) == 1 and _NUMBER.fullmatch(tokens[0]):
        return int(tokens[0])
    return None


@dataclass(frozen=True)
class DepartmentInfo:
    """What the flow needs to know about a department."""

    id: uuid.UUID
    name: str
    slug: str
    menu_order: int = 0
    keywords: Sequence[str] = ()
    greeting: str | None = None  # sent when a customer lands in this queue
    out_of_hours_message: str | None = None
    business_hours: Hours = field(default_factory=dict)
    timezone: str = "America/Sao_Paulo"


@dataclass(frozen=True)
class FlowConfig:
    """Flow settings of a company, possibly overridden by the session."""

    company_name: str
    departments: Sequence[DepartmentInfo]  # the active ones
    default_department_id: uuid.UUID | None = None  # after too many invalid answers
    max_attempts: int = 3
    returning_client_days: int = 30
    locale: str = "pt_BR"
    text_overrides: Mapping[str, str] = field(default_factory=dict)

    def menu(self) -> list[DepartmentInfo]:
        """Return the departments in menu order (sorted once: the config is frozen)."""
        found: tuple[DepartmentInfo, ...] | None = self.__dict__.get("_menu")
        if found is None:
            found = tuple(sorted(self.departments, key=lambda d: (d.menu_order, fold(d.name))))
            object.__setattr__(self, "_menu", found)
        return list(found)

    def department(self, department_id: uuid.UUID | None) -> DepartmentInfo | None:
        """Return the department with this id, if active."""
        return next((d for d in self.departments if d.id == department_id), None)


@dataclass(frozen=True)
class Customer:
    """Who is writing, and whom they talked to last."""

    name: str | None = None
    last_department_id: uuid.UUID | None = None
    last_served_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    """The outcome of one flow step."""

    state: FlowState
    data: dict[str, Any]
    replies: list[str]
    department_id: uuid.UUID | None = None  # set when the customer was routed
    out_of_hours: bool = False
    reason: str = ""  # "menu", "single", "returning", "default", "keyword"...


class Flow:
    """Greeting menu and routing for one company/session configuration."""

    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        self.texts = Texts(config.locale, config.text_overrides)
        self._menu_text: str | None = None

    # ------------------------------------------------------------------ entry points

    def start(self, customer: Customer, now: datetime) -> Step:
        """Greet a customer whose ticket was just opened."""
        menu = self.config.menu()
        if not menu:
            # Nothing to choose from: queue without a department, agents see it.
            return Step(FlowState.ROUTED, {}, [self._greeting(customer)], None, reason="none")
        if len(menu) == 1:
            return self._route(menu[0], now, {}, [self._greeting(customer)], "single")
        last = self._returning_department(customer, now)
        if last is not None:
            question = self.texts.render(
                "returning_question", comma_name=self._comma_name(customer), department=last.name
            )
            data = {"attempts": 0, "candidate": str(last.id)}
            return Step(FlowState.AWAITING_ROUTING_CONFIRMATION, data, [question])
        return Step(
            FlowState.AWAITING_MENU_CHOICE,
            {"attempts": 0},
            [self._greeting(customer) + "\n\n" + self.menu_text()],
        )

    def handle(self, state: FlowState, data: Mapping[str, Any], text: str, now: datetime) -> Step:
        """Process a customer's answer while the ticket is in the flow."""
        data = dict(data)
        if state == FlowState.AWAITING_MENU_CHOICE:
            return self._on_menu_answer(data, text, now)
        if state == FlowState.AWAITING_ROUTING_CONFIRMATION:
            return self._on_confirmation(data, text, now)
        # NEW is handled by start(); ROUTED and DONE: the flow stays quiet.
        return Step(state, data, [])

    # ------------------------------------------------------------------ matching

    def match(self, text: str) -> DepartmentInfo | None:
        """Find the department an answer *is*: its menu number, or a name/keyword in words.

        A number counts only as the whole answer ("2", "2.", "*2*", "opção 2"); a name,
        slug or keyword counts when it appears as whole words ("quero um orçamento"), in
        exactly one department. Anything else ("pedido 4 atrasado", "lab") is no choice.
        """
        answer = _answer(text)
        if not answer:
            return None
        menu = self.config.menu()
        number = _menu_number(answer)
        if number is not None:
            return menu[number - 1] if 1 <= number <= len(menu) else None
        padded = f" {answer} "
        by_word = [d for d in menu if any(f" {n} " in padded for n in self._names(d))]
        if len(by_word) == 1:
            return by_word[0]
        return None

    @staticmethod
    def _names(d: DepartmentInfo) -> set[str]:
        names = {fold(d.name), fold(d.slug).replace("-", " "), fold(d.slug)}
        names.update(fold(k) for k in d.keywords if k.strip())
        return {n for n in names if n}

    # ------------------------------------------------------------------ steps

    def _on_menu_answer(self, data: dict[str, Any], text: str, now: datetime) -> Step:
        chosen = self.match(text)
        if chosen is not None:
            return self._route(chosen, now, {}, [], "menu")
        attempts = int(data.get("attempts", 0)) + 1
        if attempts >= self.config.max_attempts:
            fallback = self._default_department()
            if fallback is not None:
                note = self.texts.render("routed_default", department=fallback.name)
                return self._route(fallback, now, {"attempts": attempts}, [note], "default")
            return Step(FlowState.ROUTED, {"attempts": attempts}, [], None, reason="default")
        reply = self.texts.render("invalid_option") + "\n\n" + self.menu_text()
        return Step(FlowState.AWAITING_MENU_CHOICE, {"attempts": attempts}, [reply])

    def _on_confirmation(self, data: dict[str, Any], text: str, now: datetime) -> Step:
        answer = _answer(text)
        candidate = self._candidate(data)
        if answer in YES_WORDS and candidate is not None:
            return self._route(candidate, now, {}, [], "returning")
        if answer in NO_WORDS or candidate is None:
            return Step(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, [self.menu_text()])
        # A department named outright ("financeiro") is an answer too — but never a
        # number: only 1 and 2 are answers here, and they mean yes and no.
        if not any(ch.isdigit() for ch in answer):
            named = self.match(text)
            if named is not None:
                return self._route(named, now, {}, [], "menu")
        attempts = int(data.get("attempts", 0)) + 1
        if attempts >= self.config.max_attempts:
            return Step(FlowState.AWAITING_MENU_CHOICE, {"attempts": 0}, [self.menu_text()])
        return Step(
            FlowState.AWAITING_ROUTING_CONFIRMATION,
            {**data, "attempts": attempts},
            [self.texts.render("returning_invalid")],
        )

    def _route(
        self,
        dept: DepartmentInfo,
        now: datetime,
        data: dict[str, Any],
        replies: list[str],
        reason: str,
    ) -> Step:
        replies = list(replies)
        open_now = is_open(dept.business_hours, dept.timezone, now)
        if not open_now:
            replies.append(self._out_of_hours_text(dept, now))
        else:
            replies.append(
                dept.greeting
                if dept.greeting
                else self.texts.render("queued", department=dept.name)
            )
        return Step(
            FlowState.ROUTED, data, replies, dept.id, out_of_hours=not open_now, reason=reason
        )

    # ------------------------------------------------------------------ texts

    def menu_text(self) -> str:
        """Render the numbered department menu (once per flow: config and texts are fixed)."""
        if self._menu_text is None:
            lines = [self.texts.render("menu_header")]
            lines += [
                self.texts.render("menu_line", number=i, department=d.name)
                for i, d in enumerate(self.config.menu(), start=1)
            ]
            lines.append(self.texts.render("menu_footer"))
            self._menu_text = "\n".join(lines)
        return self._menu_text

    def _greeting(self, customer: Customer) -> str:
        return self.texts.render(
            "greeting", comma_name=self._comma_name(customer), company=self.config.company_name
        )

    @staticmethod
    def _comma_name(customer: Customer) -> str:
        first = (customer.name or "").strip().split(" ")[0]
        return f", {first}" if first else ""

    def _out_of_hours_text(self, dept: DepartmentInfo, now: datetime) -> str:
        if dept.out_of_hours_message:
            return dept.out_of_hours_message
        opening = next_opening(dept.business_hours, dept.timezone, now)
        when = ""
        if opening is not None:
            when = self.texts.render(
                "next_opening",
                weekday=self.texts.raw("weekday_" + WEEKDAYS[opening.weekday()]),
                time=opening.strftime("%H:%M"),
            )
        return self.texts.render("out_of_hours", department=dept.name, next_opening=when)

    # ------------------------------------------------------------------ helpers

    def _returning_department(self, customer: Customer, now: datetime) -> DepartmentInfo | None:
        if customer.last_department_id is None or customer.last_served_at is None:
            return None
        age = now - customer.last_served_at
        if age.days >= self.config.returning_client_days or age.total_seconds() < 0:
            return None
        return self.config.department(customer.last_department_id)

    def _candidate(self, data: Mapping[str, Any]) -> DepartmentInfo | None:
        raw = data.get("candidate")
        try:
            return self.config.department(uuid.UUID(str(raw))) if raw else None
        except ValueError:
            return None

    def _default_department(self) -> DepartmentInfo | None:
        chosen = self.config.department(self.config.default_department_id)
        if chosen is not None:
            return chosen
        menu = self.config.menu()
        return menu[0] if menu else None


def with_departments(config: FlowConfig, departments: Sequence[DepartmentInfo]) -> FlowConfig:
    """Return `config` with another department list (e.g. a session's subset)."""
    return replace(config, departments=tuple(departments))
