"""Every user-facing string of zaptui, in Brazilian Portuguese (default) and English.

Invariants:
- Code never spells a user-facing sentence: it calls `t("key", **fields)`.
- Every key exists in `PT_BR`; `EN` may lag behind, and a missing English key falls back
  to the Portuguese text (a missing key everywhere is a bug and shows the key itself).
- The language is process-wide: `set_language("en")` (the app calls it from its config,
  `ZAP_LANG`), and the change applies to every string rendered after it.
- Sections: the agent UI first, then the supervisor/admin screens (owned by the admin
  screens' author) in their own clearly marked block. Keep keys `area.thing` and sorted
  inside a section.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("pt_BR", "en")
DEFAULT_LANGUAGE: Final = "pt_BR"

_current: str = DEFAULT_LANGUAGE


def set_language(lang: str) -> str:
    """Use `lang` from now on ("pt_BR", "pt", "en", "en_US"...); return the language chosen."""
    global _current
    norm = lang.replace("-", "_").strip()
    if norm.lower().startswith("en"):
        _current = "en"
    else:
        _current = DEFAULT_LANGUAGE
    return _current


def language() -> str:
    """Return the language in use."""
    return _current


def t(key: str, /, **fields: object) -> str:
    """Return the text of `key` in the current language, with `{fields}` filled in."""
    table = EN if _current == "en" else PT_BR
    text = table.get(key)
    if text is None:
        text = PT_BR.get(key, key)
    return text.format(**fields) if fields else text


# =========================================================================== agent UI
# (zaptui/app.py, main.py, screens/login.py, screens/main.py, widgets, modals)

PT_BR: dict[str, str] = {
    "app.title": "zap — atendimento",
    "app.subtitle": "{name} · {company}",
    "app.bell_on": "Sinal sonoro ligado",
    "app.bell_off": "Sinal sonoro desligado",
    "app.theme": "Alternar tema claro/escuro",
    "app.language": "Idioma: {lang}",
}

EN: dict[str, str] = {
    "app.title": "zap — customer service",
    "app.subtitle": "{name} · {company}",
    "app.bell_on": "Terminal bell on",
    "app.bell_off": "Terminal bell off",
    "app.theme": "Toggle light/dark theme",
    "app.language": "Language: {lang}",
}

# =========================================================================== admin screens
# (zaptui/screens/sessions.py, qr.py, metrics.py, audit.py, widgets/qr.py)
# Owned by the admin screens' author: add keys below with PT_BR.update / EN.update.

PT_BR.update({})
EN.update({})
