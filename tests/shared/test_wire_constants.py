"""Wire constants live in shared.errors: the clients compare against its members, never
against string or number literals of their own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ERR_LITERAL = re.compile(r"""["']ERR_[A-Z0-9_]*""")
CLOSE_LITERAL = re.compile(r"\b40(01|08)\b")


def _sources(*packages: str) -> list[Path]:
    return sorted(
        p
        for pkg in packages
        for p in (ROOT / pkg).rglob("*.py")
        if p != ROOT / "shared" / "errors.py"
    )


@pytest.mark.parametrize(
    "path", _sources("shared", "zapctl"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_error_code_literal_outside_shared_errors(path: Path) -> None:
    hits = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ERR_LITERAL.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize("path", _sources("shared/client"), ids=lambda p: p.name)
def test_close_codes_come_from_shared_errors(path: Path) -> None:
    assert not CLOSE_LITERAL.search(path.read_text())
