"""Acks only move forward, whatever order they arrive in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.enums import MessageStatus as S
from zapd.domain.acks import advance, fold_acks, from_cloud, from_webjs

FORWARD = [S.SENT, S.DELIVERED, S.READ]


def test_engine_codes() -> None:
    assert [from_webjs(c) for c in (-1, 0, 1, 2, 3, 4, 9)] == [
        S.FAILED,
        S.QUEUED,
        S.SENT,
        S.DELIVERED,
        S.READ,
        S.PLAYED,
        None,
    ]
    assert [from_cloud(s) for s in ("sent", "DELIVERED", "read", "failed", "x")] == [
        S.SENT,
        S.DELIVERED,
        S.READ,
        S.FAILED,
        None,
    ]


def test_out_of_order_ends_at_read() -> None:
    assert fold_acks(S.QUEUED, [S.READ, S.SENT, S.DELIVERED]) == [S.READ]
    assert fold_acks(S.QUEUED, [S.DELIVERED, S.SENT, S.READ]) == [S.DELIVERED, S.READ]
    assert advance(S.READ, S.DELIVERED) is None
    assert advance(S.DELIVERED, S.FAILED) is None  # delivered cannot fail afterwards
    assert advance(S.SENT, S.FAILED) is S.FAILED


@given(st.permutations(FORWARD))
def test_any_arrival_order_ends_at_the_highest(order: list[S]) -> None:
    taken = fold_acks(S.QUEUED, order)
    assert taken[-1] is S.READ
    assert [s.rank for s in taken] == sorted(s.rank for s in taken)  # strictly forward
    assert len(set(taken)) == len(taken)


@given(st.lists(st.sampled_from(list(S)), max_size=12))
def test_status_never_moves_backwards(acks: list[S]) -> None:
    current = S.QUEUED
    for s in acks:
        nxt = advance(current, s)
        if nxt is not None:
            assert current not in (S.FAILED, S.RECEIVED)
            assert nxt is S.FAILED or nxt.rank > current.rank
            current = nxt
