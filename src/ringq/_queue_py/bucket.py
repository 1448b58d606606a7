"""TokenBucket: the state of a ringq.RateLimiter, and the only code that touches it.

The C side of this file is ``_queue_c/bucket.pxi``; ringq/ratelimit.py holds the
waiting, which both share. The bucket is kept as one number, the due time of the
last token handed out (GCRA, the "virtual scheduling" form of a token bucket), plus
the due times of tokens that waits cut short gave back while later tokens were
already reserved (the next callers take those first).

Every method is one short section under ``_lock`` (re-entrant, for a ``__del__`` or
a signal handler that takes a token: see "under self._lock" below), which is never
held across a wait. Why the core has its own: a thread blocked on a ``threading.Lock`` is handed
the lock when it is released, and then waits for the GIL while holding it. Under
threads that hammer a limiter, its lock is then nearly always held by a thread that
cannot run, and a coroutine, which may only *try* the lock, starves. The core's
sections are atomic under the GIL instead (a PyMutex on free-threaded builds, which
detaches while it waits), so nobody holds its state without running. Here,
:meth:`try_reserve` answers False while the lock is held, and ratelimit.py then
reserves from a worker thread (``LOCK_CONVOYS``).

A ticket (what a reservation that may be cut short keeps, to give its tokens back)
is ``(last due time before it, its own last due time or None, the due time of its
first new token, the number of new tokens, the interval then, the given-back due
times it reused)``: the new tokens are ``first + i * interval`` for ``i < k``.
"""
from __future__ import annotations

from _thread import RLock
from collections import deque
from time import monotonic
from typing import Deque, List, Optional, Tuple, Union

from .timeouts import _live_buckets

Ticket = Tuple[float, Optional[float], float, int, float, Tuple[float, ...]]
Reservation = Tuple[float, Optional[Ticket]]

_TAKEN: Reservation = (0.0, None)  # due now, nothing to give back


