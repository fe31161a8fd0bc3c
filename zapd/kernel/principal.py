"""Who is acting: an authenticated principal, the actor (principal + origin), the CLI actor.

Roles rank AGENT < SUPERVISOR < ADMIN; a global admin (no company) reaches every role.
The offline tools (`zapctl` commands that open the database directly) act as
`CLI_ACTOR`: a global admin with no user behind it, so its audit rows have no user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from shared.enums import Role
from shared.errors import ErrorCode
from zapd.errors import BadRequest, Forbidden, NotFound

# Higher rank may do what lower ranks may.
_RANK = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user (global admin or company member) or an API token."""

    user_id: uuid.UUID | None
    company_id: uuid.UUID | None
    role: Role | None
    name: str
    email: str | None = None
    department_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    api_token_id: uuid.UUID | None = None
    session_family: uuid.UUID | None = None  # refresh-token family of this login
    api_token_stale: bool = False  # its last_used_at is due for a refresh

    @property
    def is_global_admin(self) -> bool:
        """Tell whether this caller manages companies rather than belonging to one."""
        return self.company_id is None

    def at_least(self, role: Role) -> bool:
        """Tell whether the caller's role reaches `role` (global admins reach every role)."""
        if self.is_global_admin:
            return True
        return self.role is not None and _RANK[self.role] >= _RANK[role]

    def require(self, role: Role) -> None:
        """Refuse (403) callers below `role`."""
        if not self.at_least(role):
            raise Forbidden(f"this needs the {role.name} role or higher")

    def require_global_admin(self) -> None:
        """Refuse (403) everyone but global admins."""
        if not self.is_global_admin or self.api_token_id is not None:
            raise Forbidden("only global admins may do this")

    def require_user(self) -> uuid.UUID:
        """Return the caller's user id; API tokens are refused (403)."""
        if self.user_id is None:
            raise Forbidden("this needs a user login, not an API token")
        return self.user_id

    def company_for_write(self, requested: uuid.UUID | None) -> uuid.UUID:
        """Return the company a create acts on: one's own, or the one a global admin names."""
        if self.company_id is not None:
            if requested is not None and requested != self.company_id:
                raise NotFound("company not found")
            return self.company_id
        if requested is None:
            raise BadRequest("global admins must give company_id", code=ErrorCode.COMPANY_REQUIRED)
        return requested

    def company_filter(self, requested: uuid.UUID | None = None) -> uuid.UUID | None:
        """Return the company a read is limited to (None: every company, global admins only)."""
        if self.company_id is not None:
            if requested is not None and requested != self.company_id:
                raise NotFound("company not found")
            return self.company_id
        return requested

    def owns(self, company_id: uuid.UUID | None) -> bool:
        """Tell whether a row of `company_id` is visible to this caller."""
        return self.is_global_admin or company_id == self.company_id

    def sees_all_departments(self) -> bool:
        """Tell whether the caller sees every department's queue (supervisors and up)."""
        return self.at_least(Role.SUPERVISOR)


@dataclass(frozen=True)
class Actor:
    """A principal plus where the request came from (for the audit log)."""

    principal: Principal
    ip: str | None = None

    @property
    def company_id(self) -> uuid.UUID | None:
        """Return the actor's company."""
        return self.principal.company_id


# Who the offline tools act as: a global admin with no user behind it (audit user NULL).
CLI_PRINCIPAL = Principal(user_id=None, company_id=None, role=None, name="zapctl")
CLI_ACTOR = Actor(CLI_PRINCIPAL)
