"""zaptui entry point."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; the agent UI itself arrives with its own issue."""
    p = argparse.ArgumentParser(
        prog="zaptui",
        description="zap agent UI: queues, chats and sessions in the terminal.",
        epilog="Environment: ZAP_SERVER (zapd URL, default http://127.0.0.1:8765).",
    )
    p.add_argument("--server", help="zapd URL (default http://127.0.0.1:8765)")
    p.parse_args(argv)
    sys.stderr.write("zaptui: the agent UI is not built yet (tracked in the issue tracker)\n")
    sys.exit(1)
