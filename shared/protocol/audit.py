"""The audit log, as the API shows it."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from shared.protocol.common import OutModel

# An action filter: "ticket.transfer" (exact) or "ticket.*" (every action under "ticket.").
ACTION_FILTER = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)*(?:\.\*)?$")


class AuditOut(OutModel):
    """One audit row: who did what to which entity, when and from where."""

    id: uuid.UUID
    company_id: uuid.UUID | None
    user_id: uuid.UUID | None
    api_token_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: uuid.UUID | None
    ip: str | None
    data: dict[str, Any]
    created_at: datetime
