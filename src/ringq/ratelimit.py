"""A token-bucket rate limiter that threads, coroutines (and pipeline stages) take from.

    >>> import ringq
    >>> limiter = ringq.RateLimiter(rate=100, burst=10)   # 100 a second, bursts of 10
    >>> limiter.acquire()          # waits until a token is free
    True
    >>> with limiter:              # the same, as a block
    ...     pass

In a coroutine, ``await limiter.aacquire()`` and ``async with limiter:`` wait on the
event loop's timer instead, so the loop keeps running.

How it waits. The bucket is kept as one number, the due time of the last token
handed out (GCRA, the "virtual scheduling" form of a token bucket), in a
``TokenBucket`` of the core (``_queue_c/bucket.pxi``, or ``_queue_py/bucket.py`` in
the twin). A caller that finds no token reserves the next one in one short,
atomic step of the bucket and then sleeps exactly until that token's time: one
sleep per call, never a polling loop. Reservations are handed out in call order, so
waiters are served first come, first served. A caller whose timeout would end before its token comes takes nothing
and gets False at once, without sleeping. A wait cut short (a cancel token, Ctrl-C,
a cancelled task) gives its tokens back: the next caller may have them.
"""
from __future__ import annotations

import asyncio
import math
import numbers
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Type

from ._queue import CancelToken, TokenBucket

if TYPE_CHECKING:  # only for the annotations, which are never evaluated
    from typing_extensions import Self

    from ._queue_py.bucket import Reservation as _Reservation

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


def _check_rate(rate: object) -> float:
    # Not float(rate) alone: that accepted "10" (a str) and True (a bool, counted as 1.0).
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a real number of tokens a second (an int or a float), "
                        f"not {type(rate).__name__!r}")
    value = float(rate)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"rate must be a positive, finite number of tokens a second, not {value!r}")
    return value


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")
    return value


def _check_cancel(cancel: Optional[CancelToken]) -> None:
    if cancel is not None:
        if not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
        cancel.raise_if_cancelled()


