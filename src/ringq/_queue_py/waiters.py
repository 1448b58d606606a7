"""Waiter lists, parking and wake-ups: how a blocked thread sleeps and who wakes it.

Every waiting call parks on a private lock of its own, queued FIFO per condition
(a queue's getters, putters, joiners). A waker only removes the waiter from its list
and releases its lock; the woken thread re-checks the queue itself. A select() or a
cancel token wait sits in several lists at once through a _Call and its _Links.

The C side of this file is ``_queue_c/waiters.pxi``.
"""
from __future__ import annotations

from _thread import allocate_lock, get_ident
from collections import deque
from threading import RLock
from typing import TYPE_CHECKING, Any

from .._loopguard import refuse as _refuse_blocking
from .async_waiters import _GONE, _LINKED, _WOKEN, _TaskWaiter
from .timeouts import _acquire_until, _earlier, _running_loop

_SWEEP_MIN = 64  # task waits between sweeps of closed loops' records, at least

if TYPE_CHECKING:
    from .tokens import CancelToken


class _Call:
    """One waiting call that sits in several waiter lists at once (select, cancel tokens).

    Every list holds a _Link to it. The first waker whose link wins the claim wakes
    the call; the others find it claimed and skip it (see _WaitList.wake).
    """

    __slots__ = ("parker", "_claim", "won")

    def __init__(self) -> None:
        self.parker = allocate_lock()
        self.parker.acquire()
        self._claim = allocate_lock()  # acquired (non-blocking) by the winner: an atomic test-and-set
        self.won: Any = None

    def claim(self, source: Any) -> bool:
        """Called by a waker under its list's lock: True if this claim won the call."""
        if self._claim.acquire(False):
            self.won = source
            self.parker.release()
            return True
        return False

    def close(self) -> Any:
        """Once no link is reachable: the source whose claim won, or None (nobody can win now)."""
        if self._claim.acquire(False):
            return None
        return self.won


class _Link:
    """One of a _Call's links, in a queue's or a token's list."""

    __slots__ = ("call", "source")

    def __init__(self, call: _Call, source: Any) -> None:
        self.call = call
        self.source = source

    def release(self) -> bool:
        """The waker's call (list's lock held): False if the call was claimed through another list.

        _WaitList.wake then gives the wake-up to the next waiter, as for a task that left.
        """
        return self.call.claim(self.source)


if hasattr(RLock(), "_recursion_count"):  # 3.11 and later
    # How deep this thread holds the lock; a method descriptor, so calling it
    # allocates nothing.
    _depth = type(RLock())._recursion_count  # type: ignore[attr-defined]  # private, not in typeshed
    _DEPTH_SLACK = 0
else:  # 3.9, 3.10: no way to ask; release always (as "with" would)
    def _depth(mutex: Any) -> int:
        return 0

    _DEPTH_SLACK = 1


def _saved_state(mutex: Any) -> Any:
    """What ``mutex._release_save()`` will return, computed before releasing it.

    Taken first so that an exception landing right after the release (a signal
    handler) cannot lose it: the except clause restores the lock from it.
    """
    count = getattr(mutex, "_recursion_count", None)
    return (count() if count is not None else 1, get_ident())



