"""zapctl's tables: they fit the terminal, keep their key columns whole, and say whose
each row is when a listing mixes companies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from zapctl.output import by_company, table, terminal_width

ROWS = [
    {
        "id": "0190d1c2-7f00-7000-8000-000000000001",
        "name": "Atendimento ao cliente — matriz",
        "note": "uma observação bem comprida que não cabe em lugar nenhum",
    },
    {"id": "0190d1c2-7f00-7000-8000-000000000002", "name": "Loja", "note": None},
]
COLUMNS = [("name", "NAME"), ("note", "NOTE"), ("id", "ID")]


def test_a_wide_table_fits_the_width_keeping_key_columns_whole() -> None:
    text = table(ROWS, COLUMNS, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    # The first column (the name) and the id are whole; the note is cut with an ellipsis.
    assert "Atendimento ao cliente — matriz" in lines[1]
    assert ROWS[0]["id"] in lines[1] and ROWS[1]["id"] in lines[2]
    assert "…" in lines[1] and "uma obs" in lines[1]
    assert lines[0].split() == ["NAME", "NOTE", "ID"]


def test_a_table_that_fits_is_not_cut_and_piped_output_never_is() -> None:
    assert "…" not in table(ROWS, COLUMNS, width=500)
    assert "…" not in table(ROWS, COLUMNS, width=None)
    assert table([], COLUMNS, width=10) == "(none)"


def test_when_nothing_can_narrow_the_keys_still_print_whole() -> None:
    text = table(ROWS, COLUMNS, width=20)
    assert ROWS[0]["id"] in text and "Atendimento ao cliente — matriz" in text


def test_the_width_comes_from_columns_or_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "66")
    assert terminal_width() == 66
    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert terminal_width() is None


@dataclass
class Row:
    company_id: uuid.UUID | None
    name: str


def test_a_listing_mixing_companies_shows_whose_each_row_is() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    models = [Row(a, "Suporte"), Row(b, "Vendas"), Row(None, "Root")]
    rows = [{"name": m.name} for m in models]
    lines, cols = by_company(rows, models, ["name"], {a: "Acme", b: "Beta"})
    assert cols == [("name", "NAME"), ("company", "COMPANY")]
    assert [r["company"] for r in lines] == ["Acme", "Beta", "(global)"]
    # One company: no extra column.
    lines, cols = by_company([{"name": "x"}], [Row(a, "x")], ["name"], {})
    assert cols == [("name", "NAME")] and "company" not in lines[0]
