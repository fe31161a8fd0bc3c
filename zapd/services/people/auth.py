"""Logins, access JWTs, rotating refresh tokens, API tokens; resolving a bearer to a principal.

Invariants of `authenticate` (every API request): nothing about the *principal* is
cached; a logout, password change, disabled user or company, role or department change
or revoked API token shows on the very next request. What is remembered is only the
outcome of checking an access JWT's signature (`_VerifiedTokens`): a pure function of
the token text and the secret, kept with the secret it was checked against, and the
expiry is checked again on every use. The principal is read on every request, in one
statement built once with bound parameters and run as a hot read (`zapd.kernel.hot`:
on the driver, with the ordinary path as its fallback).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.errors import CloseCode, ErrorCode
from shared.protocol.auth import ApiTokenCreate, TokenPair
from zapd.db.models import ApiToken, Company, RefreshToken, User, UserDepartment
from zapd.errors import NotFound, RateLimited, Unauthorized, ValidationFailed
from zapd.kernel import audit
from zapd.kernel.context import after_commit
from zapd.kernel.hot import HotQuery
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.throttle import Refusal
from zapd.security import HashingBusy, new_token, token_hash

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

JWT_ALGORITHM = "HS256"
API_TOKEN_PREFIX = "zap_"
REFRESH_TOKEN_PREFIX = "zrt_"


def _now() -> datetime:
    return datetime.now(UTC)


def encode_access(kernel: Kernel, user: User, family_id: uuid.UUID) -> str:
    """Mint a short-lived access JWT for `user` in login family `family_id`."""
    now = _now()
    claims = {
        "sub": str(user.id),
        "cid": str(user.company_id) if user.company_id else None,
        "tv": user.token_version,
        "sid": str(family_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=kernel.settings.access_token_ttl)).timestamp()),
    }
    return jwt.encode(claims, kernel.jwt_secret, algorithm=JWT_ALGORITHM)


class _VerifiedTokens:
    """Access JWTs whose signature and claims were already checked, with those claims.

    Bounded (oldest out first). An entry counts only for the secret it was checked with,
    and only until its `exp`: what `jwt.decode` would say of the same text now.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[str, tuple[str, dict[str, Any]]] = {}

    def get(self, secret: str, token: str) -> dict[str, Any] | None:
        """Return the claims of an already checked, unexpired `token` (None: check it)."""
        entry = self._entries.get(token)
        if entry is None or entry[0] != secret or entry[1]["exp"] <= time.time():
            return None
        return entry[1]

    def put(self, secret: str, token: str, claims: dict[str, Any]) -> None:
        """Remember that `token` checked out under `secret`."""
        if len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[token] = (secret, claims)


# Every logged-in client sends one token until it refreshes (access_token_ttl).
_VERIFIED = _VerifiedTokens(4096)


def decode_access(kernel: Kernel, token: str) -> dict[str, Any]:
    """Verify an access JWT's signature and expiry and return its claims."""
    claims = _VERIFIED.get(kernel.jwt_secret, token)
    if claims is None:
        claims = _decode_access(kernel.jwt_secret, token)
        _VERIFIED.put(kernel.jwt_secret, token, claims)
    return dict(claims)  # a copy: the remembered claims stay as checked


def _decode_access(secret: str, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "tv", "sid"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired", code=ErrorCode.TOKEN_EXPIRED) from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid access token") from None
    if claims.get("typ") != "access":
        raise Unauthorized("invalid access token")
    return claims


