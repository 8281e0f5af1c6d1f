"""Backoff waits (jitter injectable), server-given waits, and the retry budget (clock injectable)."""

from __future__ import annotations

from rtsync import Backoff, RateLimited, RetryBudget
from rtsync.errors import AuthenticationError, ConnectionLost, RtsyncError


def test_exponential_with_cap_and_floor() -> None:
    b = Backoff(base=1, cap=8, jitter=lambda v: v)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    b.reset()
    assert b.next_delay() == 1


def test_full_jitter_stays_in_range() -> None:
    b = Backoff(base=1, cap=30)
    for n in range(50):
        delay = b.next_delay()
        assert 0 <= delay <= 30


def test_dashly_style_floor_gives_20_to_30_seconds() -> None:
    b = Backoff(base=10, cap=10, floor=20)
    delays = [b.next_delay() for _ in range(200)]
    assert min(delays) >= 20 and max(delays) <= 30
    assert max(delays) - min(delays) > 5  # really jittered


def test_rate_limit_waits_what_the_server_said() -> None:
    b = Backoff(base=1, cap=2, jitter=lambda v: v)
    assert b.next_delay(RateLimited("slow down", retry_after=42)) == 42


def test_retry_budget_per_window() -> None:
    now = [0.0]
    budget = RetryBudget(attempts=3, window=60, clock=lambda: now[0])
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]
    now[0] = 61
    assert budget.spend()


def test_classification_flags() -> None:
    assert ConnectionLost("x").retryable and RateLimited("x").retryable
    assert not AuthenticationError("x").retryable and not RtsyncError("x").retryable
