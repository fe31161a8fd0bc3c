"""Login throttling: per (e-mail, address), per account and per address, with backoff.

Invariants:
- Three sliding windows of failed logins (all `window` seconds long):
  * (e-mail, address): `max_failures` → wait until the oldest failure leaves the window;
  * per account (the e-mail, from any address): `account_max` → the account is locked;
  * per address (any e-mail from one IP): `address_max` → the address is locked.
  So one account guessed from many addresses, and many accounts sprayed from one address,
  are both stopped, besides the classic (e-mail, address) case.
- A lock lasts `lockout_base` seconds, doubled at each new lock of the same key, up to
  `lockout_cap`; the doubling starts over once the key stayed calm for `lockout_cap`.
  While locked, attempts are refused before any password is checked (no argon2 spent).
- Keys are the e-mail as typed (normalized) whether or not such a user exists, so a lock
  tells nothing about which accounts exist.
- A successful login forgets the (e-mail, address) failures and the account's; an admin
  re-enabling the user or resetting the password forgets the account's lock
  (`unlock_account`). Address locks only expire.
- State is in memory (one daemon per state dir) and bounded: past `MAX_KEYS` keys per
  table the oldest entries go. Counters feed Prometheus (`figures`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["pair", "account", "address"]
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Refusal:
    """An attempt refused before checking the password: why, and for how long."""

    scope: Scope
    retry_after: int


@dataclass(frozen=True)
class Lockout:
    """A lock that just started (for the audit log)."""

    scope: Scope
    key: str
    seconds: int
    failures: int


@dataclass
class _Key:
    failures: deque[float] = field(default_factory=deque)
    until: float = 0.0  # locked until (monotonic)
    streak: int = 0  # locks in a row (the backoff exponent)


class LoginThrottle:
    """Sliding windows of failed logins and the locks they cause."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        *,
        account_max: int = 10,
        address_max: int = 20,
        lockout_base: float = 60.0,
        lockout_cap: float = 3600.0,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.account_max = account_max
        self.address_max = address_max
        self.lockout_base = lockout_base
        self.lockout_cap = max(lockout_cap, lockout_base)
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._accounts: dict[str, _Key] = {}
        self._addresses: dict[str, _Key] = {}
        self.failures_total = 0
        self.lockouts: Counter[str] = Counter()  # scope -> locks started
        self.refused: Counter[str] = Counter()  # scope -> attempts refused

    # ------------------------------------------------------------------ windows

    def _prune(self, q: deque[float], now: float) -> None:
        while q and now - q[0] >= self.window:
            q.popleft()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        self._prune(q, now)
        if not q:
            del self._failures[key]
        return q

    @staticmethod
    def _bound(table: dict[object, object]) -> None:
        while len(table) > MAX_KEYS:  # bound memory under a spray of keys
            del table[next(iter(table))]

    # ------------------------------------------------------------------ checks

    def check(self, email: str, ip: str, now: float | None = None) -> Refusal | None:
        """Return why an attempt must be refused now, or None to go ahead."""
        now = time.monotonic() if now is None else now
        for scope, table, key in (
            ("account", self._accounts, email),
            ("address", self._addresses, ip),
        ):
            st = table.get(key)
            if st is not None and st.until > now:
                self.refused[scope] += 1
                return Refusal(scope, max(1, int(st.until - now + 0.999)))  # type: ignore[arg-type]
        q = self._recent((email, ip), now)
        if len(q) >= self.max_failures:
            self.refused["pair"] += 1
            return Refusal("pair", max(1, int(self.window - (now - q[0]) + 0.999)))
        return None

    def retry_after(self, email: str, ip: str, now: float | None = None) -> int:
        """Return seconds to wait before another try (0: go ahead)."""
        refusal = self.check(email, ip, now)
        return refusal.retry_after if refusal else 0

    def failed(self, email: str, ip: str, now: float | None = None) -> list[Lockout]:
        """Count one failed attempt; return the locks it started."""
        now = time.monotonic() if now is None else now
        self.failures_total += 1
        key = (email, ip)
        self._recent(key, now)
        self._failures.setdefault(key, deque()).append(now)
        self._bound(self._failures)  # type: ignore[arg-type]
        started = []
        for scope, table, name, limit in (
            ("account", self._accounts, email, self.account_max),
            ("address", self._addresses, ip, self.address_max),
        ):
            st = table.setdefault(name, _Key())
            self._bound(table)  # type: ignore[arg-type]
            self._prune(st.failures, now)
            st.failures.append(now)
            if len(st.failures) >= limit and st.until <= now:
                if st.until and now - st.until > self.lockout_cap:
                    st.streak = 0  # calm for long enough: the backoff starts over
                st.streak += 1
                seconds = int(min(self.lockout_cap, self.lockout_base * 2 ** (st.streak - 1)))
                st.until = now + seconds
                failures = len(st.failures)
                st.failures.clear()
                self.lockouts[scope] += 1
                started.append(Lockout(scope, name, seconds, failures))  # type: ignore[arg-type]
        return started

    def succeeded(self, email: str, ip: str) -> None:
        """Forget the failures of a good login (its pair and its account)."""
        self._failures.pop((email, ip), None)
        self._accounts.pop(email, None)

    def unlock_account(self, email: str) -> bool:
        """Lift an account's lock and forget its failures (an admin's action)."""
        for key in [k for k in self._failures if k[0] == email]:
            del self._failures[key]
        return self._accounts.pop(email, None) is not None

    def figures(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """Counters and current locks, for Prometheus."""
        now = time.monotonic() if now is None else now
        return {
            "failures": {"all": self.failures_total},
            "lockouts": {s: self.lockouts[s] for s in ("account", "address")},
            "refused": {s: self.refused[s] for s in ("pair", "account", "address")},
            "locked": {
                "account": sum(1 for st in self._accounts.values() if st.until > now),
                "address": sum(1 for st in self._addresses.values() if st.until > now),
            },
        }
