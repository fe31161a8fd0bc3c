"""/api/v1/quick_replies."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["quick_replies"])