class _WaitList:
    """A FIFO of parked threads, each represented by a lock it is blocked on.

    Every method is called with the queue's lock held.
    """

    __slots__ = ("_parked", "_gone", "_task_waits", "_sweep_at")

    def __init__(self) -> None:
        self._parked: deque[Any] = deque()
        self._gone = 0  # task waiters that left but are still in the deque
        self._task_waits = 0  # task waits begun since the last sweep of closed loops
        self._sweep_at = _SWEEP_MIN  # ... at which the next sweep runs

    def __bool__(self) -> bool:
        return bool(self._parked)

    def wake(self, n: int = 1) -> None:
        """Wake the *n* oldest waiters (fewer if fewer wait).

        A thread's lock.release() returns None; a task waiter's release() returns
        False when it cannot take the wake-up (it left, or its loop is closed), and
        the wake-up then goes to the next waiter.
        """
        while n > 0:
            parked = self._parked  # read again each time: see leave_task's sweep
            if not parked:
                break
            # Unlink (pure bytecode), then release: no check point between the two,
            # so an exception from a signal handler cannot orphan a parked thread.
            waiter = parked[0]
            del parked[0]
            if waiter.release() is not False:
                n -= 1

    def link_task(self) -> _TaskWaiter:
        """Append a waiter for the running task (RuntimeError outside a running loop)."""
        rec = _TaskWaiter(self)
        self._task_waits += 1
        if self._task_waits >= self._sweep_at:
            self._sweep_closed_loops()
        self._parked.append(rec)
        return rec

    def _sweep_closed_loops(self) -> None:
        """Drop the records of tasks whose loop is closed: they can never run again.

        Such a record keeps its task, coroutine and loop alive and counts as waiting
        until a wake-up reaches it. _sweep_at doubles with the records still linked,
        so a sweep of n records follows at least n new waits (O(1) amortised per
        wait), as in the core.
        """
        live = 0
        for w in self._parked:
            if type(w) is _TaskWaiter and w.state == _LINKED:
                if w.loop.is_closed():
                    w.state = _GONE  # owes no wake-up: leave_task will not pass one on
                    self._gone += 1
                else:
                    live += 1
        if self._gone:
            self._parked = deque(w for w in self._parked if getattr(w, "state", _LINKED) != _GONE)
            self._gone = 0
        self._task_waits = 0
        self._sweep_at = max(_SWEEP_MIN, 2 * live)

    def leave_task(self, rec: _TaskWaiter, pass_on: bool) -> None:
        """After a task's wait: leave the list, or, if already woken and *pass_on*, wake the next waiter.

        A task that leaves unwoken stays in the deque, marked gone (removing it
        would cost O(n)); wake() skips it, and the deque is compacted once such
        records are the majority, so polling with timeouts cannot grow it.
        """
        if rec.state == _LINKED:
            rec.state = _GONE
            self._gone += 1
            if self._gone > 32 and 2 * self._gone > len(self._parked):
                # The sweep makes a new deque: whoever waits with the lock released
                # (park) must read self._parked again once it holds the lock.
                self._parked = deque(w for w in self._parked if getattr(w, "state", _LINKED) != _GONE)
                self._gone = 0
        elif rec.state == _WOKEN and pass_on:
            self.wake(1)

    def __len__(self) -> int:
        """Waiting calls (a left task's record may still sit in the deque: not counted)."""
        return len(self._parked) - self._gone

    def wake_all(self) -> None:
        self.wake(len(self._parked))

    def park(
        self, q: Any, ready: Any, deadline: float | None, token: CancelToken | None, call: str
    ) -> bool:
        """Sleep until woken, *deadline*, *token* or an exception (Ctrl-C), with *q*'s lock released.

        Before anything else: LoopBlockingError if this thread runs an event loop
        (blocking *call*, "get", "put"..., names itself in the message; see _loopguard).

        ``q._mutex`` is the queue's RLock, held by the caller (possibly re-entrantly:
        it is released fully, as threading.Condition does). It is held again on return
        and when an exception escapes. Returns True when a waker chose this waiter:
        the caller must use that wake-up or pass it on if it leaves on an exception.
        Callers re-check their condition and deadline. Raises Cancelled when *token*
        fires (a token wait returns False: it passes a wake-up on itself).

        ``ready(q)`` is the caller's condition, by plain reads (see queue_sync.py): it
        is read again once the waiter is linked, and the call does not sleep if it
        holds. Between the caller's check and the link lie check points (this call's
        entry, the lock's allocation...) where a signal handler may run and, the lock
        being re-entrant, make room, put an item or shut the queue down: its wake-up
        found no waiter to wake. Once linked, a handler's wake-up reaches this waiter.
        """
        if _running_loop() is not None:
            _refuse_blocking(call)  # before we link: nothing to undo
        mutex = q._mutex
        if token is not None:
            self._park_with_token(q, ready, deadline, token)
            return False
        waiter = allocate_lock()
        waiter.acquire()
        saved = _saved_state(mutex)
        parked = self._parked
        # Each flag is set by plain bytecode right before its one C call, with no
        # check point between: a flag that is set means the call took effect.
        linked = released = restored = False
        acquired = False
        try:
            linked = True
            parked.append(waiter)
            if not ready(q):  # else: not woken, so unlinked below (a handler changed the queue)
                released = True
                mutex._release_save()
                acquired = _acquire_until(waiter, deadline)  # in slices in the main thread
                restored = True
                mutex._acquire_restore(saved)
        except BaseException:
            # Another exception may land at any check point in here: the finally
            # clauses make each step run anyway.
            try:
                if released and not restored:
                    restored = True
                    mutex._acquire_restore(saved)
            finally:
                if linked:
                    parked = self._parked  # a sweep may have replaced it while we waited
                    if waiter in parked:
                        parked.remove(waiter)
                    else:
                        # A waker chose us just before the exception: hand its wake-up
                        # on (inline, as in wake()), so no other waiter sleeps through it.
                        while parked:
                            other = parked[0]
                            del parked[0]
                            if other.release() is not False:
                                break
            raise
        if acquired:
            return True
        parked = self._parked  # a sweep may have replaced it while we waited
        if waiter in parked:
            parked.remove(waiter)
            return False
        return True  # woken as the deadline passed (or as it re-checked): the caller's re-check uses it

    def _park_with_token(self, q: Any, ready: Any, deadline: float | None, token: CancelToken) -> None:
        """park() with a cancel token: the call sits in this list and in the token's, through one _Call."""
        mutex = q._mutex
        call = _Call()
        link = _Link(call, self)
        tlink = _Link(call, token)
        saved = _saved_state(mutex)
        # As in park(): each flag is set right before its one C call.
        linked = released = restored = tlinked = False
        try:
            linked = True
            self._parked.append(link)
            if not ready(q):  # as in park(): re-checked once linked
                released = True
                mutex._release_save()
                # Linked after the queue link: a token that fires in between is seen by _link.
                tlinked = token._link(tlink)
                if tlinked:
                    _acquire_until(call.parker, _earlier(deadline, token._deadline))
                restored = True
                mutex._acquire_restore(saved)
        except BaseException:
            try:
                if released and not restored:
                    restored = True
                    mutex._acquire_restore(saved)
            finally:
                # tlink may be in the token's list even if _link did not return (_unlink allows either).
                if linked and self._unlink_call(link, token, tlink if released else None, call) is self:
                    self.wake(1)  # a wake-up we will not use: hand it on
            raise
        won = self._unlink_call(link, token, tlink if tlinked else None, call)
        if won is token or (released and not tlinked):
            if won is self:
                self.wake(1)
            token._raise()

    def _unlink_call(self, link: _Link, token: CancelToken, tlink: _Link | None, call: _Call) -> Any:
        """Mutex held: make both links unreachable, then return who claimed the call (or None)."""
        try:
            self._parked.remove(link)
        except ValueError:
            pass
        if tlink is not None:
            token._unlink(tlink)
        return call.close()
