"""`zapctl bench`: the child's report shown as JSON or a table; bad input is one line.

zapctl runs `python -m bench` in a child process (it may not import zapd or bench);
these tests drive the real console script.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, require_pg
from tests.helpers import child_env, one_line, run_cli
from zapctl.bench import _flatten, _human


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bench", "ingest", "--db", "nosuch"], "--db: 'nosuch' is not sqlite, postgres"),
        (["bench", "latency", "--duration", "-1"], "--duration must be more than 0"),
        (["bench", "fanout", "--clients", "0"], "--clients must be 1-1000"),
        (["bench", "growth", "--rate", "0"], "--rate must be more than 0"),
    ],
)
def test_bad_input_is_one_line_with_the_usage_code(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = run_cli(*args, env=child_env(tmp_path / "home"))
    assert result.code == 2, result
    line = one_line(result.err)
    assert line.startswith("zapctl: ") and says in line, line
    assert result.out == ""


def test_an_unreachable_postgres_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_cli(
        "bench",
        "http",
        "--db",
        "postgresql://nobody@127.0.0.1:1/none",
        env=child_env(tmp_path / "home"),
    )
    assert result.code == 1, result
    assert "cannot create a scratch database on" in one_line(result.err)


def test_an_existing_sqlite_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"")
    result = run_cli(
        "bench", "ingest", "--db", f"sqlite:///{taken}", env=child_env(tmp_path / "home")
    )
    assert result.code == 2 and "exists" in one_line(result.err)
    assert taken.exists()


def test_json_passes_the_report_through(tmp_path: Path) -> None:
    result = run_cli(
        "--json",
        "bench",
        "http",
        "--duration",
        "0.3",
        "--clients",
        "1",
        env=child_env(tmp_path / "home"),
    )
    assert result.code == 0, result
    report = result.json()
    assert report["bench"] == "http" and report["database"] == "sqlite"
    assert report["authenticated"]["requests"] > 0
    assert report["ratio"] == round(report["authenticated"]["rps"] / report["baseline"]["rps"], 3)


def test_postgres_runs_on_a_scratch_database_it_drops(tmp_path: Path) -> None:
    require_pg()
    import asyncio

    import asyncpg

    async def scratch() -> set[str]:
        conn = await asyncpg.connect(
            make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            rows = await conn.fetch("SELECT datname FROM pg_database")
        finally:
            await conn.close()
        return {r[0] for r in rows if r[0].startswith("zap_bench_")}

    before = asyncio.run(scratch())
    result = run_cli(
        "bench",
        "fanout",
        "--db",
        "postgres",
        "--duration",
        "0.2",
        "--clients",
        "2",
        "--json",
        env=child_env(tmp_path / "home", ZAP_BENCH_PG_URL=PG_URL),
    )
    assert result.code == 0, result
    assert result.json()["database"] == "postgresql"
    assert not asyncio.run(scratch()) - before  # its own scratch database is gone


def test_the_table_names_every_figure() -> None:
    report = {
        "bench": "ingest",
        "database": "sqlite",
        "pipeline": {"events": 10, "events_per_s": 5.0},
        "ratios": {"pipeline_vs_one_tx_per_event": 0.5},
    }
    assert [r["figure"] for r in _flatten(report)] == [
        "database",
        "pipeline.events",
        "pipeline.events_per_s",
        "ratios.pipeline_vs_one_tx_per_event",
    ]
    text = _human(report)
    assert text.splitlines()[0] == "zapctl bench ingest"
    assert "pipeline.events_per_s" in text and "0.5" in text
