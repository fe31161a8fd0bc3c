"""Work to do once a transaction has committed: event fan-out, closing sockets..."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from zapd.resources import Resources

log = logging.getLogger("zapd.unit")

AfterCommit = Callable[["Resources"], Awaitable[None] | object]


_HOOKS = "zap_after_commit"


def after_commit(db: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook(resources)` once this session's transaction commits (never on rollback)."""
    db.info.setdefault(_HOOKS, []).append(hook)


async def run_after_commit(db: AsyncSession, resources: Resources) -> None:
    """Run and forget the hooks registered on `db` (called by `Resources.tx`)."""
    hooks: list[Any] = db.info.pop(_HOOKS, [])
    for hook in hooks:
        try:
            result = hook(resources)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a failed notification must not undo a committed change
            log.exception("after-commit hook failed")
