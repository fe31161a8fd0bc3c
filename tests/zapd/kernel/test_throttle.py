"""Login throttle windows, locks and backoff, with an explicit clock."""

from __future__ import annotations

from zapd.kernel.throttle import LoginThrottle


def throttle() -> LoginThrottle:
    return LoginThrottle(100, 60, account_max=3, address_max=4, lockout_base=10, lockout_cap=40)


def test_one_account_from_many_addresses_is_locked() -> None:
    t = throttle()
    assert t.failed("ana@x.lan", "10.0.0.1", now=0) == []
    assert t.failed("ana@x.lan", "10.0.0.2", now=1) == []
    [lock] = t.failed("ana@x.lan", "10.0.0.3", now=2)
    assert (lock.scope, lock.key, lock.seconds, lock.failures) == ("account", "ana@x.lan", 10, 3)
    refusal = t.check("ana@x.lan", "10.0.0.99", now=3)
    assert refusal is not None and refusal.scope == "account" and refusal.retry_after == 9
    assert t.check("bia@x.lan", "10.0.0.99", now=3) is None  # others are not affected
    assert t.check("ana@x.lan", "10.0.0.99", now=12.5) is None  # expired


def test_many_accounts_from_one_address_are_locked() -> None:
    t = throttle()
    for i in range(3):
        assert t.failed(f"u{i}@x.lan", "10.0.0.9", now=i) == []
    [lock] = t.failed("u3@x.lan", "10.0.0.9", now=3)
    assert (lock.scope, lock.key) == ("address", "10.0.0.9")
    refusal = t.check("someone@x.lan", "10.0.0.9", now=4)
    assert refusal is not None and refusal.scope == "address"
    assert t.check("someone@x.lan", "10.0.0.10", now=4) is None


def test_backoff_doubles_up_to_the_cap_then_starts_over_after_calm() -> None:
    t = throttle()
    now = 0.0
    seconds = []
    for _ in range(4):
        for _ in range(3):
            locks = t.failed("ana@x.lan", f"10.1.0.{int(now)}", now=now)
            now += 0.1
        seconds.append(locks[0].seconds)
        now = now + locks[0].seconds + 0.1  # wait the lock out
    assert seconds == [10, 20, 40, 40]
    now += 41  # calm for longer than the cap
    for _ in range(3):
        locks = t.failed("ana@x.lan", "10.2.0.1", now=now)
        now += 0.1
    assert locks[0].seconds == 10


def test_unlock_and_success_forget_the_account() -> None:
    t = throttle()
    for i in range(3):
        t.failed("ana@x.lan", f"10.0.0.{i}", now=i)
    assert t.check("ana@x.lan", "10.0.0.1", now=3) is not None
    assert t.unlock_account("ana@x.lan") is True
    assert t.check("ana@x.lan", "10.0.0.1", now=3) is None
    assert t.unlock_account("ana@x.lan") is False
    t.failed("bia@x.lan", "10.0.0.1", now=4)
    t.failed("bia@x.lan", "10.0.0.2", now=4)
    t.succeeded("bia@x.lan", "10.0.0.2")
    assert t.failed("bia@x.lan", "10.0.0.3", now=5) == []  # the count started over
    figures = t.figures(now=5)
    assert figures["lockouts"] == {"account": 1, "address": 0}
    assert figures["failures"]["all"] == 6
