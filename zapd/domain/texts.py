"""Every text zap sends to customers, per locale, in one place (pt_BR by default).

Templates use `$name` placeholders (string.Template). Companies and sessions may
override any key through their flow settings; unknown placeholders are left as-is so a
typo in an override never crashes the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template

DEFAULT_LOCALE = "pt_BR"

CATALOG: dict[str, dict[str, str]] = {
    "pt_BR": {
        "greeting": "Olá$comma_name! Bem-vindo(a) ao atendimento da $company.",
        "menu_header": "Por favor, escolha o setor com o qual deseja falar:",
        "menu_line": "*$number* - $department",
        "menu_footer": "Responda com o número ou o nome do setor.",
        "invalid_option": "Desculpe, não entendi sua resposta.",
        "routed_default": (
            "Não consegui identificar o setor. Vou encaminhar você para *$department*."
        ),
        "queued": "Você está na fila de *$department*. Em breve um atendente falará com você.",
        "returning_question": (
            "Olá$comma_name! Da última vez você foi atendido(a) por *$department*. "
            "Deseja voltar a falar com esse setor?\n*1* - Sim\n*2* - Não"
        ),
        "returning_invalid": "Por favor, responda *1* para Sim ou *2* para Não.",
        "out_of_hours": (
            "Nosso horário de atendimento em *$department* já encerrou. "
            "Sua mensagem ficou registrada e responderemos assim que possível$next_opening."
        ),
        "next_opening": ", a partir de $weekday às $time",
        "transferred": "Você foi transferido(a) para *$department*.",
        "transferred_agent": "Você foi transferido(a) para *$agent* (*$department*).",
        "closed": "Atendimento encerrado. Obrigado pelo contato!",
        "escalated": "Seu atendimento foi encaminhado para *$department* para ser mais rápido.",
        "agent_prefix": "*$agent - $department*:",
        # System lines: internal notes in a ticket's history, never sent to the customer.
        "sys_client_erased": "Cliente apagado (LGPD): atendimento encerrado pelo sistema.",
        "sys_user_disabled": "$agent foi desativado(a): atendimento devolvido à fila do setor.",
        "menu_button": "Ver setores",  # list-message button (WhatsApp Cloud API), ≤ 20 chars
        "button_yes": "Sim",
        "button_no": "Não",
        "weekday_mon": "segunda-feira",
        "weekday_tue": "terça-feira",
        "weekday_wed": "quarta-feira",
        "weekday_thu": "quinta-feira",
        "weekday_fri": "sexta-feira",
        "weekday_sat": "sábado",
        "weekday_sun": "domingo",
    },
    "en": {
        "greeting": "Hello$comma_name! Welcome to $company.",
        "menu_header": "Please choose the department you want to talk to:",
        "menu_line": "*$number* - $department",
        "menu_footer": "Reply with the number or the name of the department.",
        "invalid_option": "Sorry, I did not understand your answer.",
        "routed_default": (
            "I could not tell which department you meant. Sending you to *$department*."
        ),
        "queued": "You are in the *$department* queue. An agent will talk to you soon.",
        "returning_question": (
            "Hello$comma_name! Last time you were served by *$department*. "
            "Do you want to talk to them again?\n*1* - Yes\n*2* - No"
        ),
        "returning_invalid": "Please answer *1* for Yes or *2* for No.",
        "out_of_hours": (
            "*$department* is closed right now. Your message was recorded and we will "
            "answer as soon as possible$next_opening."
        ),
        "next_opening": ", from $weekday at $time",
        "transferred": "You were transferred to *$department*.",
        "transferred_agent": "You were transferred to *$agent* (*$department*).",
        "closed": "This conversation is closed. Thank you for reaching out!",
        "escalated": "Your request was forwarded to *$department* to be answered sooner.",
        "agent_prefix": "*$agent - $department*:",
        # System lines: internal notes in a ticket's history, never sent to the customer.
        "sys_client_erased": "Client erased (LGPD): conversation closed by the system.",
        "sys_user_disabled": "$agent was disabled: conversation returned to the queue.",
        "menu_button": "Departments",
        "button_yes": "Yes",
        "button_no": "No",
        "weekday_mon": "Monday",
        "weekday_tue": "Tuesday",
        "weekday_wed": "Wednesday",
        "weekday_thu": "Thursday",
        "weekday_fri": "Friday",
        "weekday_sat": "Saturday",
        "weekday_sun": "Sunday",
    },
}

# Whole answers that mean yes / no to the returning-client question (folded: lower case,
# no accents, punctuation as spaces). 1 and 2 are the only numbers: the question lists them.
YES_WORDS = frozenset(
    {
        "1", "sim", "s", "ss", "sim sim", "claro", "claro que sim", "com certeza", "isso",
        "pode", "pode ser", "quero", "sim quero", "sim por favor", "ok", "okay",
        "yes", "y", "yeah", "yep", "sure", "yes please",
    }
)  # fmt: skip
NO_WORDS = frozenset(
    {
        "2", "nao", "n", "nao quero", "nao obrigado", "nao obrigada", "outro", "outros",
        "outra", "outro setor", "no", "nope", "no thanks", "other",
    }
)  # fmt: skip
# Words a customer may put before the number of a menu option ("opção 2", "option 2").
MENU_NUMBER_WORDS = frozenset({"opcao", "op", "numero", "num", "option", "number"})


def normalize_locale(locale: str | None) -> str:
    """Map "pt-BR", "pt", "en_US"... to a catalog key (pt_BR when unknown)."""
    if not locale:
        return DEFAULT_LOCALE
    key = locale.replace("-", "_")
    if key in CATALOG:
        return key
    lang = key.split("_")[0].lower()
    if lang == "en":
        return "en"
    return DEFAULT_LOCALE


class Texts:
    """The texts of one locale, with optional per-company or per-session overrides."""

    def __init__(self, locale: str | None = None, overrides: Mapping[str, str] | None = None):
        self.locale = normalize_locale(locale)
        self._table = {**CATALOG[self.locale], **(overrides or {})}

    def raw(self, key: str) -> str:
        """Return the template of `key`."""
        return self._table[key]

    def render(self, key: str, **values: object) -> str:
        """Fill the template of `key` with `values`."""
        return Template(self._table[key]).safe_substitute(
            {k: "" if v is None else str(v) for k, v in values.items()}
        )


def session_overrides(flow_config: Mapping[str, object] | None) -> dict[str, str]:
    """Return the text overrides of a session's flow settings (`texts`; {} if none or bad).

    The one reading of `flow_config["texts"]`: the greeting flow, the agents' name prefix
    and the ticket notices all take a session's overrides from here.
    """
    raw = (flow_config or {}).get("texts")
    if not isinstance(raw, Mapping):
        return {}
    return {str(key): str(value) for key, value in raw.items()}
