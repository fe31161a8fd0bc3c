"""zapd's offline entry: everything zapctl's database commands (no daemon) reach in zapd.

zapctl imports this module and nothing else of zapd (an import-linter contract checks
it), lazily, inside the commands that open the database themselves: `init`, `db`,
`backup` / `restore` / `doctor`, `export`, the LGPD commands (`client export|erase`,
`purge`) and `events replay`. What lives here is what those commands may use: the
settings and database set-up, the migrations, the bootstrap of an instance, and the
services they run; the application logic itself stays in the services (replay in
`services.conversations.replay`, the retention purge in `services.compliance.retention`,
LGPD requests in `services.compliance.lgpd`, exports in `services.compliance.exports`),
acting as the CLI actor so their audit rows say who did it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.enums import WebhookEventState
from zapd.config import JWT_SECRET_FILENAME, MEDIA_DIRNAME
from zapd.config import load as load_settings
from zapd.connectors.webjs import bundle as wajs_bundle
from zapd.db import migrate
from zapd.db.engine import create_engine, normalize_url, read_only, session_factory, sqlite_path
from zapd.db.models import Client
from zapd.errors import BadRequest, NotFound, ValidationFailed, ZapError
from zapd.kernel.principal import CLI_ACTOR
from zapd.kernel.scoping import resolve_company
from zapd.services.compliance import exports, lgpd, retention
from zapd.services.compliance.exports import Filters
from zapd.services.conversations import replay
from zapd.services.people.bootstrap import init_instance

__all__ = [
    "CLI_ACTOR",
    "JWT_SECRET_FILENAME",
    "MEDIA_DIRNAME",
    "BadRequest",
    "Client",
    "Filters",
    "NotFound",
    "ValidationFailed",
    "ZapError",
    "create_engine",
    "exports",
    "init_instance",
    "lgpd",
    "load_settings",
    "migrate",
    "normalize_url",
    "purge",
    "read_only",
    "replay_events",
    "resolve_company",
    "session_factory",
    "sqlite_path",
    "wajs_bundle",
]


async def replay_events(
    url: str,
    state: WebhookEventState | None,
    ids: list[uuid.UUID],
    session_id: uuid.UUID | None,
    company_ref: str | None,
) -> dict[str, Any]:
    """Mark stored inbound events PENDING again, in one transaction (see `replay`)."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            pick = replay.Pick(
                state=state, ids=tuple(ids), session_id=session_id, company_ref=company_ref
            )
            return await replay.replay(db, CLI_ACTOR, pick)
    finally:
        await engine.dispose()


async def purge(
    url: str, cutoff: datetime, company_ref: str | None, apply: bool, batch: int, label: str
) -> dict[str, Any]:
    """Run the retention purge (a dry run unless `apply`; see `retention`)."""
    engine = create_engine(url)
    try:
        return await retention.purge(
            engine,
            CLI_ACTOR,
            cutoff,
            company_ref=company_ref,
            apply=apply,
            batch=batch,
            label=label,
        )
    finally:
        await engine.dispose()
