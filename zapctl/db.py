"""`zapctl db`: apply and inspect schema migrations, directly on the database."""

from __future__ import annotations

import typer

from zapctl.errors import ExitCode
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import emit

app = typer.Typer(help="Schema migrations (works without zapd).", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context, state_dir: StateDirOpt = None, db: DbOpt = None) -> None:
    """Apply every pending migration.

    Example: zapctl db upgrade --db postgresql://zap@db/zap
    """
    from zapctl import offline
    from zapd.offline import create_engine, migrate

    _, url = offline.resolve_db(state_dir, db)
    offline.require_directory(url)

    async def go() -> tuple[str | None, str]:
        engine = create_engine(url)
        try:
            before = (await migrate.status(engine)).current
            await migrate.upgrade(engine)
            return before, (await migrate.status(engine)).current or ""
        finally:
            await engine.dispose()

    before, after = offline.run(go())
    emit(
        ctx,
        {"database_url": offline.safe_url(url), "from": before, "to": after},
        f"schema {before or '(empty)'} -> {after}"
        if before != after
        else f"schema already at {after}",
    )


@app.command()
def current(ctx: typer.Context, state_dir: StateDirOpt = None, db: DbOpt = None) -> None:
    """Show the database's schema revision and the newest one available.

    Example: zapctl --json db current
    """
    from zapctl import offline
    from zapd.offline import create_engine, migrate

    _, url = offline.resolve_db(state_dir, db)
    offline.require_directory(url)
    offline.require_existing(url)

    async def go() -> migrate.MigrationStatus:
        engine = create_engine(url)
        try:
            return await migrate.status(engine)
        finally:
            await engine.dispose()

    st = offline.run(go())
    emit(
        ctx,
        {"current": st.current, "head": st.head, "up_to_date": st.up_to_date},
        f"current {st.current or '(empty)'}  head {st.head}"
        + ("" if st.up_to_date else "  (run: zapctl db upgrade)"),
    )


@app.command()
def check(ctx: typer.Context, state_dir: StateDirOpt = None, db: DbOpt = None) -> None:
    """Exit non-zero unless the schema is current and matches the models exactly.

    Example: zapctl db check && echo schema ok
    """
    from zapctl import offline
    from zapd.offline import create_engine, migrate

    _, url = offline.resolve_db(state_dir, db)
    offline.require_directory(url)
    offline.require_existing(url)

    async def go() -> tuple[migrate.MigrationStatus, list[object]]:
        engine = create_engine(url)
        try:
            return await migrate.status(engine), await migrate.schema_diff(engine)
        finally:
            await engine.dispose()

    st, diff = offline.run(go())
    ok = st.up_to_date and not diff
    emit(
        ctx,
        {
            "current": st.current,
            "head": st.head,
            "ok": ok,
            "differences": [offline.describe_diff(d) for d in diff],
        },
        "schema ok" if ok else f"schema not current ({st.current} vs {st.head}), {len(diff)} diffs",
    )
    if not ok:
        raise typer.Exit(int(ExitCode.ERROR))
