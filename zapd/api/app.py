"""The ASGI application: one lifespan opens the daemon; routes reach it via app.state.daemon."""

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
    helpdesk_metrics,
    media,
    messages,
    outbox,
    prometheus,
    quick_replies,
    sandbox,
    sessions,
    tags,
    tickets,
    users,
    ws,
)
from zapd.config import ZapdSettings
from zapd.daemon import Daemon, open_daemon, settle_heap
from zapd.systemd import service_lifecycle

log = logging.getLogger("zapd")


def create_app(settings: ZapdSettings, daemon: Daemon | None = None) -> FastAPI:
    """Build the zapd application (tests may hand in an already opened daemon)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        d = daemon or await open_daemon(settings)
        app.state.daemon = d
        await d.start_background()
        if daemon is None:  # this process is the daemon (not a test holding one)
            settle_heap()
        log.info("zapd ready (database %s)", d.engine.url.render_as_string())
        try:
            async with service_lifecycle():
                yield
        finally:
            await d.stop_background()
            if daemon is None:
                await d.close()
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
        helpdesk_metrics,
        audit,
        prometheus,
        ws,
    ):
        app.include_router(module.router)
    return app
