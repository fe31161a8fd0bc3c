"""The ASGI application: one lifespan opens every resource, routes reach them via app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from zapd.api import health
from zapd.api.errors import install_error_handlers
from zapd.config import ZapdSettings
from zapd.db import migrate
from zapd.db.engine import create_engine, session_factory
from zapd.security import ensure_secret_file, prepare_state_dir
from zapd.systemd import service_lifecycle

log = logging.getLogger("zapd")


@dataclass
class Resources:
    """What the lifespan opened; handed to routes and services."""

    settings: ZapdSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    jwt_secret: str


async def open_resources(settings: ZapdSettings) -> Resources:
    """Prepare the state dir, secret and database (migrating when allowed)."""
    prepare_state_dir(settings.state_dir)
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    else:
        secret = ensure_secret_file(settings.jwt_secret_file)
    engine = create_engine(settings.db_url, pool_pre_ping=True)
    try:
        if settings.auto_migrate:
            await migrate.upgrade(engine)
        else:
            st = await migrate.status(engine)
            if not st.up_to_date:
                log.warning(
                    "schema at %s, code expects %s: run `zapctl db upgrade`", st.current, st.head
                )
    except Exception:
        await engine.dispose()
        raise
    return Resources(
        settings=settings, engine=engine, sessions=session_factory(engine), jwt_secret=secret
    )


def create_app(settings: ZapdSettings) -> FastAPI:
    """Build the zapd application for these settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await open_resources(settings)
        app.state.resources = resources
        log.info("zapd ready (database %s)", resources.engine.url.render_as_string())
        try:
            async with service_lifecycle():
                yield
        finally:
            await resources.engine.dispose()
            log.info("zapd stopped")

    app = FastAPI(
        title="zapd",
        version="0.1.0",
        summary="zap daemon API: WhatsApp customer service",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    return app
