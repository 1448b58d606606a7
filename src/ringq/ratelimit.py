"""A token-bucket rate limiter that threads (and pipeline stages) take from.

    >>> import ringq
    >>> limiter = ringq.RateLimiter(rate=100, burst=10)   # 100 a second, bursts of 10
    >>> limiter.acquire()          # waits until a token is free
    True
    >>> with limiter:              # the same, as a block
    ...     pass

How it waits. The bucket is kept as one number, the monotonic time at which it
will next be full (GCRA, the "virtual scheduling" form of a token bucket). A
caller that finds no token reserves the next one under a short lock and then
sleeps, without the lock, exactly until that token's time: one sleep per call,
never a polling loop. Reservations are handed out in call order, so waiters are
served first come, first served. A caller whose timeout would end before its
token comes takes nothing and gets False at once, without sleeping.
"""
from __future__ import annotations

import math
import numbers
import threading
import time
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Optional, Type

from ._queue import CancelToken

if TYPE_CHECKING:
    from typing_extensions import Self  # only for the annotations, which are never evaluated

__all__ = ["RateLimiter"]


def _check_timeout(timeout: object) -> Optional[float]:
    """The timeout as a float (None: forever); ValueError/TypeError like ringq.Queue."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    seconds = float(timeout)  # type: ignore[arg-type]  # TypeError for a non-number
    if math.isnan(seconds):
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return None if math.isinf(seconds) else seconds


class RateLimiter:
    """At most *rate* acquisitions a second on average, with bursts of up to *burst*.

    A full bucket holds *burst* tokens; it refills continuously at *rate* tokens a
    second. Each :meth:`acquire` takes one token, waiting for it if the bucket is
    empty. Thread-safe; one limiter may be shared by any number of threads,
    executors and pipeline stages (``Pipeline.stage(fn, rate=limiter)``).

    Seed 003's request queue, which sent up to 10 requests and then slept a whole
    second, becomes::

        limiter = ringq.RateLimiter(rate=10, burst=10)
        with ringq.BoundedExecutor(max_workers=4, max_pending=100) as pool:
            def call(url):
                with limiter:                 # waits only as long as the rate needs
                    return fetch(url)
            futures = [pool.submit(call, url) for url in urls]
    """

    __slots__ = ("_burst", "_interval", "_lock", "_rate", "_tolerance", "_ready_at")

    def __init__(self, rate: float, burst: int = 1) -> None:
        # Not float(rate): that accepted "10" (a str) and True (a bool, counted as 1.0).
        given: object = rate  # typed float, but checked for what callers really pass
        if isinstance(given, bool) or not isinstance(given, numbers.Real):
            raise TypeError(f"rate must be a real number of tokens a second (an int or a float), "
                            f"not {type(given).__name__!r}")
        rate = float(rate)
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive, finite number of tokens a second, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise TypeError(f"burst must be an integer, not {type(burst).__name__!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, not {burst}")
        self._rate = rate
        self._burst = burst
        self._interval = 1.0 / rate
        # A token may be taken up to this long before its steady-rate time: the burst.
        self._tolerance = (burst - 1) * self._interval
        # The time the next token is due at the steady rate. In the past: the bucket
        # has been refilling since then (capped at `burst` tokens by the tolerance).
        self._ready_at = monotonic() - self._tolerance  # starts full
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Tokens added a second."""
        return self._rate

    @property
    def burst(self) -> int:
        """Tokens a full bucket holds."""
        return self._burst

    def _reserve(self, timeout: Optional[float]) -> Optional[float]:
        """Take the next token; return how long to sleep for it, or None if it comes too late."""
        with self._lock:
            now = monotonic()
            due = max(self._ready_at, now - self._tolerance)
            wait = due - now
            if wait <= 0:
                self._ready_at = due + self._interval
                return 0.0
            if timeout is not None and wait > timeout:
                return None
            self._ready_at = due + self._interval
            return wait

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None, *,
                cancel: Optional[CancelToken] = None) -> bool:
        """Take one token; True once taken, False if none came in time.

        ``blocking=False`` never waits (the same as ``timeout=0``). *timeout* is in
        seconds on the monotonic clock; None waits as long as needed. A negative
        or NaN timeout raises ValueError, as ``ringq.Queue`` does. Ctrl-C
        interrupts the wait in the main thread (no token is given back).

        *cancel*, a :class:`ringq.CancelToken`: the wait is a wait on the token
        instead of a sleep, and :class:`ringq.Cancelled` is raised as soon as it
        fires (at once, taking nothing, if it already has; a slot reserved by a
        wait that is cut short is not given back, as with Ctrl-C)::

            token = ringq.CancelToken()
            limiter.acquire(cancel=token)   # token.cancel() elsewhere: Cancelled now
        """
        seconds = _check_timeout(timeout) if blocking else 0.0
        if cancel is not None:
            if not isinstance(cancel, CancelToken):
                raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
            cancel.raise_if_cancelled()
        wait = self._reserve(seconds)
        if wait is None:
            return False
        if wait > 0:
            if cancel is None:
                time.sleep(wait)  # one sleep, exactly to the token's time; Ctrl-C interrupts it
            elif cancel.wait(wait):
                cancel.raise_if_cancelled()
        return True

    def _acquire_or_stop(self, stop: threading.Event) -> bool:
        """Take one token unless *stop* is set first (used by pipeline stages)."""
        wait = self._reserve(None)
        if wait:
            return not stop.wait(wait)
        return not stop.is_set()

    def try_acquire(self) -> bool:
        """Take a token if one is free now, without waiting."""
        return self.acquire(blocking=False)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"<ringq.RateLimiter rate={self._rate:g}/s burst={self._burst}>"
