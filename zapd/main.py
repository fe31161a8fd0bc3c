"""zapd entry point: parse the command line, load settings once, serve."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zapd",
        description="zap daemon: WhatsApp sessions, database, outbox, HTTP + WebSocket API.",
        epilog=(
            "Environment: ZAP_HOST, ZAP_PORT, ZAP_STATE_DIR, ZAP_DATABASE_URL, ZAP_CONFIG "
            "(TOML file). Example: zapd --state-dir /var/lib/zap --port 8765"
        ),
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8765)")
    p.add_argument("--state-dir", type=Path, help="state directory (default XDG state dir)")
    p.add_argument("--db", dest="database_url", help="database URL (default SQLite in state dir)")
    p.add_argument("--config", type=Path, help="TOML config file (default XDG config dir)")
    p.add_argument(
        "--no-migrate",
        dest="auto_migrate",
        action="store_const",
        const=False,
        help="do not apply pending migrations at start",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    """Run the daemon until SIGTERM/SIGINT."""
    args = _parser().parse_args(argv)
    from pydantic import ValidationError

    from shared.settings import ConfigFileError
    from zapd import config

    overrides = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
    try:
        settings = config.load(config_file=args.config, **overrides)
    except (ConfigFileError, ValidationError) as exc:
        sys.stderr.write(f"zapd: bad configuration: {exc}\n")
        sys.exit(2)

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import uvicorn

    from zapd.api.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            uds=str(settings.unix_socket) if settings.unix_socket else None,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started and os.environ.get("ZAP_DEBUG") != "1":
        sys.exit(1)
