"""`python -m bench SUBCOMMAND [options]`: run one benchmark, print one JSON document.

This is what `zapctl bench` runs in a child process (zapctl may not import zapd or
bench). Bad input and failures are one line on stderr, `bench: <message>`, with exit
code 2 (bad input) or 1 (the run failed); stdout then holds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from bench.common import BenchError, database_kind, fresh_database, usage, workdir

DEFAULT_DURATION = 10.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise usage(message)


def _positive(name: str, value: float | None, *, top: float, allow_none: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise usage(f"{name} is required")
    if not 0 < value <= top:
        raise usage(f"{name} must be more than 0 and at most {top:g} (got {value:g})")


def parser() -> argparse.ArgumentParser:
    """Build the command line (the same options zapctl bench offers)."""
    p = _Parser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help: str, *, db: bool = True, rate: bool = True) -> Any:
        s = sub.add_parser(name, help=help)
        if db:
            s.add_argument("--db", default="sqlite", help="sqlite, postgres or a URL")
            s.add_argument("--duration", type=float, default=DEFAULT_DURATION)
        if rate:
            s.add_argument("--rate", type=float, default=None)
        return s

    s = add("ingest", "events/s through the pipeline vs same-run ceilings")
    s.add_argument("--concurrency", type=int, default=32)
    s.add_argument("--assigned", type=int, default=20)
    s = add("latency", "inbound -> agent WebSocket latency at a rate")
    s.set_defaults(rate=50.0)
    s.add_argument("--assigned", type=int, default=50)
    s.add_argument(
        "--no-outbox",
        dest="outbox",
        action="store_false",
        help="do not send the bot's replies (the outbox worker stays off)",
    )
    s = add("fanout", "WebSocket deliveries/s to N agents and their p99")
    s.add_argument("--clients", type=int, default=100)
    s.add_argument("--per-tx", type=int, default=10)
    s = add("http", "authenticated GET vs /healthz", rate=False)
    s.add_argument("--clients", type=int, default=8)
    s.add_argument("--path", default="/api/v1/departments")
    s = add("outbox", "sends/s through a no-op engine, rate limits off", rate=False)
    s.add_argument("--messages", type=int, default=2000)
    s.add_argument("--chats", type=int, default=200)
    s = add("growth", "ingest with history vs without, as a ratio")
    s.add_argument("--messages", type=int, default=1_000_000)
    s.add_argument("--clients", type=int, default=100_000)
    s.add_argument("--concurrency", type=int, default=32)
    s = add("startup", "zapctl start-up vs a bare interpreter", db=False, rate=False)
    s.add_argument("--runs", type=int, default=15)
    s.add_argument("--check", action="store_true")
    return p


def _check(args: argparse.Namespace) -> None:
    if hasattr(args, "db"):
        database_kind(args.db)
        _positive("--duration", args.duration, top=3600)
    if hasattr(args, "rate"):
        _positive("--rate", args.rate, top=100_000, allow_none=True)
    limits = {
        "concurrency": 1000,
        "assigned": 10_000,
        "clients": 100_000_000 if args.command == "growth" else 1000,
        "per_tx": 1000,
        "messages": 100_000_000,
        "chats": 10_000,
        "runs": 1000,
    }
    for name, top in limits.items():
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= top:
            raise usage(f"--{name.replace('_', '-')} must be 1-{top} (got {value})")


async def _with_db(
    args: argparse.Namespace, body: Callable[..., Coroutine[Any, Any, dict[str, Any]]]
) -> dict[str, Any]:
    with workdir() as tmp:
        async with fresh_database(args.db, tmp) as db:
            return await body(db, tmp)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cmd = args.command
    if cmd == "ingest":
        from bench import ingest

        return await _with_db(
            args,
            lambda db, tmp: ingest.run(
                db,
                tmp,
                duration=args.duration,
                rate=args.rate,
                concurrency=args.concurrency,
                assigned=args.assigned,
            ),
        )
    if cmd == "latency":
        from bench import latency

        return await _with_db(
            args,
            lambda db, tmp: latency.run(
                db,
                tmp,
                duration=args.duration,
                rate=args.rate,
                assigned=args.assigned,
                outbox=args.outbox,
            ),
        )
    if cmd == "fanout":
        from bench import fanout

        return await _with_db(
            args,
            lambda db, tmp: fanout.run(
                db,
                tmp,
                clients=args.clients,
                per_tx=args.per_tx,
                duration=args.duration,
                rate=args.rate,
            ),
        )
    if cmd == "http":
        from bench import http

        return await _with_db(
            args,
            lambda db, tmp: http.run(
                db, tmp, clients=args.clients, duration=args.duration, path=args.path
            ),
        )
    if cmd == "outbox":
        from bench import outbox

        return await _with_db(
            args,
            lambda db, tmp: outbox.run(
                db, tmp, duration=args.duration, messages=args.messages, chats=args.chats
            ),
        )
    if cmd == "growth":
        from bench import growth

        return await _with_db(
            args,
            lambda db, tmp: growth.run(
                db,
                tmp,
                duration=args.duration,
                rate=args.rate,
                concurrency=args.concurrency,
                clients=args.clients,
                messages=args.messages,
            ),
        )
    raise usage(f"unknown benchmark {cmd!r}")


def _line(text: str, limit: int = 400) -> str:
    """Make a message one line (driver errors span several), cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark; print its report as one JSON document."""
    try:
        args = parser().parse_args(argv)
        _check(args)
        if args.command == "startup":
            from bench import startup

            report, ok = startup.run(args.runs)
            sys.stdout.write(json.dumps(report) + "\n")
            return 1 if args.check and not ok else 0
        from zapd.logging import setup_logging

        setup_logging("warning", "text", sys.stderr)
        logging.getLogger("websockets").setLevel(logging.WARNING)
        report = asyncio.run(_run(args))
    except BenchError as exc:
        sys.stderr.write(f"bench: {_line(exc.message)}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130
    except Exception as exc:
        if os.environ.get("ZAP_DEBUG") == "1":
            raise
        sys.stderr.write(
            f"bench: unexpected error: {type(exc).__name__}: {_line(str(exc))} "
            "(ZAP_DEBUG=1 for details)\n"
        )
        return 1
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
