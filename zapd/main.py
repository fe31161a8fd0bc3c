"""zapd entry point: parse the command line, load settings once, serve."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

GRACEFUL_SHUTDOWN_SECONDS = 10
WS_MAX_FRAME_BYTES = 64 * 1024


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zapd",
        description="zap daemon: WhatsApp sessions, database, outbox, HTTP + WebSocket API.",
        epilog=(
            "Environment: ZAP_HOST, ZAP_PORT, ZAP_STATE_DIR, ZAP_DATABASE_URL, ZAP_CONFIG "
            "(TOML file), ZAP_LOG_LEVEL (debug|info|warning|error), ZAP_LOG_FORMAT "
            "(auto|json|text; auto = text on a terminal, JSON lines otherwise). "
            "Example: zapd --state-dir /var/lib/zap --port 8765"
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


def _exit_zero_on_sigterm(server: uvicorn.Server) -> None:
    """Make SIGTERM a clean stop: shut down gracefully, then exit 0 (systemd's success).

    uvicorn catches SIGTERM while serving and, once shut down, raises it again against
    the handler that was there before it started; with the default handler the process
    would then die by the signal. This handler is that "before" one: it only asks the
    server to stop, so `main` returns normally. It also covers a SIGTERM that arrives
    before uvicorn took over (during start-up).
    """

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)


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

    from zapd.logging import setup_logging
    from zapd.security import prepare_state_dir
    from zapd.startup import StartupRefused, StateLock, bind_tcp, bind_unix

    setup_logging(settings.log_level, settings.log_format)
    # The state first, then the sockets, and only then the lifespan (sessions, workers).
    try:
        lock = StateLock(prepare_state_dir(settings.state_dir)).acquire()
        sockets = (
            [bind_unix(settings.unix_socket)]
            if settings.unix_socket
            else bind_tcp(settings.host, settings.port)
        )
    except StartupRefused as exc:
        sys.stderr.write(f"zapd: {exc}\n")
        sys.exit(1)
    except OSError as exc:
        sys.stderr.write(f"zapd: cannot use state dir {settings.state_dir}: {exc.strerror}\n")
        sys.exit(1)
    import uvicorn

    from zapd.api.app import create_app
    from zapd.systemd import notify

    class ZapServer(uvicorn.Server):
        """uvicorn's server, telling systemd READY=1 once the listeners are bound."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                where = [str(s.getsockname()) for s in sockets or ()]
                logging.getLogger("zapd").info("zapd listening on %s", ", ".join(where))
                notify("READY=1")

    server = ZapServer(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            uds=str(settings.unix_socket) if settings.unix_socket else None,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            log_config=None,  # ours (zapd.logging) is already in place
            access_log=False,  # zapd.access (the request-id middleware) logs requests
            server_header=False,
            proxy_headers=False,  # zapd is not behind a proxy by default: trust the peer
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
            ws_max_size=WS_MAX_FRAME_BYTES,  # clients send pings and typing flags only
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    _exit_zero_on_sigterm(server)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    lock.release()
    if not server.started and os.environ.get("ZAP_DEBUG") != "1":
        sys.exit(1)
