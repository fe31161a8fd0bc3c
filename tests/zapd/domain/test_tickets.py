"""The ticket rules: transitions, capacity, transfer plans, auto-assignment, escalation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.enums import AutoAssignMode, FlowState, TicketStatus
from shared.errors import ErrorCode
from zapd.domain import tickets as rules
from zapd.domain.tickets import Action, Candidate, Placement, Refusal

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))
D1, D2, D3 = (uuid.UUID(int=i) for i in (101, 102, 103))


# --------------------------------------------------------------------------- transitions


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        (Action.ACCEPT, TicketStatus.PENDING, None),
        (Action.ACCEPT, TicketStatus.OPEN, ErrorCode.TICKET_TAKEN),
        (Action.ACCEPT, TicketStatus.CLOSED, ErrorCode.TICKET_CLOSED),
        (Action.ASSIGN, TicketStatus.PENDING, None),
        (Action.ASSIGN, TicketStatus.OPEN, None),
        (Action.ASSIGN, TicketStatus.CLOSED, ErrorCode.TICKET_CLOSED),
        (Action.TRANSFER, TicketStatus.OPEN, None),
        (Action.TRANSFER, TicketStatus.CLOSED, ErrorCode.TICKET_CLOSED),
        (Action.CLOSE, TicketStatus.PENDING, None),
        (Action.CLOSE, TicketStatus.OPEN, None),
        (Action.CLOSE, TicketStatus.CLOSED, ErrorCode.TICKET_CLOSED),
        (Action.REOPEN, TicketStatus.CLOSED, None),
        (Action.REOPEN, TicketStatus.OPEN, ErrorCode.TICKET_NOT_CLOSED),
        (Action.REOPEN, TicketStatus.PENDING, ErrorCode.TICKET_NOT_CLOSED),
        (Action.UPDATE, TicketStatus.CLOSED, None),
        (Action.READ, TicketStatus.CLOSED, None),
    ],
)
def test_transitions(action: Action, status: TicketStatus, code: str | None) -> None:
    got = rules.transition_refusal(action, status, assignee_id=B, taker_id=A)
    assert (got.code if got else None) == code
    if got is not None:
        assert action.value in got.message or "someone else" in got.message


def test_accepting_ones_own_open_ticket_is_allowed() -> None:
    assert (
        rules.transition_refusal(Action.ACCEPT, TicketStatus.OPEN, assignee_id=A, taker_id=A)
        is None
    )
    refusal = rules.transition_refusal(
        Action.ACCEPT, TicketStatus.OPEN, assignee_id=None, taker_id=A
    )
    assert refusal is not None and refusal.code == ErrorCode.TICKET_TAKEN


def test_capacity() -> None:
    assert rules.has_capacity(0, 1) and rules.has_capacity(4, 5)
    assert not rules.has_capacity(5, 5) and not rules.has_capacity(7, 5)
    assert not rules.has_capacity(0, 0)  # a limit of 0 takes nothing
    refusal = rules.capacity_refusal(5, 5)
    assert refusal == Refusal(ErrorCode.AT_CAPACITY, refusal.message if refusal else "")
    assert refusal is not None and "5" in refusal.message
    assert rules.capacity_refusal(2, 5) is None


# --------------------------------------------------------------------------- transfer, reopen


def test_transfer_to_a_department_queues_it_there() -> None:
    plan = rules.plan_transfer(
        department_id=D1,
        assignee_id=A,
        status=TicketStatus.OPEN,
        to_department_id=D2,
        to_user_id=None,
    )
    assert plan == Placement(D2, None, TicketStatus.PENDING, FlowState.ROUTED)


def test_transfer_to_a_user_opens_it_with_them() -> None:
    plan = rules.plan_transfer(
        department_id=D1,
        assignee_id=A,
        status=TicketStatus.OPEN,
        to_department_id=None,
        to_user_id=B,
    )
    assert plan == Placement(D1, B, TicketStatus.OPEN, FlowState.DONE)
    both = rules.plan_transfer(
        department_id=D1,
        assignee_id=None,
        status=TicketStatus.PENDING,
        to_department_id=D2,
        to_user_id=B,
    )
    assert both == Placement(D2, B, TicketStatus.OPEN, FlowState.DONE)


def test_transfer_back_to_own_queue_releases_the_ticket() -> None:
    plan = rules.plan_transfer(
        department_id=D1,
        assignee_id=A,
        status=TicketStatus.OPEN,
        to_department_id=D1,
        to_user_id=None,
    )
    assert plan == Placement(D1, None, TicketStatus.PENDING, FlowState.ROUTED)


@pytest.mark.parametrize(
    ("assignee", "status", "to_dept", "to_user"),
    [
        (None, TicketStatus.PENDING, D1, None),  # already waiting in that queue
        (A, TicketStatus.OPEN, None, A),  # already theirs
        (A, TicketStatus.OPEN, D1, A),
    ],
)
def test_transfer_that_changes_nothing_is_refused(
    assignee: uuid.UUID | None,
    status: TicketStatus,
    to_dept: uuid.UUID | None,
    to_user: uuid.UUID | None,
) -> None:
    plan = rules.plan_transfer(
        department_id=D1,
        assignee_id=assignee,
        status=status,
        to_department_id=to_dept,
        to_user_id=to_user,
    )
    assert isinstance(plan, Refusal) and plan.code == ErrorCode.TRANSFER_NOOP


def test_reopen_placement() -> None:
    assert rules.reopen_placement(D1, A, True) == Placement(
        D1, A, TicketStatus.OPEN, FlowState.DONE
    )
    assert rules.reopen_placement(D1, A, False) == Placement(
        D1, None, TicketStatus.PENDING, FlowState.ROUTED
    )
    assert rules.reopen_placement(D1, None, True).status is TicketStatus.PENDING


# --------------------------------------------------------------------------- auto-assignment


def cand(
    user: uuid.UUID, load: int = 0, cap: int = 5, ago: float | None = None, **kw: bool
) -> Candidate:
    last = None if ago is None else NOW - timedelta(minutes=ago)
    return Candidate(user, load, cap, last, **kw)


def test_round_robin_picks_least_recently_assigned() -> None:
    pool = [cand(A, ago=1), cand(B, ago=30), cand(C, ago=5)]
    assert rules.pick_agent(AutoAssignMode.ROUND_ROBIN, pool) == B
    # Someone never assigned goes first; load does not matter in round-robin.
    pool.append(cand(uuid.UUID(int=9), load=4))
    assert rules.pick_agent(AutoAssignMode.ROUND_ROBIN, pool) == uuid.UUID(int=9)


def test_least_loaded_picks_fewest_open_tickets_then_recency() -> None:
    pool = [cand(A, load=3, ago=60), cand(B, load=1, ago=1), cand(C, load=1, ago=10)]
    assert rules.pick_agent(AutoAssignMode.LEAST_LOADED, pool) == C
    assert rules.pick_agent(AutoAssignMode.LEAST_LOADED, pool, exclude={C}) == B


def test_only_online_active_agents_with_room_are_picked() -> None:
    pool = [
        cand(A, ago=99, online=False),
        cand(B, load=5, cap=5, ago=98),
        cand(C, ago=1, active=False),
    ]
    assert rules.pick_agent(AutoAssignMode.ROUND_ROBIN, pool) is None
    pool.append(cand(uuid.UUID(int=7), ago=0))
    assert rules.pick_agent(AutoAssignMode.LEAST_LOADED, pool) == uuid.UUID(int=7)
    assert rules.pick_agent(AutoAssignMode.OFF, pool) is None
    assert rules.pick_agent(AutoAssignMode.ROUND_ROBIN, []) is None


def test_ties_are_deterministic() -> None:
    pool = [cand(C), cand(A), cand(B)]
    for mode in (AutoAssignMode.ROUND_ROBIN, AutoAssignMode.LEAST_LOADED):
        assert rules.pick_agent(mode, pool) == A
        assert rules.pick_agent(mode, list(reversed(pool))) == A


def test_round_robin_plan_rotates() -> None:
    tickets = [uuid.UUID(int=1000 + i) for i in range(5)]
    pool = [cand(A, ago=10), cand(B, ago=20), cand(C, ago=30)]
    plan = rules.plan_auto_assign(AutoAssignMode.ROUND_ROBIN, tickets, pool, NOW)
    assert [p.user_id for p in plan] == [C, B, A, C, B]
    assert [p.ticket_id for p in plan] == tickets
    assert [p.at for p in plan] == sorted(p.at for p in plan) and plan[0].at == NOW


def test_least_loaded_plan_levels_the_load_and_respects_capacity() -> None:
    tickets = [uuid.UUID(int=1000 + i) for i in range(6)]
    pool = [cand(A, load=3, cap=4, ago=1), cand(B, load=0, cap=2, ago=2), cand(C, load=1, ago=3)]
    plan = rules.plan_auto_assign(AutoAssignMode.LEAST_LOADED, tickets, pool, NOW)
    # B (0 open) → C (1 each: C waited longer) → B → C → A and C at 3: A waited longer
    # (and is then full) → C. B stops at its limit of 2.
    assert [p.user_id for p in plan] == [B, C, B, C, A, C]


def test_plan_stops_when_nobody_has_room() -> None:
    tickets = [uuid.UUID(int=1000 + i) for i in range(4)]
    pool = [cand(A, load=0, cap=1), cand(B, load=1, cap=2)]
    plan = rules.plan_auto_assign(AutoAssignMode.ROUND_ROBIN, tickets, pool, NOW)
    assert len(plan) == 2 and {p.user_id for p in plan} == {A, B}
    assert rules.plan_auto_assign(AutoAssignMode.OFF, tickets, pool, NOW) == []


def why(
    *,
    online: bool = True,
    active: bool = True,
    minutes_ago: float = 5,
    answered: bool = False,
    limit: timedelta | None = timedelta(minutes=10),
) -> rules.ReassignReason | None:
    return rules.reassign_reason(
        assignee_online=online,
        assignee_active=active,
        assigned_at=NOW - timedelta(minutes=minutes_ago),
        answered=answered,
        now=NOW,
        silence_limit=limit,
    )


def test_reassign_reason() -> None:
    assert why() is None
    assert why(online=False) is rules.ReassignReason.OFFLINE
    assert why(active=False) is rules.ReassignReason.OFFLINE
    assert why(online=False, answered=True) is rules.ReassignReason.OFFLINE
    assert why(minutes_ago=11) is rules.ReassignReason.SILENT
    assert why(minutes_ago=11, answered=True) is None
    assert why(minutes_ago=11, limit=None) is None


# --------------------------------------------------------------------------- escalation


def test_escalation_moves_to_an_active_fallback_once() -> None:
    esc = rules.escalation(D1, D2, fallback_active=True, escalated_from=set())
    assert esc == rules.Escalation(D1, D2)
    assert rules.escalation(D1, D2, fallback_active=True, escalated_from={D1}) is None


def test_escalation_without_usable_fallback_stays() -> None:
    assert rules.escalation(D1, None, fallback_active=False, escalated_from=()) == rules.Escalation(
        D1, None
    )
    assert rules.escalation(D1, D2, fallback_active=False, escalated_from=()) == rules.Escalation(
        D1, None
    )
    assert rules.escalation(D1, D1, fallback_active=True, escalated_from=()) == rules.Escalation(
        D1, None
    )


def test_escalation_chain_never_loops() -> None:
    # D1 → D2 (escalated from D1); D2 falls back to D1: it escalates but does not move back.
    assert rules.escalation(D2, D1, fallback_active=True, escalated_from={D1}) == rules.Escalation(
        D2, None
    )
    assert rules.escalation(D2, D3, fallback_active=True, escalated_from={D1}) == rules.Escalation(
        D2, D3
    )


def test_escalated_departments_reads_flow_data() -> None:
    data = {rules.ESCALATED_KEY: [str(D1), "junk", str(D2)], "attempts": 2}
    assert rules.escalated_departments(data) == {D1, D2}
    assert rules.escalated_departments({}) == frozenset()
    assert rules.escalated_departments({rules.ESCALATED_KEY: "nope"}) == frozenset()
