"""`http`: an authenticated API read against `/healthz`, in the same run.

zapd (the real app under uvicorn) serves a fresh database on a loopback port. N
concurrent HTTP clients first hammer `GET /healthz` (no auth, no database: the cost of
the HTTP stack itself), then an authenticated `GET /api/v1/departments` as the seeded
company's admin (JWT check, principal lookup, a scoped query, serialisation), each for
`duration` seconds after a short warm-up. The ratio of the two says what auth and the
database cost on top of the bare HTTP edge. Clients and server share one process (and
one core's worth of GIL): absolute figures are a floor, not a capacity.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BENCH_PASSWORD,
    BenchError,
    Database,
    daemon_on,
    percentile,
    seed_company,
    serving,
    target,
)

TARGET_RATIO = 0.5  # issue #14: an authenticated GET at half of /healthz or better
BASELINE_PATH = "/healthz"
DEFAULT_PATH = "/api/v1/departments"


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
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
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
        raise BenchError(f"GET {path} answers {probe.status_code}: {probe.text[:200]}")
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


async def run(
    db: Database, workdir: Path, *, clients: int, duration: float, path: str
) -> dict[str, Any]:
    """Serve zapd on `db`, log in as the seeded company's admin and measure both phases."""
    async with daemon_on(db, workdir) as daemon, serving(daemon) as url:
        seeded = await seed_company(daemon.kernel, agents=0)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            r = await client.post(
                "/api/v1/auth/login",
                json={"email": seeded.admin_email, "password": BENCH_PASSWORD},
            )
            if r.status_code != 200:
                raise BenchError(f"the bench could not log in: {r.status_code} {r.text[:200]}")
        result = await bench_http(
            url,
            str(r.json()["access_token"]),
            clients=clients,
            duration=duration,
            path=path,
            database=db.kind,
            warmup=min(0.5, duration / 4),
        )
    return {
        "bench": "http",
        **asdict(result),
        "target_ratio": target(result.ratio, at_least=TARGET_RATIO),
    }
