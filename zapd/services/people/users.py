"""Users: the caller themself (me); company user management lives here too."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.errors import CloseCode, ErrorCode
from shared.protocol.auth import Me, MeUpdate
from shared.protocol.events import USER_UPDATE
from shared.protocol.users import UserCreate, UserDepartmentsSet, UserOut, UserUpdate
from zapd.db.models import Company, Department, User, UserDepartment
from zapd.db.types import utcnow
from zapd.errors import Conflict, NotFound, ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.context import after_commit
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import referenced_ids
from zapd.security import Passwords
from zapd.services.people.auth import invalidate_user_tokens
from zapd.services.people.bootstrap import check_password, normalize_email

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel


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


async def update_me(db: AsyncSession, kernel: Kernel, actor: Actor, body: MeUpdate) -> User:
    """Apply a user's change to their own name, presence or password."""
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
        if not body.current_password or not await kernel.passwords.verify_async(
            user.password_hash, body.current_password
        ):
            raise ValidationFailed("current_password is wrong", code=ErrorCode.BAD_CREDENTIALS)
        check_password(body.new_password, user.email, user.name)
        user.password_hash = await kernel.passwords.hash_async(body.new_password)
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


# --------------------------------------------------------------------------- management

# Audited user fields (never the hash; token_version and presence are noise here).
_AUDIT_FIELDS = [
    "id",
    "company_id",
    "email",
    "name",
    "role",
    "active",
    "max_concurrent_tickets",
    "password_changed_at",
]
GENERATED_PASSWORD_BYTES = 12  # 16 URL-safe characters


async def get(db: AsyncSession, p: Principal, user_id: uuid.UUID) -> User:
    """Return a company user the caller may see, or 404 (global admins are not listed here)."""
    row = await db.get(User, user_id)
    if row is None or row.company_id is None or not p.owns(row.company_id):
        raise NotFound("user not found")
    return row


async def department_ids(
    db: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Return each user's department ids (sorted), in one query."""
    out: dict[uuid.UUID, list[uuid.UUID]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    rows = await db.execute(
        select(UserDepartment.user_id, UserDepartment.department_id)
        .where(UserDepartment.user_id.in_(user_ids))
        .order_by(UserDepartment.department_id)
    )
    for uid, dep in rows.all():
        out[uid].append(dep)
    return out


async def present(db: AsyncSession, rows: list[User]) -> list[UserOut]:
    """Turn user rows into their wire form, department ids included."""
    deps = await department_ids(db, [r.id for r in rows])
    return [
        UserOut.model_validate(r).model_copy(update={"department_ids": deps[r.id]}) for r in rows
    ]


async def list_(
    db: AsyncSession,
    p: Principal,
    page: PageParams,
    *,
    company_id: uuid.UUID | None = None,
    role: Role | None = None,
    department_id: uuid.UUID | None = None,
    active: bool | None = None,
    q: str | None = None,
) -> tuple[list[User], str | None]:
    """List company users (every company role may), filtered and cursor-paginated."""
    stmt: Select[Any] = select(User).where(User.company_id.is_not(None))
    company = p.company_filter(company_id)
    if company is not None:
        stmt = stmt.where(User.company_id == company)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active == active)
    if department_id is not None:
        dep = await db.get(Department, department_id)
        if dep is None or not p.owns(dep.company_id):
            raise NotFound("department not found")
        stmt = stmt.where(
            User.id.in_(
                select(UserDepartment.user_id).where(UserDepartment.department_id == department_id)
            )
        )
    if q and q.strip():
        needle = q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(User.name).contains(needle, autoescape=True),
                User.email.contains(needle, autoescape=True),
            )
        )
    return await paginate(db, stmt, User.id, page)


async def _snapshot(db: AsyncSession, row: User) -> dict[str, Any]:
    snap = audit.snapshot(row, _AUDIT_FIELDS)
    snap["department_ids"] = [str(d) for d in (await department_ids(db, [row.id]))[row.id]]
    return snap


async def _check_departments(
    db: AsyncSession, company_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = sorted(set(ids))
    return await referenced_ids(
        db, Department, wanted, company_id, field="department_ids", what="department"
    )


async def _replace_departments(db: AsyncSession, user: User, ids: list[uuid.UUID]) -> None:
    assert user.company_id is not None
    await db.execute(delete(UserDepartment).where(UserDepartment.user_id == user.id))
    for dep in ids:
        db.add(UserDepartment(user_id=user.id, department_id=dep, company_id=user.company_id))
    await db.flush()


async def _check_email_free(db: AsyncSession, email: str) -> None:
    if await db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} already exists", code=ErrorCode.EMAIL_TAKEN)


async def _guard_admins(
    db: AsyncSession, actor: Actor, user: User, role: Role | None, active: bool
) -> None:
    """Refuse a change that locks oneself out or leaves the company with no active ADMIN."""
    if not (user.active and user.role is Role.ADMIN) or (active and role is Role.ADMIN):
        return
    if actor.principal.user_id == user.id:
        raise Conflict(
            "you cannot demote or disable yourself; ask another admin",
            code=ErrorCode.SELF_LOCKOUT,
        )
    # Lock the company row (PostgreSQL; SQLite serialises writers) so that two admins
    # demoting each other at once cannot both pass this check.
    await db.execute(select(Company.id).where(Company.id == user.company_id).with_for_update())
    others = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.company_id == user.company_id,
            User.role == Role.ADMIN,
            User.active.is_(True),
            User.id != user.id,
        )
    )
    if not others:
        raise Conflict(
            "the company would be left without an active admin", code=ErrorCode.LAST_ADMIN
        )


