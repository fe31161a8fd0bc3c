"""First-time set-up of an instance: state dir, secrets, schema, first global admin."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.protocol.emails import normalize_email as shared_normalize_email
from zapd.config import JWT_SECRET_FILENAME
from zapd.db import migrate
from zapd.db.engine import create_engine, session_factory
from zapd.db.models import User
from zapd.errors import Conflict, ValidationFailed
from zapd.password_policy import check_password_strength
from zapd.security import (
    MIN_PASSWORD_LENGTH,
    ensure_secret_file,
    hash_password,
    prepare_state_dir,
    verify_password,
)


class AdminOutcome(enum.StrEnum):
    """What `init` did to the global admin."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    UPDATED = "updated"


@dataclass(frozen=True)
class InitResult:
    """What `init_instance` did."""

    state_dir: Path
    database_url: str
    jwt_secret_file: Path
    revision: str
    admin_email: str
    admin: AdminOutcome


def normalize_email(email: str) -> str:
    """Validate an e-mail address and return it lower-cased (internal domains accepted)."""
    try:
        return shared_normalize_email(email)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def check_password(password: str, *user_inputs: str | None) -> None:
    """Refuse passwords that are too short, common or trivially guessable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    check_password_strength(password, *user_inputs)


async def init_instance(
    *,
    state_dir: Path,
    database_url: str,
    admin_email: str,
    admin_password: str,
    admin_name: str = "Administrator",
    force: bool = False,
) -> InitResult:
    """Prepare an instance; idempotent, refuses to overwrite an admin without `force`."""
    email = normalize_email(admin_email)
    check_password(admin_password, email, admin_name)
    prepare_state_dir(state_dir)
    secret_file = state_dir / JWT_SECRET_FILENAME
    ensure_secret_file(secret_file)

    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        outcome = await _ensure_admin(engine, email, admin_password, admin_name, force)
        revision = (await migrate.status(engine)).current or ""
    finally:
        await engine.dispose()
    return InitResult(
        state_dir=state_dir,
        database_url=database_url,
        jwt_secret_file=secret_file,
        revision=revision,
        admin_email=email,
        admin=outcome,
    )


async def _ensure_admin(
    engine: AsyncEngine, email: str, password: str, name: str, force: bool
) -> AdminOutcome:
    factory = session_factory(engine)
    async with factory.begin() as db:
        admins = list((await db.scalars(select(User).where(User.company_id.is_(None)))).all())
        same = next((u for u in admins if u.email == email), None)
        if same is not None and verify_password(same.password_hash, password) and same.active:
            return AdminOutcome.UNCHANGED
        if admins and not force:
            if same is not None:
                raise Conflict(
                    f"global admin {email} already exists with another password;"
                    " use --force to reset it"
                )
            raise Conflict(
                f"a global admin already exists ({admins[0].email}); use --force to add {email}"
            )
        taken = await db.scalar(select(User).where(User.email == email))
        if taken is not None and taken.company_id is not None:
            raise Conflict(f"{email} already belongs to a company user")
        if same is not None:
            same.password_hash = hash_password(password)
            same.active = True
            same.token_version += 1
            return AdminOutcome.UPDATED
        db.add(User(email=email, name=name, password_hash=hash_password(password)))
        return AdminOutcome.CREATED
