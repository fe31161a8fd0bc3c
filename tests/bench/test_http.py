"""`bench http`: an authenticated GET and /healthz both answered, the ratio of the two."""

from __future__ import annotations

from pathlib import Path

from bench import http
from bench.common import fresh_database


async def test_http_compares_an_authenticated_read_with_healthz(
    bench_db: str, tmp_path: Path
) -> None:
    async with fresh_database(bench_db, tmp_path) as db:
        report = await http.run(db, tmp_path, clients=2, duration=0.3, path=http.DEFAULT_PATH)
    assert report["bench"] == "http"
    base, auth = report["baseline"], report["authenticated"]
    assert base["path"] == "/healthz" and auth["path"] == http.DEFAULT_PATH
    assert base["requests"] > 0 and auth["requests"] > 0
    assert base["errors"] == 0 and auth["errors"] == 0
    assert report["ratio"] == round(auth["rps"] / base["rps"], 3)
