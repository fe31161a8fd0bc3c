"""Users: the caller themself (me); company user management lives here too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from shared.protocol.auth import Me, MeUpdate
from shared.protocol.events import USER_UPDATE
from zapd.db.models import User
from zapd.db.types import utcnow
from zapd.errors import NotFound, ValidationFailed
from zapd.realtime import events
from zapd.services import audit
from zapd.services.principal import Actor, Principal

if TYPE_CHECKING:
    from zapd.resources import Resources


async def me(db: AsyncSession, p: Principal) -> Me:
    """Describe the caller."""
    if p.user_id is None:
        return Me(
            id=None,
            email=None,
            name=p.name,
            company_id=p.company_id,
            role=p.role,
            is_global_admin=False,
            via_api_token=True,
        )
    user = await db.get(User, p.user_id)
    if user is None:
        raise NotFound("user not found")
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        company_id=user.company_id,
        role=user.role,
        is_global_admin=user.is_global_admin,
        department_ids=sorted(p.department_ids),
        presence=user.presence,
    )


async def update_me(db: AsyncSession, res: Resources, actor: Actor, body: MeUpdate) -> User:
    """Apply a user's change to their own name, presence or password."""
    from zapd.services.auth import invalidate_user_tokens

    user_id = actor.principal.require_user()
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    before = audit.snapshot(user)
    if body.name is not None:
        user.name = body.name
    if body.presence is not None and body.presence != user.presence:
        user.presence = body.presence
        user.presence_at = utcnow()
    if body.new_password is not None:
        if not body.current_password or not res.passwords.verify(
            user.password_hash, body.current_password
        ):
            raise ValidationFailed("current_password is wrong", code="ERR_BAD_CREDENTIALS")
        user.password_hash = res.passwords.hash(body.new_password)
        user.password_changed_at = utcnow()
        await invalidate_user_tokens(db, user)
    after = audit.snapshot(user)
    if body.new_password is not None:
        after["password_changed"] = True
    audit.record(
        db,
        actor,
        "user.update_self",
        "user",
        user.id,
        company_id=user.company_id,
        before=before,
        after=after,
    )
    if user.company_id is not None and before != audit.snapshot(user):
        await events.publish(
            db,
            user.company_id,
            USER_UPDATE,
            {"id": user.id, "name": user.name, "presence": user.presence},
        )
    return user
