"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.errors import ErrorCode
from zapd.api.errors import error_body
from zapd.db import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the process is serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> dict[str, Any] | JSONResponse:
    """Answer 200 only when the database is reachable and its schema is current."""
    engine = request.app.state.daemon.engine
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        st = await migrate.status(engine)
    except Exception as exc:
        return JSONResponse(
            error_body(ErrorCode.UNAVAILABLE, f"database unreachable: {type(exc).__name__}"),
            status_code=503,
        )
    if not st.up_to_date:
        return JSONResponse(
            error_body(
                ErrorCode.UNAVAILABLE,
                f"schema at {st.current or '(empty)'}, expected {st.head}: run zapctl db upgrade",
            ),
            status_code=503,
        )
    return {"status": "ready", "schema": st.current}
