"""What the benchmark tests share: a `--db` value for each backend.

`sqlite` makes a temporary file; on PostgreSQL the test server's URL is given, so the
bench makes (and drops) its own scratch database there, never touching `test`'s data.
"""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, PG_URL, require_pg


@pytest.fixture(params=BACKENDS)
def bench_db(request: pytest.FixtureRequest) -> str:
    """The `--db` of a benchmark run: "sqlite" or the PostgreSQL server's URL."""
    if request.param == "sqlite":
        return "sqlite"
    require_pg()
    return PG_URL