async def _issue_pair(
    db: AsyncSession,
    kernel: Kernel,
    user: User,
    family_id: uuid.UUID,
    ip: str | None,
    user_agent: str | None,
) -> TokenPair:
    secret = new_token(REFRESH_TOKEN_PREFIX)
    db.add(
        RefreshToken(
            user_id=user.id,
            company_id=user.company_id,
            family_id=family_id,
            token_hash=token_hash(secret),
            expires_at=_now() + timedelta(seconds=kernel.settings.refresh_token_ttl),
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return TokenPair(
        access_token=encode_access(kernel, user, family_id),
        refresh_token=secret,
        expires_in=kernel.settings.access_token_ttl,
    )


class RefreshReused(Unauthorized):
    """A spent refresh token came back: its login family must be revoked."""

    def __init__(self, family_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__(
            "refresh token already used; this login was revoked", code=ErrorCode.REFRESH_REUSED
        )
        self.family_id = family_id
        self.user_id = user_id


async def refresh_or_revoke(
    kernel: Kernel, token: str, *, ip: str | None, user_agent: str | None
) -> TokenPair:
    """Refresh in one transaction; on reuse, revoke the family in another, then refuse."""
    try:
        async with kernel.tx() as db:
            return await refresh(db, kernel, token, ip=ip, user_agent=user_agent)
    except RefreshReused as exc:
        async with kernel.tx() as db:
            await revoke_family(db, exc.family_id)
            user_id = exc.user_id
            after_commit(db, lambda r: _close_family(r, user_id))
        raise


async def _company_active(db: AsyncSession, company_id: uuid.UUID | None) -> bool:
    if company_id is None:
        return True
    return bool(await db.scalar(select(Company.active).where(Company.id == company_id)))


async def login(
    kernel: Kernel,
    email: str,
    password: str,
    *,
    ip: str,
    user_agent: str | None = None,
) -> TokenPair:
    """Check credentials (throttled) and start a new login family.

    The password is checked off the event loop and outside any transaction (on SQLite a
    write transaction holds the one writer lock): read the user, verify, then write. An
    unknown e-mail is verified against a dummy hash, so both paths cost one verify.
    """
    email = email.strip().lower()
    refusal = kernel.throttle.check(email, ip)
    if refusal is not None:
        raise _refused(refusal, email)
    async with kernel.read() as db:
        user = await db.scalar(select(User).where(User.email == email))
        stored = user.password_hash if user is not None else None
        user_id = user.id if user is not None else None
    try:
        ok = await kernel.passwords.verify_async(stored, password)
    except HashingBusy:
        raise RateLimited("too many logins in progress; retry in a second", retry_after=1) from None
    if not ok or user_id is None:
        await _failed(kernel, email, ip, user)
        raise Unauthorized("wrong e-mail or password", code=ErrorCode.BAD_CREDENTIALS)
    new_hash = None
    if stored is not None and kernel.passwords.needs_rehash(stored):
        new_hash = await kernel.passwords.hash_async(password)
    disabled = False
    async with kernel.tx() as db:
        fresh = await db.get(User, user_id)
        # Deleted or re-passworded while we checked: that password is not valid now.
        current = fresh is not None and fresh.password_hash == stored
        if fresh is not None and current:
            disabled = not fresh.active or not await _company_active(db, fresh.company_id)
            if not disabled:
                if new_hash is not None:
                    fresh.password_hash = new_hash
                fresh.last_login_at = _now()
                kernel.throttle.succeeded(email, ip)
                return await _issue_pair(db, kernel, fresh, uuid.uuid4(), ip, user_agent)
    await _failed(kernel, email, ip, user)
    if disabled:
        raise Unauthorized("this account is disabled", code=ErrorCode.ACCOUNT_DISABLED)
    raise Unauthorized("wrong e-mail or password", code=ErrorCode.BAD_CREDENTIALS)


def _refused(refusal: Refusal, email: str) -> RateLimited:
    wait = refusal.retry_after
    if refusal.scope == "account":
        return RateLimited(
            f"this account is locked after too many failed logins; it unlocks by itself in "
            f"{wait}s, or an admin unlocks it now with `zapctl user enable {email}` (or "
            f"`zapctl user reset-password {email}`)",
            retry_after=wait,
            code=ErrorCode.ACCOUNT_LOCKED,
        )
    if refusal.scope == "address":
        return RateLimited(
            f"too many failed logins from this address; retry in {wait}s", retry_after=wait
        )
    return RateLimited(f"too many failed logins; retry in {wait}s", retry_after=wait)


_THROTTLE_ACTOR = Principal(user_id=None, company_id=None, role=None, name="login throttle")


async def _failed(kernel: Kernel, email: str, ip: str, user: User | None) -> None:
    """Count a failed login; a lock it starts goes to the audit log."""
    started = kernel.throttle.failed(email, ip)
    if not started:
        return
    async with kernel.tx() as db:
        for lock in started:
            on_user = lock.scope == "account" and user is not None
            audit.record(
                db,
                Actor(_THROTTLE_ACTOR, ip=ip),
                f"auth.lockout.{lock.scope}",
                "user" if on_user else lock.scope,
                user.id if on_user and user is not None else None,
                company_id=user.company_id if on_user and user is not None else None,
                extra={
                    "key": lock.key,
                    "seconds": lock.seconds,
                    "failures": lock.failures,
                },
            )


async def refresh(
    db: AsyncSession, kernel: Kernel, token: str, *, ip: str | None, user_agent: str | None
) -> TokenPair:
    """Spend a refresh token for a new pair; a spent token presented again kills its family."""
    row = await db.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)).with_for_update()
    )
    if row is None:
        raise Unauthorized("unknown refresh token", code=ErrorCode.BAD_REFRESH_TOKEN)
    now = _now()
    if row.used_at is not None or row.revoked_at is not None:
        # Reuse of a spent token: somebody holds a stolen copy. The caller must end
        # the whole login in a transaction of its own: this one rolls back with the error.
        raise RefreshReused(row.family_id, row.user_id)
    if row.expires_at <= now:
        raise Unauthorized("refresh token expired", code=ErrorCode.BAD_REFRESH_TOKEN)
    user = await db.get(User, row.user_id)
    if user is None or not user.active or not await _company_active(db, user.company_id):
        raise Unauthorized("this account is disabled", code=ErrorCode.ACCOUNT_DISABLED)
    row.used_at = now
    return await _issue_pair(db, kernel, user, row.family_id, ip, user_agent)