class TokenBucket:
    """The GCRA state of a rate limiter; the caller validates *rate* (> 0) and *burst* (>= 1)."""

    __slots__ = ("_burst", "_freed", "_interval", "_last", "_lock", "_rate", "_returns", "_tolerance",
                 "_version", "__weakref__")

    #: A loop may find the lock held by a thread that waits for the GIL (see above).
    LOCK_CONVOYS = True

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = burst
        self._interval = 1.0 / rate
        # A token may be taken up to this long before its steady-rate time: the burst.
        self._tolerance = (burst - 1) * self._interval
        # The next token is due one interval after the last, or at once if the bucket
        # has refilled since (the tolerance caps the refill at `burst` tokens). This
        # one makes the bucket start full.
        self._last = monotonic() - self._tolerance - self._interval
        # Due times (ascending, in the future) of tokens given back behind later ones.
        self._freed: List[float] = []
        # Give-backs from a loop that found the lock taken; its next holder applies them.
        self._returns: Deque[Ticket] = deque()
        self._version = 0  # bumped by every change of the fields above (see _reserve_locked)
        self._lock = RLock()
        _live_buckets.add(self)  # a fork child resets the lock (timeouts._reset_after_fork)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    def set_rate(self, rate: float) -> None:
        """Tokens a second from the next reservation on."""
        interval = 1.0 / rate
        with self._lock:
            self._rate = rate
            self._interval = interval
            self._tolerance = (self._burst - 1) * interval
            self._version += 1

    def set_burst(self, burst: int) -> None:
        """The bucket's size from the next reservation on."""
        with self._lock:
            self._burst = burst
            self._tolerance = (burst - 1) * self._interval
            self._version += 1

    def take(self) -> bool:
        """Take one token if one is due now and nothing stands in the way; False: use reserve().

        Never waits, not even for the lock (False while it is held).
        """
        lock = self._lock
        if not lock.acquire(False):
            return False
        try:
            if self._returns or self._freed:
                return False
            now = monotonic()
            first = self._last + self._interval
            floor = now - self._tolerance
            if first < floor:
                first = floor
            if first > now:
                return False
            self._last = first  # read and written with no call in between: one step
            self._version += 1
            return True
        finally:
            lock.release()

    def reserve(self, n: int, timeout: Optional[float], keep_ticket: bool = False) -> Optional[Reservation]:
        """Take *n* tokens: (seconds until the last is due, ticket to give them back) or None.

        None: the last token would come after *timeout* (None: no limit), and nothing
        is taken. The ticket is None when there is nothing to wait for, unless
        *keep_ticket* (a reservation for a task that may be gone by the time it has it).
        """
        with self._lock:
            return self._reserve_locked(n, timeout, keep_ticket)

    def try_reserve(self, n: int, timeout: Optional[float],
                    keep_ticket: bool = False) -> Union[Reservation, None, bool]:
        """reserve() without waiting for the lock: False while another thread holds it."""
        lock = self._lock
        if not lock.acquire(False):
            return False
        try:
            return self._reserve_locked(n, timeout, keep_ticket)
        finally:
            lock.release()

    def give_back(self, ticket: Optional[Ticket]) -> None:
        """Undo a reservation whose wait was cut short: its tokens go to the next callers."""
        if ticket is not None:
            with self._lock:
                self._give_back_locked(ticket)

    def give_back_nowait(self, ticket: Optional[Ticket]) -> None:
        """give_back() from a loop: never waits for the lock; its next holder applies it."""
        if ticket is None:
            return
        lock = self._lock
        if lock.acquire(False):
            try:
                self._give_back_locked(ticket)
            finally:
                lock.release()
        else:
            self._returns.append(ticket)

    # -- under self._lock ---------------------------------------------------------------
    # The lock is re-entrant: a __del__ that the GC runs, or a signal handler, may take
    # or give tokens in the thread that holds it. So each change is computed first (its
    # allocations are where the GC may run, its calls where a handler may) and then
    # committed only if _version shows that no such nested call changed the bucket
    # meanwhile (else it is computed again), by plain stores with no call in between.

    def _reserve_locked(self, n: int, timeout: Optional[float], keep_ticket: bool) -> Optional[Reservation]:
        while self._returns:
            self._give_back_locked(self._returns.popleft())
        while True:
            version = self._version
            now = monotonic()
            freed = self._freed
            # Given-back tokens still to come keep their place; past ones are gone (taken
            # late, they could bunch up with the tokens after them).
            past = 0
            while past < len(freed) and freed[past] <= now:
                past += 1
            reused = tuple(freed[past:past + n])
            rest = freed[past + len(reused):] if past or reused else freed
            k = n - len(reused)
            prev_last = self._last
            interval = self._interval
            due = reused[-1] if reused else now
            first = own_last = 0.0
            if k:
                first = max(prev_last + interval, now - self._tolerance)
                own_last = first + (k - 1) * interval
                due = max(due, own_last)
            wait = due - now
            if timeout is not None and wait > timeout:
                return None
            ticket = None if wait <= 0 and not keep_ticket else (
                prev_last, own_last if k else None, first, k, interval, reused)
            if self._version != version:
                continue  # a nested call took or gave tokens: again, from what it left
            self._freed = rest
            self._last = own_last if k else prev_last
            self._version = version + 1
            return _TAKEN if ticket is None else (max(wait, 0.0), ticket)

    def _give_back_locked(self, ticket: Ticket) -> None:
        prev_last, own_last, first, k, interval, reused = ticket
        new = [first + i * interval for i in range(k)]
        while True:
            version = self._version
            restore = own_last is not None and self._last == own_last
            # Nobody reserved after it: as if it never came. Else later callers wait
            # behind its tokens: the next ones may have them.
            slots = list(reused) if restore or own_last is None else list(reused) + new
            now = monotonic()
            slots = [s for s in slots if s > now]
            freed = sorted(self._freed + slots) if slots else self._freed
            if self._version != version:
                continue
            self._freed = freed
            self._last = prev_last if restore else self._last
            self._version = version + 1
            return

    def _reset_after_fork(self) -> None:
        """In a fork child: a thread of the parent may have held the lock at the fork."""
        self._lock = RLock()