async def _changed(
    db: AsyncSession,
    actor: Actor,
    action: str,
    user: User,
    before: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Audit a change and tell the company about it; return the after snapshot."""
    assert user.company_id is not None
    await db.flush()
    after = await _snapshot(db, user)
    audit.record(
        db,
        actor,
        action,
        "user",
        user.id,
        company_id=user.company_id,
        before=before,
        after=after,
        extra=extra,
    )
    await events.publish(
        db,
        user.company_id,
        USER_UPDATE,
        {
            "id": user.id,
            "action": action.removeprefix("user."),
            "name": user.name,
            "role": user.role,
            "active": user.active,
            "presence": user.presence,
            "department_ids": after["department_ids"],
        },
    )
    if (
        before.get("role") != after["role"]
        or before.get("department_ids") != after["department_ids"]
    ):
        # Live sockets hold the old permissions: make them reconnect with the new ones.
        uid = user.id

        def reconnect(kernel: Kernel) -> None:
            kernel.hub.close_user(uid, CloseCode.TRY_AGAIN_LATER, "permissions changed; reconnect")

        after_commit(db, reconnect)
    return after


async def create(db: AsyncSession, passwords: Passwords, actor: Actor, body: UserCreate) -> User:
    """Create a company user (ADMIN of the company, or a global admin naming company_id)."""
    p = actor.principal
    company_id = p.company_for_write(body.company_id)
    p.require(Role.ADMIN)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    email = normalize_email(body.email)
    check_password(body.password, email, body.name)
    deps = await _check_departments(db, company_id, body.department_ids)
    await _check_email_free(db, email)
    row = User(
        company_id=company_id,
        email=email,
        name=body.name,
        password_hash=await passwords.hash_async(body.password),
        role=body.role,
        max_concurrent_tickets=body.max_concurrent_tickets,
    )
    db.add(row)
    try:
        await db.flush()
    except IntegrityError:
        raise Conflict(
            f"a user with e-mail {email} already exists", code=ErrorCode.EMAIL_TAKEN
        ) from None
    await _replace_departments(db, row, deps)
    after = await _snapshot(db, row)
    audit.record(db, actor, "user.create", "user", row.id, company_id=company_id, after=after)
    await events.publish(
        db,
        company_id,
        USER_UPDATE,
        {
            "id": row.id,
            "action": "create",
            "name": row.name,
            "role": row.role,
            "active": row.active,
            "presence": row.presence,
            "department_ids": after["department_ids"],
        },
    )
    return row


async def update(db: AsyncSession, actor: Actor, user_id: uuid.UUID, body: UserUpdate) -> User:
    """Change a company user (ADMIN); only the fields given change."""
    p = actor.principal
    row = await get(db, p, user_id)
    p.require(Role.ADMIN)
    assert row.company_id is not None
    fields = body.model_dump(exclude_unset=True)
    for key, value in fields.items():
        if value is None:
            raise ValidationFailed(f"{key} cannot be null")
    deps = fields.pop("department_ids", None)
    if deps is not None:
        deps = await _check_departments(db, row.company_id, deps)
    await _guard_admins(
        db, actor, row, fields.get("role", row.role), fields.get("active", row.active)
    )
    before = await _snapshot(db, row)
    was_active = row.active
    for key, value in fields.items():
        setattr(row, key, value)
    if deps is not None:
        await _replace_departments(db, row, deps)
    if was_active and not row.active:
        await invalidate_user_tokens(db, row)
    if await _snapshot(db, row) == before:
        return row
    await _changed(db, actor, "user.update", row, before)
    return row


async def set_active(db: AsyncSession, actor: Actor, user_id: uuid.UUID, active: bool) -> User:
    """Disable (tokens die at once) or enable a company user (ADMIN)."""
    p = actor.principal
    row = await get(db, p, user_id)
    p.require(Role.ADMIN)
    if active:  # enabling also lifts a login lock (after too many failures), active or not
        email = row.email
        after_commit(db, lambda k: k.throttle.unlock_account(email))
    if row.active == active:
        return row
    await _guard_admins(db, actor, row, row.role, active)
    before = await _snapshot(db, row)
    row.active = active
    if not active:
        await invalidate_user_tokens(db, row)
    await _changed(db, actor, "user.enable" if active else "user.disable", row, before)
    return row


async def reset_password(
    db: AsyncSession,
    passwords: Passwords,
    actor: Actor,
    user_id: uuid.UUID,
    password: str | None,
) -> tuple[User, str | None]:
    """Set a user's password (ADMIN), generating one if none is given; tokens die at once.

    Returns the user and the generated password (None when the caller chose it).
    """
    p = actor.principal
    row = await get(db, p, user_id)
    p.require(Role.ADMIN)
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    check_password(password, row.email, row.name)
    before = await _snapshot(db, row)
    row.password_hash = await passwords.hash_async(password)
    email = row.email
    after_commit(db, lambda k: k.throttle.unlock_account(email))  # a reset also unlocks
    row.password_changed_at = utcnow()
    await invalidate_user_tokens(db, row)
    await _changed(
        db, actor, "user.reset_password", row, before, extra={"generated": generated is not None}
    )
    return row, generated


async def set_departments(
    db: AsyncSession, actor: Actor, user_id: uuid.UUID, body: UserDepartmentsSet
) -> User:
    """Replace the set of departments a user works (ADMIN)."""
    p = actor.principal
    row = await get(db, p, user_id)
    p.require(Role.ADMIN)
    assert row.company_id is not None
    deps = await _check_departments(db, row.company_id, body.department_ids)
    before = await _snapshot(db, row)
    await _replace_departments(db, row, deps)
    if await _snapshot(db, row) != before:
        await _changed(db, actor, "user.set_departments", row, before)
    return row
