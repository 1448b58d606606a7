"""ringq.RateLimiter: a token bucket without a polling loop."""
import threading
import time

import pytest

import ringq
import ringq.ratelimit
from _helpers import LONG, Call


def test_a_full_bucket_gives_burst_tokens_at_once_then_one_per_interval():
    limiter = ringq.RateLimiter(rate=20, burst=3)
    start = time.monotonic()
    for _ in range(3):
        assert limiter.acquire()
    assert time.monotonic() - start < 0.04  # the burst did not wait
    assert limiter.acquire(timeout=0) is False  # empty now, and nothing is taken
    assert limiter.acquire()  # waits for the next token: 1/20 s
    assert time.monotonic() - start >= 0.05 * 0.9


def test_steady_rate_over_threads():
    limiter = ringq.RateLimiter(rate=100, burst=1)
    counts = [0] * 4

    def take(i):
        for _ in range(10):
            with limiter:
                counts[i] += 1

    start = time.monotonic()
    calls = [Call(take, i) for i in range(4)]
    for call in calls:
        call.value(LONG)
    elapsed = time.monotonic() - start
    assert counts == [10] * 4
    assert elapsed >= 39 / 100 * 0.95  # 40 tokens: the first free, then one each 10 ms


def test_one_sleep_per_wait_no_polling(monkeypatch):
    sleeps = []
    real_sleep = time.sleep
    monkeypatch.setattr(ringq.ratelimit.time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))
    limiter = ringq.RateLimiter(rate=10, burst=1)
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert len(sleeps) == 2  # the first token was there; each later one: exactly one sleep
    assert all(0.05 < s <= 0.1 + 1e-6 for s in sleeps), sleeps


def test_timeout_that_ends_before_the_token_returns_false_at_once():
    limiter = ringq.RateLimiter(rate=1, burst=1)
    assert limiter.acquire()
    start = time.monotonic()
    assert limiter.acquire(timeout=0.3) is False  # the token is ~1 s away
    assert time.monotonic() - start < 0.2
    assert limiter.acquire(blocking=False) is False
    assert limiter.try_acquire() is False


def test_timeout_long_enough_waits_for_the_token():
    limiter = ringq.RateLimiter(rate=10, burst=1)
    limiter.acquire()
    assert limiter.acquire(timeout=1.0) is True


def test_validation():
    limiter = ringq.RateLimiter(5)
    with pytest.raises(ValueError):
        limiter.acquire(timeout=-1)
    with pytest.raises(ValueError):
        limiter.acquire(timeout=float("nan"))
    with pytest.raises(TypeError):
        limiter.acquire(timeout="1")
    for bad_rate in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            ringq.RateLimiter(bad_rate)
    with pytest.raises(ValueError):
        ringq.RateLimiter(1, burst=0)
    with pytest.raises(TypeError):
        ringq.RateLimiter(1, burst=1.5)
    assert (limiter.rate, limiter.burst) == (5.0, 1)
    assert "rate=5/s" in repr(limiter)


def test_waiters_are_served_in_call_order():
    limiter = ringq.RateLimiter(rate=20, burst=1)
    limiter.acquire()
    order = []
    threads = []
    for i in range(3):
        t = threading.Thread(target=lambda i=i: (limiter.acquire(), order.append(i)))
        t.start()
        threads.append(t)
        time.sleep(0.02)  # each reserves its token before the next thread starts
    for t in threads:
        t.join(LONG)
    assert order == [0, 1, 2]
