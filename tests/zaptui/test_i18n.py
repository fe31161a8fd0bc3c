"""The TUI's strings: one table per language, the same keys, every key the code uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zaptui import i18n

ROOT = Path(__file__).resolve().parents[2] / "zaptui"


def test_both_languages_have_the_same_keys() -> None:
    assert set(i18n.PT_BR) == set(i18n.EN)


def test_every_literal_key_used_by_the_code_exists() -> None:
    used: set[str] = set()
    for path in ROOT.rglob("*.py"):
        used |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"', path.read_text()))
    missing = sorted(k for k in used if k not in i18n.PT_BR)
    assert not missing, missing


def test_language_switch_and_fallback() -> None:
    try:
        assert i18n.set_language("en_US") == "en"
        assert i18n.t("login.submit") == "Log in"
        assert i18n.t("no.such.key") == "no.such.key"
        assert i18n.set_language("pt-BR") == "pt_BR"
        assert i18n.t("login.submit") == "Entrar"
        assert i18n.t("close.done", number=7) == "Ticket #7 encerrado."
    finally:
        i18n.set_language("pt_BR")


@pytest.mark.parametrize("table", [i18n.PT_BR, i18n.EN])
def test_placeholders_match_across_languages(table: dict[str, str]) -> None:
    for key, text in table.items():
        other = i18n.EN.get(key, text) if table is i18n.PT_BR else i18n.PT_BR.get(key, text)
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", other)), key