def _resolve(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


_LOCK_TRIES = 8  # failed tries of the lock from a loop before aacquire reserves from a thread
_off_loop: Optional[ThreadPoolExecutor] = None
_off_loop_lock = threading.Lock()


def _off_loop_executor() -> ThreadPoolExecutor:
    """The threads that reserve for aacquire while other threads hammer a limiter's lock (made on first need)."""
    global _off_loop
    with _off_loop_lock:
        if _off_loop is None:
            _off_loop = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ringq-ratelimit")
        return _off_loop


# Limiters whose threads queue on a lock of the limiter's own (see RateLimiter.__init__).
_live: weakref.WeakSet[RateLimiter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _off_loop
    _off_loop = None  # a fork child has none of its threads: it makes its own on need
    for limiter in list(_live):  # a parent's thread may have held one at the fork
        limiter._threads = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RateLimiter:
    """At most *rate* acquisitions a second on average, with bursts of up to *burst*.

    A full bucket holds *burst* tokens; it refills continuously at *rate* tokens a
    second. Each :meth:`acquire` takes one token, waiting for it if the bucket is
    empty; ``await`` :meth:`aacquire` does the same in a coroutine. Thread-safe; one
    limiter may be shared by any number of threads, event loops, executors and
    pipeline stages (``Pipeline.stage(fn, rate=limiter)``). ``rate`` and ``burst``
    may be changed while it is in use, from any thread or task.

    Seed 003's request queue, which sent up to 10 requests and then slept a whole
    second, becomes::

        limiter = ringq.RateLimiter(rate=10, burst=10)
        with ringq.BoundedExecutor(max_workers=4, max_pending=100) as pool:
            def call(url):
                with limiter:                 # waits only as long as the rate needs
                    return fetch(url)
            futures = [pool.submit(call, url) for url in urls]
    """

    __slots__ = ("__weakref__", "_bucket", "_threads")

    def __init__(self, rate: float, burst: int = 1) -> None:
        self._bucket = TokenBucket(_check_rate(rate), _check_count("burst", burst))
        # Threads queue for the bucket on a lock, coroutines never do. The core's bucket
        # needs no lock: each step of it is atomic. But threads that took tokens from it
        # without ever blocking would keep the GIL among themselves, and an event loop
        # beside 8 of them got the GIL only once per round of switch intervals (the
        # loop-lag benchmark, quiet machine: p99 tick lateness 181 ms, against 1.2 ms
        # beside threads on a queue.Queue, whose mutex makes them block and hand the GIL
        # on; 0.5 ms with this lock). The twin's bucket has a lock of its own, which
        # does the same. Re-entrant, as it guards no state: a __del__ that the GC runs
        # while a thread holds it (the bucket's answer is allocated then) may take a
        # token in that same thread.
        self._threads = None if self._bucket.LOCK_CONVOYS else threading.RLock()
        if self._threads is not None:
            _live.add(self)

    @property
    def rate(self) -> float:
        """Tokens added a second. Settable while in use: it applies from the next reservation."""
        return self._bucket.rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._bucket.set_rate(_check_rate(value))

    @property
    def burst(self) -> int:
        """Tokens a full bucket holds. Settable while in use: it applies from the next reservation."""
        return self._bucket.burst

    @burst.setter
    def burst(self, value: int) -> None:
        self._bucket.set_burst(_check_count("burst", value))

    # -- threads ----------------------------------------------------------------------
    def acquire(self, blocking: bool = True, timeout: Optional[float] = None, *,
                cancel: Optional[CancelToken] = None) -> bool:
        """Take one token; True once taken, False if none came in time.

        ``blocking=False`` never waits (the same as ``timeout=0``). *timeout* is in
        seconds on the monotonic clock; None waits as long as needed. A negative
        or NaN timeout raises ValueError, as ``ringq.Queue`` does. Ctrl-C
        interrupts the wait in the main thread.

        *cancel*, a :class:`ringq.CancelToken`: the wait is a wait on the token
        instead of a sleep, and :class:`ringq.Cancelled` is raised as soon as it
        fires (at once, taking nothing, if it already has)::

            token = ringq.CancelToken()
            limiter.acquire(cancel=token)   # token.cancel() elsewhere: Cancelled now

        A wait cut short (the token, Ctrl-C) gives its token back.
        """
        seconds = _check_timeout(timeout) if blocking else 0.0
        _check_cancel(cancel)
        reserved = self._reserve_in_thread(seconds)
        if reserved is None:
            return False
        wait, ticket = reserved
        if wait > 0:
            try:
                if cancel is None:
                    time.sleep(wait)  # one sleep, exactly to the token's time; Ctrl-C interrupts it
                elif cancel.wait(wait):
                    cancel.raise_if_cancelled()
            except BaseException:
                self._bucket.give_back(ticket)
                raise
        return True

    def _acquire_or_stop(self, stop: threading.Event) -> bool:
        """Take one token unless *stop* is set first (used by pipeline stages)."""
        reserved = self._reserve_in_thread(None)
        assert reserved is not None  # no timeout: always reserved
        wait, ticket = reserved
        if wait:
            if stop.wait(wait):
                self._bucket.give_back(ticket)
                return False
            return True
        return not stop.is_set()

    def _reserve_in_thread(self, seconds: Optional[float]) -> Optional[_Reservation]:
        """One token for a thread, which queues for the bucket behind other threads."""
        threads = self._threads
        if threads is None:
            return self._bucket.reserve(1, seconds)
        with threads:
            return self._bucket.reserve(1, seconds)

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

    # -- coroutines -------------------------------------------------------------------
    async def aacquire(self, n: int = 1, *, timeout: Optional[float] = None,
                       cancel: Optional[CancelToken] = None) -> bool:
        """Take *n* tokens in a coroutine; True once taken, False if they would come too late.

        The wait is on the running loop's timer (the loop keeps running), never on a
        thread lock. The compiled core reserves in one step that never waits. The
        pure-Python twin's bucket has a short lock, which a task only tries: while
        another thread holds it the task yields to the loop and tries again, and
        after 8 failed tries (threads hammering the limiter) a worker thread waits
        for the lock and reserves on the task's behalf, while the loop runs on.
        *timeout* and *cancel* are as in :meth:`acquire`; *n* may exceed ``burst``
        (the call then waits for the tokens past the burst to refill).

        A call that raises (:class:`ringq.Cancelled`, or ``asyncio.CancelledError``
        when its task is cancelled) or returns False leaves nothing behind: its
        tokens are given back, and the next caller may have them.
        """
        bucket = self._bucket
        if cancel is None and timeout is None and n.__class__ is int and n == 1 and bucket.take():
            return True  # the fast path: a token due now
        n = _check_count("n", n)
        seconds = _check_timeout(timeout)
        _check_cancel(cancel)
        reserved: Any = bucket.try_reserve(n, seconds)
        tries = 0
        while reserved is False:  # only a bucket with LOCK_CONVOYS (the twin's) is ever busy
            tries += 1
            if tries == _LOCK_TRIES:
                # Threads hammer the lock: a blocked acquire() takes it as soon as it is
                # released, then waits for the GIL while holding it, so a try from the
                # loop almost never finds it free (a task starved for 10 s and more under
                # 8 such threads). A worker thread queues for it like they do.
                reserved = await self._reserve_off_loop(n, seconds)
                break
            await asyncio.sleep(0)  # another thread is inside its few steps: let the loop run
            reserved = bucket.try_reserve(n, seconds)
        if reserved is None:
            return False
        wait, ticket = reserved
        if wait > 0:
            due = monotonic() + wait
            try:
                if cancel is None:
                    # A loop's timer may fire a little early (uvloop: to the millisecond):
                    # never hand the token out before its time.
                    while wait > 0:
                        await asyncio.sleep(wait)
                        wait = due - monotonic()
                else:
                    await self._wait_on_token(due, cancel)
            except BaseException:
                bucket.give_back_nowait(ticket)
                raise
        return True

    async def _reserve_off_loop(self, n: int, seconds: Optional[float]) -> Optional[_Reservation]:
        """Reserve *n* tokens in a worker thread, which waits its turn for the lock; the loop runs on.

        If the awaiting task leaves first (cancelled), what the thread then reserves
        is given back as soon as it has it: nothing is left behind.
        """
        bucket = self._bucket
        cf = _off_loop_executor().submit(bucket.reserve, n, seconds, True)
        try:
            return await asyncio.wrap_future(cf)
        except BaseException:
            def give_back(done: Any) -> None:
                if not done.cancelled() and done.exception() is None and done.result() is not None:
                    bucket.give_back(done.result()[1])

            cf.add_done_callback(give_back)
            raise

    @staticmethod
    async def _wait_on_token(due: float, cancel: CancelToken) -> None:
        """Sleep until *due* (monotonic) on the loop's timer; Cancelled as soon as *cancel* fires."""
        loop = asyncio.get_running_loop()
        token: Any = cancel  # the queue's own hook for async waits (not in the public stub)
        while True:
            cancel.raise_if_cancelled()  # fired, or its deadline has passed
            now = monotonic()
            wait = due - now
            if wait <= 0:
                return
            deadline = cancel.deadline
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            fut = loop.create_future()
            key = token._add_callback(loop, fut)  # cancel() resolves fut from any thread
            timer = loop.call_later(wait, _resolve, fut)
            try:
                await fut
            finally:
                timer.cancel()
                token._remove_callback(key)
            # Woken by the token, the timer, or a timer that fired early: check again.

    async def __aenter__(self) -> Self:
        await self.aacquire()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None

    def __repr__(self) -> str:
        bucket = self._bucket
        return f"<ringq.RateLimiter rate={bucket.rate:g}/s burst={bucket.burst}>"
