"""HTTP throughput of the daemon: an authenticated API read against a same-run baseline.

    python -m bench.daemon http --db sqlite            # temp state dir, SQLite file
    python -m bench.daemon http --db postgresql://...   # that database is migrated and
                                                      # gets a throw-away company: use a
                                                      # scratch database

An in-process zapd (the real app under uvicorn) serves on a loopback port. N concurrent
HTTP clients first hammer `GET /healthz` (no auth, no database: the cost of the HTTP
stack itself), then an authenticated `GET /api/v1/departments` (JWT check, principal
lookup, a scoped query, serialisation), each for a fixed duration. The ratio of the
two says what auth + database cost on top of the bare HTTP edge; both figures come
from the same run on the same machine, so the ratio travels better than either number.
Clients and server share one process (and one core's worth of GIL): absolute figures
are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

log = logging.getLogger("bench.daemon")

BASELINE_PATH = "/healthz"
DEFAULT_PATH = "/api/v1/departments"
BENCH_PASSWORD = "bench-" + "p" * 12


@dataclass(frozen=True)
class RunResult:
    """One measured phase."""

    path: str
    requests: int  # answered 200
    errors: int  # any other answer, or a transport error
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class BenchResult:
    """Both phases and how they compare."""

    database: str
    clients: int
    duration: float
    baseline: RunResult
    authenticated: RunResult
    ratio: float  # authenticated rps / baseline rps


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def measure(
    base_url: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    clients: int = 8,
    duration: float = 5.0,
) -> RunResult:
    """Send GET `path` from `clients` concurrent connections for `duration` seconds."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                except httpx.TransportError:
                    errors += 1
                    continue
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RunResult(
        path=path,
        requests=len(latencies),
        errors=errors,
        seconds=round(elapsed, 3),
        rps=round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
    )


async def bench_http(
    base_url: str,
    token: str,
    *,
    clients: int = 8,
    duration: float = 5.0,
    path: str = DEFAULT_PATH,
    database: str = "",
    warmup: float = 0.5,
) -> BenchResult:
    """Measure an authenticated GET against the unauthenticated /healthz baseline."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=30) as client:
        probe = await client.get(path)
    if probe.status_code != 200:
        raise RuntimeError(f"GET {path} answers {probe.status_code}: {probe.text[:200]}")
    if warmup > 0:  # first connections, caches, the pool
        await measure(base_url, BASELINE_PATH, clients=clients, duration=warmup)
        await measure(base_url, path, headers=auth, clients=clients, duration=warmup)
    baseline = await measure(base_url, BASELINE_PATH, clients=clients, duration=duration)
    authenticated = await measure(base_url, path, headers=auth, clients=clients, duration=duration)
    ratio = authenticated.rps / baseline.rps if baseline.rps else 0.0
    return BenchResult(
        database=database,
        clients=clients,
        duration=duration,
        baseline=baseline,
        authenticated=authenticated,
        ratio=round(ratio, 3),
    )


@asynccontextmanager
async def temp_daemon(db: str) -> AsyncIterator[tuple[str, str, str]]:
    """Serve zapd in-process on a temp state dir; yield (url, admin token, database kind)."""
    import uvicorn
    from sqlalchemy.engine import make_url

    from shared.cnpj import cnpj_check_digits
    from shared.enums import Role
    from zapd.api.app import create_app
    from zapd.config import ZapdSettings
    from zapd.daemon import open_daemon
    from zapd.db.models import Company, Department, User

    with tempfile.TemporaryDirectory(prefix="zap-bench-") as tmp:
        settings = ZapdSettings(
            state_dir=Path(tmp) / "state",
            database_url=None if db == "sqlite" else db,
            auto_migrate=True,
            jwt_secret=secrets.token_urlsafe(48),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            log_level="warning",
        )
        kind = make_url(settings.db_url).get_backend_name()
        daemon = await open_daemon(settings)
        try:
            tag = uuid.uuid4().hex[:8]
            base = f"{secrets.randbelow(10**8):08d}0001"
            email = f"bench-{tag}@bench.invalid"
            async with daemon.kernel.tx() as session:
                company = Company(name=f"Bench {tag}", cnpj=base + cnpj_check_digits(base))
                session.add(company)
                await session.flush()
                for i, name in enumerate(("Vendas", "Suporte", "Financeiro", "Laboratório")):
                    session.add(
                        Department(
                            company_id=company.id,
                            name=name,
                            slug=f"dep{i}-{tag}",
                            menu_order=i + 1,
                            keywords=[name.lower()],
                        )
                    )
                session.add(
                    User(
                        company_id=company.id,
                        email=email,
                        role=Role.ADMIN,
                        name="Bench",
                        password_hash=daemon.kernel.passwords.hash(BENCH_PASSWORD),
                    )
                )
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, daemon),
                    host="127.0.0.1",
                    port=0,
                    lifespan="on",
                    log_config=None,
                    access_log=False,
                    proxy_headers=False,
                    timeout_graceful_shutdown=5,
                )
            )
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the bench server stopped before serving")
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            try:
                async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                    r = await client.post(
                        "/api/v1/auth/login", json={"email": email, "password": BENCH_PASSWORD}
                    )
                    r.raise_for_status()
                yield url, str(r.json()["access_token"]), kind
            finally:
                server.should_exit = True
                await asyncio.wait_for(task, 30)
        finally:
            await daemon.close()


async def _run_http(args: argparse.Namespace) -> BenchResult:
    async with temp_daemon(args.db) as (url, token, kind):
        return await bench_http(
            url,
            token,
            clients=args.clients,
            duration=args.duration,
            path=args.path,
            database=kind,
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.daemon", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    http = sub.add_parser("http", help="requests/s of an authenticated GET vs /healthz")
    http.add_argument(
        "--db", default="sqlite", help="'sqlite' (temp file) or a database URL (gets migrated)"
    )
    http.add_argument("--clients", type=int, default=8, help="concurrent connections")
    http.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    http.add_argument("--path", default=DEFAULT_PATH, help="authenticated GET to measure")
    pipe = sub.add_parser("pipeline", help="inbound events/s vs raw inserts of the same rows")
    pipe.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a scratch DB URL")
    pipe.add_argument("--customers", type=int, default=100)
    pipe.add_argument("--per-customer", type=int, default=10)
    pipe.add_argument("--concurrency", type=int, default=16)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run a benchmark and print its result as one JSON document."""
    args = _parser().parse_args(argv)
    if args.command == "pipeline":
        from bench.pipeline import bench_pipeline
        from zapd.logging import setup_logging

        if not (1 <= args.customers <= 100_000 and 1 <= args.per_customer <= 1000):
            sys.stderr.write("bench.daemon: --customers 1-100000, --per-customer 1-1000\n")
            sys.exit(2)
        setup_logging("warning", "text", sys.stderr)
        db = None if args.db == "sqlite" else args.db
        figures = asyncio.run(
            bench_pipeline(db, args.customers, args.per_customer, args.concurrency)
        )
        sys.stdout.write(json.dumps(figures.as_dict(), indent=2) + "\n")
        return
    if not 1 <= args.clients <= 256 or not 0.1 <= args.duration <= 60:
        sys.stderr.write("bench.daemon: --clients must be 1-256 and --duration 0.1-60 s\n")
        sys.exit(2)
    from zapd.logging import setup_logging

    setup_logging("warning", "text", sys.stderr)
    result = asyncio.run(_run_http(args))
    sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")


if __name__ == "__main__":
    main()
