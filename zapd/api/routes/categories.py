"""/api/v1/categories."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["categories"])
