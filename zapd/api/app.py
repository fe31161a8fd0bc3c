"""The ASGI application: one lifespan opens every resource, routes reach them via app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zapd.api import health
from zapd.api.errors import install_error_handlers
from zapd.api.middleware import install_middleware
from zapd.api.routes import (
    audit,
    auth,
    categories,
    clients,
    cloud,
    companies,
    departments,
    media,
    messages,
    metrics,
    outbox,
    quick_replies,
    sandbox,
    sessions,
    stats,
    tags,
    tickets,
    users,
    ws,
)
from zapd.config import ZapdSettings
from zapd.resources import Resources, open_resources
from zapd.systemd import service_lifecycle

log = logging.getLogger("zapd")


def create_app(settings: ZapdSettings, resources: Resources | None = None) -> FastAPI:
    """Build the zapd application (tests may hand in already opened resources)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        res = resources or await open_resources(settings)
        app.state.resources = res
        await res.start_background()
        log.info("zapd ready (database %s)", res.engine.url.render_as_string())
        try:
            async with service_lifecycle():
                yield
        finally:
            await res.stop_background()
            if resources is None:
                await res.close()
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
    install_middleware(app, settings)
    app.include_router(health.router)
    for module in (
        auth,
        companies,
        users,
        departments,
        categories,
        tags,
        quick_replies,
        clients,
        sessions,
        sandbox,
        cloud,
        tickets,
        messages,
        outbox,
        media,
        stats,
        audit,
        metrics,
        ws,
    ):
        app.include_router(module.router)
    return app
