"""/api/v1/tickets."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["tickets"])