def _close_family(kernel: Kernel, user_id: uuid.UUID) -> None:
    # A revoked family cannot be told apart per socket cheaply; closing the user's
    # sockets is the safe side (other logins reconnect with their own valid tokens).
    kernel.hub.close_user(user_id, CloseCode.UNAUTHORIZED, "login revoked")


async def revoke_family(db: AsyncSession, family_id: uuid.UUID) -> None:
    """Revoke every refresh token of one login."""
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )


async def logout(db: AsyncSession, actor: Actor, refresh_token: str | None) -> None:
    """End the caller's login (the family of the given refresh token, else of the access token)."""
    p = actor.principal
    user_id = p.require_user()
    family = p.session_family
    if refresh_token:
        row = await db.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(refresh_token))
        )
        if row is None or row.user_id != user_id:
            raise Unauthorized("unknown refresh token", code=ErrorCode.BAD_REFRESH_TOKEN)
        family = row.family_id
    if family is not None:
        await revoke_family(db, family)
        ended = family
        after_commit(
            db,
            lambda r: r.hub.close_where(
                lambda pr: pr.session_family == ended, CloseCode.UNAUTHORIZED, "logged out"
            ),
        )
    audit.record(db, actor, "auth.logout", "user", user_id)


async def invalidate_user_tokens(db: AsyncSession, user: User) -> None:
    """Kill every token of `user` now: access JWTs (token_version) and refresh tokens."""
    user.token_version += 1
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    user_id = user.id
    after_commit(db, lambda r: _close_user(r, user_id))


def _close_user(kernel: Kernel, user_id: uuid.UUID) -> None:
    kernel.hub.close_user(
        user_id, CloseCode.UNAUTHORIZED, "credentials changed or account disabled"
    )


def _user_principal_query() -> Select[*tuple[Any, ...]]:
    """Everything a user's request needs to be let in, in one statement.

    One row per department the user works (one row with a NULL department for none):
    the user's state, its company's `active`, and whether this login's refresh-token
    family was revoked (logout, refresh-token reuse, password change). Parameters:
    `user_id`, `family`.
    """
    family_revoked = (
        exists()
        .where(RefreshToken.family_id == bindparam("family"), RefreshToken.revoked_at.is_not(None))
        .label("family_revoked")
    )
    return (
        select(
            User.company_id,
            User.role,
            User.name,
            User.email,
            User.active,
            User.token_version,
            Company.active.label("company_active"),
            family_revoked,
            UserDepartment.department_id,
        )
        .select_from(User)
        .outerjoin(Company, Company.id == User.company_id)
        .outerjoin(UserDepartment, UserDepartment.user_id == User.id)
        .where(User.id == bindparam("user_id"))
    )


_USER_PRINCIPAL = HotQuery(_user_principal_query())

