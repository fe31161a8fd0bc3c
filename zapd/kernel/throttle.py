"""Login throttling: too many failures for one account from one address → wait."""

from __future__ import annotations

import time
from collections import deque


class LoginThrottle:
    """A sliding window of failed logins per (e-mail, IP)."""

    def __init__(self, max_failures: int = 5, window: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, email: str, ip: str, now: float | None = None) -> int:
        """Return seconds to wait before another try (0: go ahead)."""
        now = time.monotonic() if now is None else now
        q = self._recent((email, ip), now)
        if len(q) < self.max_failures:
            return 0
        return max(1, int(self.window - (now - q[0]) + 0.999))

    def failed(self, email: str, ip: str, now: float | None = None) -> None:
        """Count one failed attempt."""
        now = time.monotonic() if now is None else now
        key = (email, ip)
        self._recent(key, now)
        self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            oldest = next(iter(self._failures))
            del self._failures[oldest]

    def succeeded(self, email: str, ip: str) -> None:
        """Forget failures after a good login."""
        self._failures.pop((email, ip), None)
