"""zaptui entry point: `zaptui [--server URL] [--lang pt_BR|en] [--theme dark|light]`.

The language is chosen before the app's modules are imported, since their key bindings
are labelled when their classes are defined.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from zaptui.config import TuiSettings
from zaptui.i18n import set_language


def parse(argv: list[str] | None = None) -> TuiSettings:
    """Settings from the environment (`ZAP_*`) overridden by the command line."""
    p = argparse.ArgumentParser(
        prog="zaptui",
        description="zap agent UI: queues, chats and sessions in the terminal.",
        epilog="Environment: ZAP_SERVER (zapd URL, default http://127.0.0.1:8765), "
        "ZAP_LANG (pt_BR or en), ZAP_THEME (dark or light), ZAP_BELL, ZAP_TOASTS, ZAP_EMAIL.",
    )
    p.add_argument("--server", help="zapd URL (default http://127.0.0.1:8765)")
    p.add_argument("--lang", choices=["pt_BR", "en"], help="language of the interface")
    p.add_argument("--theme", choices=["dark", "light"], help="colour theme")
    p.add_argument("--email", help="pre-fill the login e-mail")
    p.add_argument("--no-bell", action="store_true", help="never ring the terminal bell")
    args = p.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "server": args.server,
            "lang": args.lang,
            "theme": args.theme,
            "email": args.email,
            "bell": False if args.no_bell else None,
        }.items()
        if v is not None
    }
    try:
        return TuiSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "settings"
        sys.stderr.write(f"zaptui: bad setting {where}: {first.get('msg')}\n")
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Run the agent UI."""
    settings = parse(argv)
    set_language(settings.lang)
    from zaptui.app import make_app  # after the language: bindings are labelled at import

    make_app(settings).run()