# An API token's state and its company's, in one statement. Parameter: `token_hash`.
_API_TOKEN_PRINCIPAL = HotQuery(
    select(
        ApiToken.id,
        ApiToken.company_id,
        ApiToken.name,
        ApiToken.role,
        ApiToken.last_used_at,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        Company.active.label("company_active"),
    )
    .select_from(ApiToken)
    .outerjoin(Company, Company.id == ApiToken.company_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


async def authenticate(kernel: Kernel, bearer: str) -> Principal:
    """Resolve an `Authorization: Bearer` value (JWT or `zap_` API token) to a principal.

    One statement either way, run as a hot read (`Kernel.hot`, no transaction): whatever
    it reads, it reads from one snapshot. Nothing is cached: a logout, a password
    change, a disabled user or company, a role or department change, a revoked API
    token all show on the very next request, whichever zapd serves it.
    """
    if bearer.startswith(API_TOKEN_PREFIX):
        return await _authenticate_api_token(kernel, bearer)
    claims = decode_access(kernel, bearer)
    try:
        user_id = uuid.UUID(claims["sub"])
        family = uuid.UUID(claims["sid"])
    except (ValueError, TypeError):
        raise Unauthorized("invalid access token") from None
    rows = await kernel.hot.rows(_USER_PRINCIPAL, {"user_id": user_id, "family": family})
    user = rows[0] if rows else None
    if user is None or not user.active or user.token_version != claims["tv"]:
        raise Unauthorized("access token revoked", code=ErrorCode.TOKEN_REVOKED)
    if user.company_id is not None and not user.company_active:
        raise Unauthorized("this company is disabled", code=ErrorCode.ACCOUNT_DISABLED)
    if user.family_revoked:
        raise Unauthorized("this login was ended", code=ErrorCode.TOKEN_REVOKED)
    return Principal(
        user_id=user_id,
        company_id=user.company_id,
        role=user.role,
        name=user.name,
        email=user.email,
        department_ids=frozenset(r.department_id for r in rows if r.department_id is not None),
        session_family=family,
    )


async def _authenticate_api_token(kernel: Kernel, bearer: str) -> Principal:
    rows = await kernel.hot.rows(_API_TOKEN_PRINCIPAL, {"token_hash": token_hash(bearer)})
    row = rows[0] if rows else None
    now = _now()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid API token", code=ErrorCode.TOKEN_REVOKED)
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("API token expired", code=ErrorCode.TOKEN_EXPIRED)
    if not row.company_active:
        raise Unauthorized("this company is disabled", code=ErrorCode.ACCOUNT_DISABLED)
    return Principal(
        user_id=None,
        company_id=row.company_id,
        role=row.role,
        name=f"API token {row.name}",
        api_token_id=row.id,
        # Touched at most once a minute, so a busy script does not turn reads into writes.
        api_token_stale=row.last_used_at is None or now - row.last_used_at > timedelta(seconds=60),
    )


async def resolve(kernel: Kernel, bearer: str) -> Principal:
    """Authenticate a bearer in one statement; note API-token use in a write only if due."""
    principal = await authenticate(kernel, bearer)
    await note_use(kernel, principal)
    return principal


async def note_use(kernel: Kernel, principal: Principal) -> None:
    """Touch an API token's `last_used_at` when due (a write transaction: hold no connection)."""
    if principal.api_token_stale and principal.api_token_id is not None:
        async with kernel.tx() as db:
            await db.execute(
                update(ApiToken)
                .where(ApiToken.id == principal.api_token_id)
                .values(last_used_at=_now())
                .execution_options(synchronize_session=False)
            )


async def create_api_token(
    db: AsyncSession, actor: Actor, body: ApiTokenCreate
) -> tuple[ApiToken, str]:
    """Create an API token; the secret is returned once and stored only hashed."""
    p = actor.principal
    p.require(Role.ADMIN)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    if body.expires_at is not None and body.expires_at <= _now():
        raise ValidationFailed("expires_at must be in the future")
    secret = new_token(API_TOKEN_PREFIX)
    row = ApiToken(
        company_id=company_id,
        name=body.name,
        prefix=secret[:12],
        token_hash=token_hash(secret),
        role=body.role,
        created_by_id=p.user_id,
        expires_at=body.expires_at,
    )
    db.add(row)
    await db.flush()
    audit.record(
        db,
        actor,
        "api_token.create",
        "api_token",
        row.id,
        company_id=company_id,
        after=audit.snapshot(row),
    )
    return row, secret


async def list_api_tokens(db: AsyncSession, actor: Actor) -> list[ApiToken]:
    """List the API tokens of the caller's company (admins)."""
    actor.principal.require(Role.ADMIN)
    stmt = select(ApiToken).order_by(ApiToken.id)
    company = actor.principal.company_filter()
    if company is not None:
        stmt = stmt.where(ApiToken.company_id == company)
    return list((await db.scalars(stmt)).all())


async def revoke_api_token(db: AsyncSession, actor: Actor, token_id: uuid.UUID) -> ApiToken:
    """Revoke an API token at once."""
    row = await db.get(ApiToken, token_id)
    if row is None or not actor.principal.owns(row.company_id):
        raise NotFound("API token not found")
    actor.principal.require(Role.ADMIN)

    if row.revoked_at is None:
        row.revoked_at = _now()
        audit.record(db, actor, "api_token.revoke", "api_token", row.id, company_id=row.company_id)
        token_id = row.id
        after_commit(
            db,
            lambda r: r.hub.close_where(
                lambda pr: pr.api_token_id == token_id, CloseCode.UNAUTHORIZED, "API token revoked"
            ),
        )
    return row
