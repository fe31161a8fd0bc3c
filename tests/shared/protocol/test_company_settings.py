"""Company settings as stored: defaults filled, bad values dropped, each read independent."""

from __future__ import annotations

from typing import Any

import pytest

from shared.protocol.companies import CompanySettings


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"menu_max_attempts": 5, "unknown": 1}, {"menu_max_attempts": 5}),
        ({"menu_max_attempts": 99}, {}),  # out of today's bounds: the default
        ({"reopen_window_minutes": [1]}, {}),  # unhashable: read without the cache
        ({1: "x", "returning_client_days": 7}, {"returning_client_days": 7}),  # unorderable
    ],
)
def test_from_stored_fills_defaults_and_drops_what_is_bad(
    stored: Any, expected: dict[str, Any]
) -> None:
    for _ in range(2):  # the second read comes from the cache when there is one
        assert CompanySettings.from_stored(stored).model_dump() == {
            **CompanySettings().model_dump(),
            **expected,
        }


def test_a_read_is_a_copy_nobody_else_sees_changed() -> None:
    stored = {"menu_max_attempts": 4}
    first = CompanySettings.from_stored(stored)
    first.menu_max_attempts = 9
    assert CompanySettings.from_stored(stored).menu_max_attempts == 4


def test_values_equal_in_python_but_of_other_types_are_read_apart() -> None:
    # True == 1 and hash alike: the cache key holds each value's type too.
    assert CompanySettings.from_stored({"agent_name_prefix": 0}).agent_name_prefix is False
    assert CompanySettings.from_stored({"agent_name_prefix": False}).agent_name_prefix is False
    as_bool = CompanySettings.from_stored({"menu_max_attempts": True})
    as_int = CompanySettings.from_stored({"menu_max_attempts": 1})
    assert as_int.menu_max_attempts == 1
    assert (
        as_bool.model_dump()
        == CompanySettings._read_stored({"menu_max_attempts": True}).model_dump()
    )
