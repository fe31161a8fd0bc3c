"""`zapctl doctor`: which daemon it checks, chosen before the checks run.

The checks themselves live in zapctl.maintenance. This module decides the daemon: an
explicit --server (or ZAP_SERVER, or zapctl.toml) wins; otherwise, with --state-dir, the
zapd that serves that state dir — at the address zapd's own configuration gives it
(ZAP_HOST/ZAP_PORT, zapd.toml) — not the default URL or the last login. Either way the
daemon check's detail names the URL it checked, and a note on stderr says why.
"""

from __future__ import annotations

import typer

from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import notice, state


def doctor(ctx: typer.Context, state_dir: StateDirOpt = None, db: DbOpt = None) -> None:
    """Check that this zap instance is healthy; exit 1 if any check fails.

    Checks: zapd answers /healthz (at --server; with --state-dir and no --server, the
    zapd configured for that state dir: ZAP_HOST/ZAP_PORT or zapd.toml); the database
    opens and its schema is current; Chromium is installed and runs (only a warning
    until the webjs engine is used); an OS keyring keeps logins (warning when a file is
    used instead); the state dir is 0700 and jwt.secret 0600; zapd's clock agrees with
    this machine's (warning past 30 s). --json prints the list of checks.

    Examples:

      zapctl doctor

      zapctl doctor --state-dir /var/lib/zap

      zapctl --server http://10.0.0.5:8765 --json doctor --db postgresql://zap@db/zap
    """
    from zapctl import api, maintenance
    from zapctl.offline import daemon_url

    if state_dir is not None and state(ctx).server is None:
        chosen = "server" in api.settings(ctx).model_fields_set  # zapctl.toml names one
        url = None if chosen else daemon_url(state_dir)
        if url is not None:
            state(ctx).server = url
            ctx.find_root()._zap_settings = None  # type: ignore[attr-defined]
            notice(
                f"checking the zapd configured for {state_dir}: {url} (--server to pick another)"
            )
    maintenance.doctor(ctx, state_dir, db)
