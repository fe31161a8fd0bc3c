"""The chat log's wrapping and ticks, and that it renders only what is visible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from shared.enums import MessageStatus
from zaptui.widgets.chat_log import ticks, wrap_cells

TEXT = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])


@given(st.text(alphabet=TEXT, max_size=300), st.integers(min_value=4, max_value=80))
def test_wrapped_lines_fit_and_keep_every_word(text: str, width: int) -> None:
    lines = wrap_cells(text, width)
    for line in lines:
        # A lone wide character may overflow a width below 2; every line fits otherwise.
        assert cell_len(line) <= max(width, 2)
    assert "".join(text.split()) == "".join("".join(lines).split())


def test_ticks_clock_to_read_and_failed() -> None:
    marks = [
        ticks(s, False)[0]
        for s in (
            MessageStatus.QUEUED,
            MessageStatus.SENT,
            MessageStatus.DELIVERED,
            MessageStatus.READ,
            MessageStatus.FAILED,
        )
    ]
    assert marks == ["◷", "✓", "✓✓", "✓✓", "✗"]
    assert ticks(MessageStatus.READ, False)[1] == "chatlog--read"  # coloured
    assert ticks(MessageStatus.QUEUED, True)[1] == "chatlog--pending"
