"""/api/v1/companies."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["companies"])
