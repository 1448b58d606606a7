"""The pure-Python twin of ringq's Cython core (``_queue_c.pyx``).

It is used on PyPy, where no extension is built, and wherever RINGQ_NO_EXTENSIONS=1
is set. It keeps the core's design so that both behave the same way:

* one lock guards every field (here a ``threading.RLock``: a signal handler, or an
  item's ``__del__`` run by the GC, may call back into the same queue from the
  thread that holds it, and a plain Lock would deadlock there);
* waiting threads park on a private lock each, queued FIFO per condition
  (getters, putters, joiners). A waker only removes the waiter from its list and
  releases its lock: the woken thread re-checks the queue itself. A thread that
  leaves after being woken without using the wake-up (timeout, Ctrl-C, or an
  exception from a signal handler right after its wake-up) passes it on to the
  next waiter.

Signals, ``__del__`` and fork: each call is all or nothing
----------------------------------------------------------
Unlike the core, the twin runs bytecode while it holds its lock, so a signal
handler (main thread, between bytecodes; it may raise or use the queue), a
``__del__`` run by the GC, or a ``fork()`` from another thread may land in the
middle of a call. For the thread calls (put, put_many, put_evict, get, get_many,
shutdown) the twin keeps this guarantee against all three: **a handler, a
``__del__`` or a fork child sees each call's effect on the queue either entirely
or not at all**, and an exception from a handler lands before or after a call's
effect, never half-way (a batch is put and counted, or returned, or not moved).

How: CPython runs signal handlers, switches threads (so another thread can fork)
and, from 3.12, runs the GC only at "check points": after a call, at a backward
jump, at a function's entry. So every change of state here is one *step*: plain
field updates (no call, no allocation of a GC object) followed by at most one C
call that moves the data and cannot run Python code (``deque.extend`` of a
ready-made tuple iterator, ``list.append``), or by a pure-bytecode move
(``item = d[0]; del d[0]``; ``batch += islice(...)`` of ``deque.popleft``).
No check point lies inside a step. ``_count`` mirrors the total length of the
deques (every priority level) so that room and availability are decided by plain
reads right before the step; anything computed earlier (a tuple slice, an
iterator: allocations, where the GC may run) is re-validated by plain reads
first. A get takes its items as one step too, and when an exception lands after
the take but before the call returns (at the lock's release, or a watermark
delivery), the items go back to the head of their level, counted again. put()
allocates nothing between its entry and its step, so that a ``__del__`` that the
GC runs during a put() and that puts lands behind its item, as with the C
``SimpleQueue`` (CPython's test_reentrancy): it takes its lock without ``with``
(the ``__exit__`` lookup allocates on 3.11 and earlier) and moves the item with
an iterator made after the previous put's step (see _put_one). One gap remains,
seen on 3.12: a collection that is already due when put() is called (the
caller's own allocations crossed the GC's threshold) runs at put()'s entry,
before its first line, as if just before the call; the C core runs it after.

Limits, said plainly: the guarantee against handlers and forks is CPython's with
a GIL, 3.11 and later (3.10 also has check points at taken conditional jumps,
3.9 at almost every bytecode, so there a handler may land inside a step; the
put() ordering under the GC above holds on 3.9 and 3.10 too, as the GC runs at
allocations there, never at jumps). On free-threaded builds other
threads are excluded by the lock alone, which holds for threads but not for a
fork from a thread that is mid-call; that is what the compiled core is for. A
second exception that lands while a give-back runs may interrupt it (it runs in
``finally`` clauses, each step whole). A PriorityQueue's get_many moves lower-level
items one step per item, so a fork child may see part of such a batch taken (each
item counted correctly). The asyncio calls, select() and cancel-token waits share
the counts and steps but not the give-back and wake-up hand-over of a late
exception: a handler that raises inside them may lose that call's wake-up.
"""
from __future__ import annotations

import asyncio
import inspect
import math
import operator
import os
import random
import sys
import threading
import weakref
from _thread import allocate_lock, get_ident
from collections import deque
from itertools import islice, repeat
from threading import RLock
from time import monotonic
from types import GenericAlias, TracebackType
from typing import Any, AsyncIterator, Coroutine, Generic, Iterable, Iterator, TypeVar

from . import _tokenasync
from ._asyncview import AsyncQueueView
from ._ctor import priority_queue_args as _priority_queue_args
from ._ctor import queue_args as _queue_args
from ._errors import Cancelled, Empty, Full, ShutDown, report_callback_error
from ._loopguard import refuse as _refuse_blocking
from ._stats import QueueStatistics
from ._timeout import deadline as _deadline  # shared with the toolkit modules

__all__ = ["CancelToken", "PriorityQueue", "Producer", "Queue", "aselect", "select"]

T = TypeVar("T")


def _earlier(a: float | None, b: float | None) -> float | None:
    """The earlier of two deadlines (None is the latest)."""
    if a is None:
        return b
    if b is None or a < b:
        return a
    return b


# The thread's running asyncio loop or None, without raising (_asyncio's C function):
# a blocking call looks for one before it waits, never on a fast path (see _loopguard.py).
_running_loop = asyncio._get_running_loop

# Signals are handled in the main thread only. It waits in slices, as the core does,
# so a handler runs within a slice even when nothing interrupts the lock's wait
# (_thread.interrupt_main() sends no signal; Windows and macOS locks are not
# interrupted either). Updated in a fork child, whose only thread becomes the main one.
_MAIN_THREAD_SLICE = 0.05
_main_thread_ident = threading.main_thread().ident


def _acquire_until(lock: Any, deadline: float | None) -> bool:
    """Acquire *lock* before *deadline* (None: no limit); False if the deadline passed first.

    In the main thread it waits in slices of _MAIN_THREAD_SLICE: pending signal
    handlers run between them (at the loop's check points), and an exception they
    raise propagates from here, as from an interrupted acquire().
    """
    if get_ident() != _main_thread_ident:
        if deadline is None:
            return lock.acquire()
        remaining = deadline - monotonic()
        return remaining > 0 and lock.acquire(True, _clamped(remaining))
    while True:
        if deadline is None:
            wait = _MAIN_THREAD_SLICE
        else:
            wait = deadline - monotonic()
            if wait <= 0:
                return False
            if wait > _MAIN_THREAD_SLICE:
                wait = _MAIN_THREAD_SLICE
        if lock.acquire(True, wait):
            return True


def _clamped(seconds: float) -> float:
    """*seconds* no longer than threading.TIMEOUT_MAX (about 49.7 days on Windows).

    A longer wait wakes early; every caller re-checks its deadline and waits again.
    """
    limit = threading.TIMEOUT_MAX
    return limit if seconds > limit else seconds


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


def _as_maxsize(maxsize: Any) -> int:
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


if hasattr(RLock(), "_recursion_count"):  # 3.11 and later
    # How deep this thread holds the lock; a method descriptor, so calling it
    # allocates nothing.
    _depth = type(RLock())._recursion_count
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


_popleft = deque.popleft
_NOTHING: Any = object()  # "no item taken yet" (an item may be None)

# _put_run's answers besides a count of items put.
_SHUT_DOWN = -1
_NO_ROOM_FOR_ALL = -2
_CHANGED = -3


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

    def park(self, mutex: Any, deadline: float | None, token: CancelToken | None, call: str) -> bool:
        """Sleep until woken, *deadline*, *token* or an exception (Ctrl-C), with *mutex* released.

        Before anything else: LoopBlockingError if this thread runs an event loop
        (blocking *call*, "get", "put"..., names itself in the message; see _loopguard).

        *mutex* is the queue's RLock, held by the caller (possibly re-entrantly: it
        is released fully, as threading.Condition does). It is held again on return
        and when an exception escapes. Returns True when a waker chose this waiter:
        the caller must use that wake-up or pass it on if it leaves on an exception.
        Callers re-check their condition and deadline. Raises Cancelled when *token*
        fires (a token wait returns False: it passes a wake-up on itself).
        """
        if _running_loop() is not None:
            _refuse_blocking(call)  # before we link: nothing to undo
        if token is not None:
            self._park_with_token(mutex, deadline, token)
            return False
        waiter = allocate_lock()
        waiter.acquire()
        saved = _saved_state(mutex)
        parked = self._parked
        # Each flag is set by plain bytecode right before its one C call, with no
        # check point between: a flag that is set means the call took effect.
        linked = released = restored = False
        try:
            linked = True
            parked.append(waiter)
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
        return True  # woken as the deadline passed: the caller's re-check uses it

    def _park_with_token(self, mutex: Any, deadline: float | None, token: CancelToken) -> None:
        call = _Call()
        link = _Link(call, self)
        tlink = _Link(call, token)
        self._parked.append(link)
        saved = mutex._release_save()
        linked = False
        try:
            # Linked after the queue link: a token that fires in between is seen by _link.
            linked = token._link(tlink)
            if linked:
                _acquire_until(call.parker, _earlier(deadline, token._deadline))
        except BaseException:
            mutex._acquire_restore(saved)
            if self._unlink_call(link, token, tlink if linked else None, call) is self:
                self.wake(1)  # a wake-up we will not use: hand it on
            raise
        mutex._acquire_restore(saved)
        won = self._unlink_call(link, token, tlink if linked else None, call)
        if not linked or won is token:
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

_LINKED, _WOKEN, _GONE = 0, 1, 2
_SWEEP_MIN = 64  # task waits between sweeps of closed loops' records, at least

# producer() on a queue that its last registered producer shut down: name the rule (as the core).
_PRODUCERS_LEFT = (
    "cannot register a producer: the queue was shut down when its last registered producer "
    "closed. Register every producer before starting any of them (call q.producer() in the "
    "thread that starts them, and close it in the producer): a producer that finishes first "
    "shuts the queue down while the others are still starting"
)


def _resolve(fut: Any) -> None:
    """Wake a parked task: runs on its loop (call_soon_threadsafe or a timer)."""
    if not fut.done():
        fut.set_result(None)


class _TaskWaiter:
    """One wait of one asyncio task, in the same FIFO deque as the threads' locks.

    Fresh per wait. Its state changes under the queue's lock: LINKED, then WOKEN
    (by a waker's release()) or GONE (the task left: timeout, cancellation).
    """

    __slots__ = ("loop", "fut", "thread_ident", "state", "wait_list")

    def __init__(self, wait_list: _WaitList) -> None:
        self.loop = asyncio.get_running_loop()
        self.fut = self.loop.create_future()
        self.thread_ident = get_ident()
        self.state = _LINKED
        self.wait_list = wait_list

    def release(self) -> bool:
        """The waker's call (lock held). False if this waiter cannot take the wake-up."""
        if self.state != _LINKED:
            self.wait_list._gone -= 1
            return False
        self.state = _WOKEN
        try:
            if get_ident() == self.thread_ident:
                # The waker runs on the task's loop: no self-pipe write needed.
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # noqa: BLE001 - RuntimeError: the loop is closed; pass the wake-up on
            return False
        return True


# Every live twin queue, so that a fork child can reset them (see _reset_after_fork).
_live_queues: weakref.WeakSet[Queue[Any]] = weakref.WeakSet()


def _reset_queues_after_fork() -> None:
    global _main_thread_ident
    _main_thread_ident = get_ident()  # the forking thread: the child's only (and main) thread
    for q in list(_live_queues):
        q._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_queues_after_fork)


class Queue(Generic[T]):
    """A bounded FIFO queue for threads: a drop-in for ``queue.Queue``.

    ``maxsize <= 0`` makes it unbounded. Besides the ``queue.Queue`` API it has
    ``put_many``/``get_many``, iteration until shutdown, and a context manager::

        q = Queue(maxsize=100)
        q.put_many(range(10))
        q.get_many(4)          # [0, 1, 2, 3]
        q.shutdown()
        list(q)                # [4, 5, 6, 7, 8, 9]
    """

    __slots__ = (
        "_mutex",
        "_items",
        "_lower",
        "_levels",
        "_lower_count",
        "_count",
        "_maxsize",
        "_unfinished",
        "_shutdown",
        "_getters",
        "_putters",
        "_joiners",
        "_puts",
        "_gets",
        "_high_water",
        "_alert_up",
        "_alert_down",
        "_wm_high",
        "_wm_low",
        "_wm_above",
        "_wm_callback",
        "_wm_delivery",
        "_wm_delivered_above",
        "_producers",
        "_producers_left",
        "_shutdown_cause",
        "_box",
        "_spare",
        "__weakref__",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Bound by a function named Queue, so a bad call's TypeError names Queue(), as the core's does.
        self._maxsize = _as_maxsize(_queue_args(*args, **kwargs))
        self._mutex = RLock()
        # Storage, as in the core: _items is level 0 (a plain queue's only level),
        # _lower holds a PriorityQueue's levels 1.., _lower_count the items in them.
        self._items: deque[T] = deque()
        self._lower: tuple[deque[T], ...] = ()  # made lazily, up to the least urgent level used
        self._levels = 1
        self._lower_count = 0
        self._count = 0  # every level's items: == the deques' total length at every check point
        self._unfinished = 0
        self._shutdown = False
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()
        # Statistics and watermarks, as in the core: a put looks further only when
        # the size reaches _alert_up, a get only when it falls to _alert_down.
        self._puts = 0
        self._gets = 0
        self._high_water = 0
        self._alert_up = 1
        self._alert_down = -1
        self._wm_high = 0
        self._wm_low = 0
        self._wm_above = False
        self._wm_callback: Any = None
        self._wm_delivery: Any = None
        self._wm_delivered_above = False
        self._producers = 0
        self._producers_left = False  # the last registered producer's close shut the queue down
        self._shutdown_cause: BaseException | None = None
        # put()'s step iterator, made ahead of time (see _put_one): None while a put uses it.
        self._box: list[T] = []
        self._spare: Iterator[T] | None = iter(self._box)
        _live_queues.add(self)

    def _reset_after_fork(self) -> None:
        # In a fork child only the forking thread exists: the parked waiters, and any
        # thread that held the lock at the fork, are gone. Forget them.
        self._mutex = RLock()
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()
        self._box = []
        self._spare = iter(self._box)

    __class_getitem__ = classmethod(GenericAlias)

    # -- size --------------------------------------------------------------
    @property
    def maxsize(self) -> int:
        """The bound; ``<= 0`` means unbounded. Assignable, as in ``queue.Queue``."""
        return self._maxsize

    @maxsize.deleter
    def maxsize(self) -> None:
        raise AttributeError("cannot delete the maxsize attribute")

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        value = _as_maxsize(value)
        with self._mutex:
            self._maxsize = value
            self._putters.wake_all()  # room may have grown: let them re-check

    def _room(self) -> int:
        """Free slots (lock held); a large number when unbounded."""
        if self._maxsize <= 0:
            return 1 << 62
        # No call that allocates here (max() packs a tuple, which may run the GC and a
        # re-entrant __del__ after the size was read): maxsize may be below qsize.
        room = self._maxsize - self._count
        return room if room > 0 else 0

    def qsize(self) -> int:
        """Number of items in the queue (a snapshot)."""
        return self._count

    def empty(self) -> bool:
        """True if the queue holds no item (a snapshot)."""
        return not self._count

    def full(self) -> bool:
        """True if the queue is bounded and holds maxsize items or more (a snapshot)."""
        with self._mutex:
            return 0 < self._maxsize <= self._count

    # -- storage: the only steps that know about priority levels (lock held) --
    def _level_deque(self, level: int) -> deque[T]:
        return self._items if level == 0 else self._lower[level - 1]

    def _pop_first(self) -> T:
        """Remove the oldest item of the most urgent non-empty level (size > 0)."""
        self._count -= 1
        if self._items:
            return self._items.popleft()
        lower = self._lower
        k = 0
        while not lower[k]:
            k += 1
        self._lower_count -= 1
        return lower[k].popleft()

    def _first_level(self) -> int:
        """The most urgent level that holds an item (0 if none does)."""
        if self._items:
            return 0
        lower = self._lower
        k = 0
        last = len(lower)
        while k < last and not lower[k]:
            k += 1
        return k + 1 if k < last else 0

    def _least_urgent_level(self) -> int:
        """The least urgent level that holds an item (size > 0)."""
        k = len(self._lower)
        while k > 0 and not self._lower[k - 1]:
            k -= 1
        return k

    # -- put ---------------------------------------------------------------
    def put(
        self, item: T, block: bool = True, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), ShutDown if
        the queue is shut down, and Cancelled if the ``cancel`` token fires first.
        """
        self._put_at(item, 0, block, timeout, cancel)

    def put_nowait(self, item: T) -> None:
        """Put *item* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue:
            self.put(item, block=False)
            return
        self._put_at(item, 0, False, None, None)

    def _put_at(self, item: T, level: int, block: bool, timeout: float | None, cancel: Any) -> None:
        deadline = _deadline(timeout) if block else None
        token = _as_token(cancel) if cancel is not None else None
        if self._put_under_lock(item, level, block, deadline, token):
            self._deliver_watermark()

    def _put_under_lock(self, item: T, level: int, block: bool, deadline: float | None, token: Any) -> bool:
        # Not "with self._mutex": on 3.11 and earlier its __exit__ lookup allocates a
        # bound method, where the GC may run a __del__ that put()s before this item
        # (CPython's test_reentrancy). acquire() allocates nothing.
        mutex = self._mutex
        held = _depth(mutex) - _DEPTH_SLACK
        released = False
        try:
            mutex.acquire()
            event = self._put_locked(item, level, block, deadline, token)
            released = True  # plain bytecode right before the release: no check point between
            mutex.release()
            return event
        except BaseException:
            # Release only what we took: acquire() may have been interrupted (Ctrl-C).
            # The depth is read again if a handler raises at the read's check point.
            # A fast timer's handler can raise at each retry's check point in turn
            # (one new signal per retry, as under load): a read left unfinished would
            # leave the lock held for good, so it is tried three times, nested (a
            # loop's backward jump would be a check point outside the try). Not a
            # finally: Python compiles a finally twice, and this function must stay
            # short (see below: no more reads fit).
            if not released:
                try:
                    taken = _depth(mutex) > held
                except BaseException:  # noqa: BLE001 - a handler raised at the read's check point: read again
                    try:
                        taken = _depth(mutex) > held
                    except BaseException:  # noqa: BLE001
                        taken = _depth(mutex) > held
                if taken:
                    mutex.release()
            raise

    # put() and put_many() keep their work in short helpers: on 3.11 an exception
    # that passes a handler far into a long function makes the interpreter allocate
    # an int, which loops forever when no memory is left at all (test_errors.py).

    def _put_locked(self, item: T, level: int, block: bool, deadline: float | None, token: Any) -> bool:
        """Lock held: put *item* (waiting if *block*); True if a watermark event is due."""
        if self._put_one(item, level):
            event = self._count >= self._alert_up and self._grew()
            if self._getters._parked:
                self._getters.wake(1)
            return event
        if not block:
            raise Full
        return self._put_wait(item, level, deadline, token)

    def _put_wait(self, item: T, level: int, deadline: float | None, token: Any) -> bool:
        """Lock held. put()'s slow path: wait for room."""
        woken = False
        try:
            while True:
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                woken = self._putters.park(self._mutex, deadline, token, "put")
                if self._put_one(item, level):
                    woken = False
                    event = self._count >= self._alert_up and self._grew()
                    if self._getters._parked:
                        self._getters.wake(1)
                    return event
        finally:
            if woken:
                # Leaving on an exception (or Full) after a wake-up we did not use:
                # hand it on, inline (calling wake() is itself a check point).
                parked = self._putters._parked
                while parked:
                    other = parked[0]
                    del parked[0]
                    if other.release() is not False:  # a task that left takes none: next
                        break

    def _put_one(self, item: T, level: int) -> bool:
        """Lock held. Put *item* at *level* as one step if there is room; False if there is none.

        A helper, so that the room check follows the check point at its entry (a
        handler run there may take the room) and nothing lies between check and step.
        """
        # The step is deque.extend() of a ready-made iterator, not append(): unlike
        # deque.append, extend does not leak a reference to the item when it fails with
        # MemoryError (CPython 3.11-3.13), and it allocates nothing that could run the
        # GC inside the step. The iterator is the spare made after the previous put's
        # step, over the empty list _box: making one here would allocate a GC object
        # after the caller evaluated *item*, and a __del__ that the GC runs there and
        # that puts would land ahead of this item (CPython's test_reentrancy).
        spare = self._spare
        if spare is None:
            # A put we re-entered (from a handler or a __del__) holds the spare: this
            # one is nested in its call, so its item may go first, as before its call.
            one = iter((item,))
        else:
            self._spare = None
            one = spare
            self._box.append(item)
        used = False
        try:
            if self._shutdown:
                raise ShutDown
            maxsize = self._maxsize
            if maxsize > 0 and self._count >= maxsize:
                return False
            # One step: plain field updates, then extend (a C call that runs no Python code).
            # The new counts are made before any field changes, and the undo restores
            # the old int objects: a count past 256 is a new int, an allocation, and
            # under memory pressure any of them can fail (see _put_run).
            count = self._count
            unfinished = self._unfinished
            puts = self._puts
            lower_count = self._lower_count
            new_count = count + 1
            new_unfinished = unfinished + 1
            new_puts = puts + 1
            if level:
                new_lower_count = lower_count + 1
                target = self._lower[level - 1]
            else:
                new_lower_count = lower_count
                target = self._items
            self._count = new_count
            self._unfinished = new_unfinished
            self._puts = new_puts
            self._lower_count = new_lower_count
            used = True
            try:
                target.extend(one)
            except MemoryError:  # nothing was added: restore the counts (allocates nothing)
                self._count = count
                self._unfinished = unfinished
                self._puts = puts
                self._lower_count = lower_count
                raise
            return True
        finally:
            if spare is not None:
                # Give the spare back, or make the next one (an exhausted iterator
                # cannot be reused). The GC may run at that allocation: a __del__ that
                # puts lands behind this item. Should a handler raise between these two
                # lines, later puts make their own iterator, as nested ones do.
                box = self._box
                box.clear()
                self._spare = iter(box) if used else spare

    def put_many(
        self,
        items: Iterable[T],
        block: bool = True,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put every item of *items*, in order.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full), a shutdown
        (ShutDown) or a fired ``cancel`` token (Cancelled) the items already put
        stay in the queue, in order, and the rest are not put::

            q.put_many([1, 2, 3])
        """
        self._put_many_at(items, 0, block, timeout, cancel)

    def _put_many_at(self, items: Iterable[T], level: int, block: bool, timeout: float | None, cancel: Any) -> None:
        deadline = _deadline(timeout) if block else None
        try:
            token = _as_token(cancel) if cancel is not None else None
        except Cancelled as e:
            raise _with_put_count(e, 0)  # noqa: B904 - the caught exception itself, re-raised
        batch = items if type(items) is tuple else tuple(items)
        if self._put_many_under_lock(batch, level, block, deadline, token):
            self._deliver_watermark()

    def _put_many_under_lock(
        self, batch: tuple[T, ...], level: int, block: bool, deadline: float | None, token: Any
    ) -> bool:
        mutex = self._mutex
        held = _depth(mutex) - _DEPTH_SLACK  # see _put_under_lock()
        released = False
        try:
            mutex.acquire()
            event = self._put_many_locked(batch, level, block, deadline, token)
            released = True  # as in _put_under_lock()
            mutex.release()
            return event
        except BaseException:
            if not released:  # as in _put_under_lock()
                try:
                    taken = _depth(mutex) > held
                except BaseException:  # noqa: BLE001 - a handler raised at the read's check point: read again
                    try:
                        taken = _depth(mutex) > held
                    except BaseException:  # noqa: BLE001
                        taken = _depth(mutex) > held
                if taken:
                    mutex.release()
            raise

    def _put_many_locked(
        self, batch: tuple[T, ...], level: int, block: bool, deadline: float | None, token: Any
    ) -> bool:
        """Lock held: put_many()'s loop; True if a watermark event is still due."""
        n = len(batch)
        done = 0
        woken = False
        event = False
        maxsize = self._maxsize
        if block and 0 < maxsize < self._count + n and not self._shutdown and (
                deadline is None or monotonic() < deadline) and _running_loop() is not None:
            # Not all fit, so this call will wait: refuse a thread that runs an event
            # loop before any item goes in (park() would, but only after a partial put).
            _refuse_blocking("put_many")
        try:
            while True:
                took = self._put_run(batch, done, level, block)
                if took > 0:
                    woken = False
                    done += took
                    if self._count >= self._alert_up and self._grew():
                        event = True
                    if self._getters._parked:
                        self._getters.wake(took)
                    if event and done < n:
                        # Deliver now, not after the wait for room: outside the lock, as the core does.
                        event = False
                        saved = self._mutex._release_save()
                        try:
                            self._deliver_watermark()
                        finally:
                            self._mutex._acquire_restore(saved)
                        continue
                elif took == _CHANGED:
                    continue
                elif took == _SHUT_DOWN:
                    raise _with_put_count(ShutDown(), done)
                elif took == _NO_ROOM_FOR_ALL:
                    raise _with_put_count(Full(), 0)
                if done == n:
                    return event
                if deadline is not None and monotonic() >= deadline:
                    raise _with_put_count(Full(), done)
                try:
                    woken = self._putters.park(self._mutex, deadline, token, "put_many")
                except Cancelled as e:
                    raise _with_put_count(e, done)  # noqa: B904 - the caught exception itself, re-raised
        finally:
            if woken:  # as in _put_wait()
                parked = self._putters._parked
                while parked:
                    other = parked[0]
                    del parked[0]
                    if other.release() is not False:  # a task that left takes none: next
                        break

    def _put_run(self, batch: tuple[T, ...], done: int, level: int, block: bool) -> int:
        """Lock held. Put as many of batch[done:] as fit now, as one step; return how many.

        Or _SHUT_DOWN, _NO_ROOM_FOR_ALL (block=False and not all fit: nothing put),
        or _CHANGED (the queue changed while the run was prepared: decide again).
        """
        if self._shutdown:
            return _SHUT_DOWN
        n = len(batch)
        maxsize = self._maxsize
        room = n - done if maxsize <= 0 else maxsize - self._count
        if room < 0:
            room = 0  # maxsize may have been lowered below qsize
        if not block and room < n:
            return _NO_ROOM_FOR_ALL
        take = n - done if n - done < room else room  # not min(): no call needed
        if take <= 0:
            return 0
        # The iterator is made first (an allocation: the GC may run a __del__ that uses
        # this queue); then the room is re-checked by plain reads; then one step:
        # the counts, then extend (it iterates a tuple: no Python code runs).
        run = iter(batch if take == n else batch[done:done + take])
        maxsize = self._maxsize
        if self._shutdown or (maxsize > 0 and self._count + take > maxsize):
            return _CHANGED
        # Out of memory, the step is undone whole: the counts get their old int objects
        # back and the items a failed extend appended are popped again. Nothing on that
        # path may allocate, as every allocation may fail there: so every new count (a
        # count past 256 is a new int) and the index of the first new item are made
        # before any field changes. On CPython 3.14+ the iterator and some ints come from
        # free lists, so the first allocation that fails can be any of these, or a
        # block of the deque part-way through the extend.
        count = self._count
        unfinished = self._unfinished
        puts = self._puts
        lower_count = self._lower_count
        new_count = count + take
        new_unfinished = unfinished + take
        new_puts = puts + take
        if level:
            new_lower_count = lower_count + take
            target = self._lower[level - 1]
        else:
            new_lower_count = lower_count
            target = self._items
        first_new = len(target)
        self._count = new_count
        self._unfinished = new_unfinished
        self._puts = new_puts
        self._lower_count = new_lower_count
        try:
            target.extend(run)
        except MemoryError:
            # Pop what went in: back to first_new items. len() makes an int per round
            # (freed again at once); if even that fails, probing the index costs no
            # allocation (but O(items) a round, so it is only the fallback).
            try:
                while len(target) > first_new:
                    target.pop()
            except MemoryError:
                while True:
                    try:
                        target[first_new]
                    except (IndexError, MemoryError):  # past the end (MemoryError: no IndexError could be made)
                        break
                    target.pop()
            self._count = count
            self._unfinished = unfinished
            self._puts = puts
            self._lower_count = lower_count
            raise
        return take

    def put_evict(self, item: T) -> tuple[T, ...]:
        """Put *item* without waiting; if the queue is full, first evict its oldest item.

        Returns the evicted items as a tuple: ``()`` when there was room, else
        ``(oldest,)`` (more only if maxsize was lowered below the size). An evicted
        item counts as done for join()::

            dropped = latest.put_evict(reading)   # never blocks
        """
        return self._put_evict(item, 0)

    def _put_evict(self, item: T, level: int) -> tuple[T, ...]:
        evicted: list[T] = []
        event = False
        with self._mutex:
            while True:
                if self._shutdown:
                    raise ShutDown
                if 0 < self._maxsize <= self._count:
                    victim_level = self._least_urgent_level()
                    if level > victim_level:
                        evicted.append(item)  # less urgent than everything queued: refused
                        break
                    victims = self._level_deque(victim_level)
                    if not victims:
                        continue  # a handler or __del__ took it meanwhile
                    # One step: the counts, then one list.append.
                    victim = victims[0]
                    del victims[0]
                    self._count -= 1
                    if victim_level:
                        self._lower_count -= 1
                    if self._unfinished > 0:
                        self._unfinished -= 1  # an evicted item will never be task_done()
                    evicted.append(victim)
                    del victim
                if self._put_one(item, level):
                    event = self._count >= self._alert_up and self._grew()
                    if self._getters:
                        self._getters.wake(1)
                    break
                if self._unfinished == 0:
                    self._joiners.wake_all()
        if event:
            self._deliver_watermark()
        # The evicted items leave with the caller: their last reference dies outside the lock.
        return tuple(evicted)

    # -- get ---------------------------------------------------------------
    def get(self, block: bool = True, timeout: float | None = None, *, cancel: CancelToken | None = None) -> T:
        """Remove and return the oldest item, waiting up to *timeout* seconds.

        Raises Empty if none arrives (at once with ``block=False``), ShutDown
        once the queue is shut down and empty (chained to the cause a producer
        passed on, see producer()), and Cancelled if the ``cancel`` token fires.
        """
        deadline = _deadline(timeout) if block else None
        token = _as_token(cancel) if cancel is not None else None
        item: Any = _NOTHING
        level = 0
        woken = False
        try:
            with self._mutex:
                while True:
                    if self._count:
                        # Wake a putter first: it needs our lock, so it runs after the take.
                        if self._putters._parked:
                            self._putters.wake(1)
                        level = 0 if self._items else self._first_level()
                        source = self._lower[level - 1] if level else self._items
                        if source:  # re-checked by a plain read: a handler may have run above
                            # One step, pure bytecode: no check point until the lock's release.
                            woken = False
                            item = source[0]
                            del source[0]
                            self._count -= 1
                            self._gets += 1
                            if level:
                                self._lower_count -= 1
                            event = self._count <= self._alert_down and self._shrank()
                            break
                        continue
                    if self._shutdown:
                        _raise_shutdown(self._shutdown_cause)
                    if not block or (deadline is not None and monotonic() >= deadline):
                        raise Empty
                    woken = self._getters.park(self._mutex, deadline, token, "get")
            if event:
                self._deliver_watermark()
        except BaseException:
            # Everything here is inline, each step plain bytecode plus one C call:
            # even calling a helper is a check point where a handler may raise.
            if item is not _NOTHING:
                # The exception landed after the take (at the lock's release): the
                # item goes back to the head, neither lost nor delivered.
                try:
                    self._count += 1
                    self._gets -= 1
                    if level:
                        self._lower_count += 1
                        source = self._lower[level - 1]
                    else:
                        source = self._items
                    source.appendleft(item)
                finally:
                    parked = self._getters._parked
                    while parked:  # a getter may have parked meanwhile
                        other = parked[0]
                        del parked[0]
                        if other.release() is not False:  # a task that left takes none: next
                            break
            elif woken:
                parked = self._getters._parked
                while parked:
                    other = parked[0]
                    del parked[0]
                    if other.release() is not False:  # a task that left takes none: next
                        break
            raise
        return item

    def get_nowait(self) -> T:
        """Remove and return the oldest item without waiting; Empty if there is none.

        In a subclass it calls ``self.get(block=False)``, as ``queue.Queue`` does.
        """
        return self.get(block=False)

    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> list[T]:
        """Wait like get() for at least one item, then return up to *max_items*, oldest first.

        For example::

            batch = q.get_many(64)   # 1 to 64 items
        """
        if isinstance(max_items, bool):  # True is an int, but not a count
            raise TypeError("max_items must be an integer, not 'bool'")
        try:
            n = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if n < 1:
            raise ValueError("max_items must be >= 1")
        deadline = _deadline(timeout) if block else None
        token = _as_token(cancel) if cancel is not None else None
        batch: list[T] = []
        got = 0  # items of level 0 in batch (they come first)
        lower_taken = None  # a PriorityQueue's per-level counts, for a give-back
        woken = False
        event = False
        items = self._items
        pops = map(_popleft, repeat(items))  # allocated before the lock (MemoryError: nothing done)
        try:
            with self._mutex:
                while True:
                    count = self._count
                    if count:
                        k = n if n < count else count
                        if self._putters._parked:
                            self._putters.wake(k)  # they need our lock: they run after the take
                        if items is not self._items:  # replaced by shutdown(immediate=True)
                            items = self._items
                            pops = map(_popleft, repeat(items))
                        top = self._count - self._lower_count  # level 0's length, by plain reads
                        if top:
                            k = n if n < top else top
                            take = islice(pops, k)  # allocates: re-checked below
                            if items is not self._items or self._count - self._lower_count < k:
                                continue  # a handler or __del__ took items meanwhile: decide again
                            # One step, pure bytecode: the counts, then k pops into our list.
                            woken = False
                            got = k
                            self._count -= k
                            self._gets += k
                            batch += take
                        if self._lower_count and got < n:
                            lower_taken = [0] * len(self._lower)
                            woken = False
                            self._take_lower(batch, n, lower_taken)
                        if not batch:
                            continue
                        event = self._count <= self._alert_down and self._shrank()
                        break
                    if self._shutdown:
                        _raise_shutdown(self._shutdown_cause)
                    if not block or (deadline is not None and monotonic() >= deadline):
                        raise Empty
                    woken = self._getters.park(self._mutex, deadline, token, "get_many")
            if event:
                self._deliver_watermark()
        except BaseException:
            # As in get(): inline steps only.
            if batch:
                try:
                    if lower_taken is not None:
                        self._give_back_lower(batch, got, lower_taken)
                    if got:
                        back = batch[got - 1::-1]
                        self._count += got
                        self._gets -= got
                        self._items.extendleft(back)
                finally:
                    parked = self._getters._parked
                    while parked:
                        other = parked[0]
                        del parked[0]
                        if other.release() is not False:  # a task that left takes none: next
                            break
            elif woken:
                parked = self._getters._parked
                while parked:
                    other = parked[0]
                    del parked[0]
                    if other.release() is not False:  # a task that left takes none: next
                        break
            raise
        return batch

    def _take_lower(self, batch: list[T], n: int, taken: list[int]) -> None:
        """Lock held: move items of a PriorityQueue's lower levels to *batch*, most urgent first.

        One step per item (the counts, then one list.append); *taken* counts them
        per level, so that a late exception can give them back.
        """
        lower = self._lower
        for k in range(len(lower)):
            source = lower[k]
            while len(batch) < n and source:  # source read after len()'s check point
                item = source[0]
                del source[0]
                self._count -= 1
                self._lower_count -= 1
                self._gets += 1
                taken[k] += 1
                batch.append(item)

    def _give_back_lower(self, batch: list[T], got: int, taken: list[int]) -> None:
        """After a late exception: return *batch*'s lower-level items to the heads of their levels."""
        start = got
        for k in range(len(taken)):
            m = taken[k]
            if m:
                back = batch[start:start + m]
                back.reverse()
                self._count += m
                self._lower_count += m
                self._gets -= m
                self._lower[k].extendleft(back)
                start += m

    # -- statistics and watermarks -----------------------------------------
    def _set_alerts(self) -> None:
        """Lock held: recompute _alert_up and _alert_down (see __init__)."""
        up = self._high_water + 1
        if self._wm_high > 0 and not self._wm_above and self._wm_high < up:
            up = self._wm_high
        self._alert_up = up
        self._alert_down = self._wm_low if (self._wm_high > 0 and self._wm_above) else -1

    def _grew(self) -> bool:
        """Lock held; the size reached _alert_up. True if the high watermark was just crossed."""
        n = (self._count)
        crossed = False
        if n > self._high_water:
            self._high_water = n
        if self._wm_high > 0 and not self._wm_above and n >= self._wm_high:
            self._wm_above = True
            crossed = True
        self._set_alerts()
        return crossed

    def _shrank(self) -> bool:
        """Lock held; the size fell to _alert_down. True if it just fell back to the low watermark."""
        if self._wm_high > 0 and self._wm_above and (self._count) <= self._wm_low:
            self._wm_above = False
            self._set_alerts()
            return True
        return False

    def _deliver_watermark(self) -> None:
        """Outside the lock: call the callback with the current state if it differs from the last delivered.

        See the core's _deliver_watermark: events alternate strictly and may coalesce.
        """
        delivery = self._wm_delivery
        if delivery is None:
            return
        with delivery:
            with self._mutex:
                above = self._wm_above
                callback = self._wm_callback
            if callback is None or above == self._wm_delivered_above:
                return
            self._wm_delivered_above = above
            try:
                callback("high" if above else "low")
            except Exception:  # noqa: BLE001 - reported to sys.unraisablehook, as the core does
                report_callback_error(callback, "ringq watermark callback")

    def on_watermark(self, high: float = 0.8, low: float = 0.7, callback: Any = None) -> None:
        """Call ``callback("high")`` when the size reaches *high*, then ``callback("low")`` when it falls to *low*.

        *high* and *low* are fractions of maxsize (floats) or sizes (ints); see the
        core's docstring and docs/api.md. ``callback=None`` removes the watermark.
        """
        hi = lo = 0
        if callback is not None:
            if not callable(callback):
                raise TypeError("callback must be callable or None")
            from ._asyncfn import refuse_async  # here, not at import: it loads inspect
            refuse_async(callback, "Queue.on_watermark(callback=)",
                         "The callback runs inside the put or get that crossed the mark, which cannot "
                         "await it: pass a plain function (in a coroutine program it can set or clear "
                         "an asyncio.Event).")
            hi, lo = _watermark_sizes(high, low, self._maxsize)
            with _config_lock:
                if self._wm_delivery is None:
                    self._wm_delivery = RLock()
        with self._mutex:
            self._wm_callback = callback
            self._wm_high = hi
            self._wm_low = lo
            self._wm_above = False
            self._set_alerts()
        self._wm_delivered_above = False

    def statistics(self) -> QueueStatistics:
        """A snapshot of the queue's counters, as a QueueStatistics named tuple."""
        with self._mutex:
            return QueueStatistics(
                (self._count),
                self._maxsize,
                self._high_water,
                self._puts,
                self._gets,
                len(self._putters),
                len(self._getters),
            )

    # -- producers ---------------------------------------------------------
    def producer(self) -> Producer:
        """Register a producer; the queue shuts down (gracefully) when the last registered one closes.

        A producer that leaves on an exception passes it on: once the queue is shut
        down and drained, get() raises ShutDown chained to it. Raises ShutDown if
        the queue is already shut down. See the core's docstring for an example.
        """
        with self._mutex:
            if self._shutdown:
                if self._producers_left:
                    raise ShutDown(_PRODUCERS_LEFT)
                raise ShutDown("cannot register a producer: the queue is shut down")
            self._producers += 1
        return Producer(self)

    def _producer_closed(self, exc: BaseException | None) -> None:
        with self._mutex:
            if exc is not None and self._shutdown_cause is None:
                self._shutdown_cause = exc
            self._producers -= 1
            last = self._producers == 0
            if last and not self._shutdown:
                self._producers_left = True
        if last:
            self.shutdown()

    # -- tasks -------------------------------------------------------------
    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done by task_done()."""
        return self._unfinished

    def task_done(self) -> None:
        """Mark one item taken by get() as processed; join() returns when none is left."""
        with self._mutex:
            if self._unfinished <= 0:
                raise ValueError("task_done() called too many times")
            self._unfinished -= 1
            if self._unfinished == 0:
                self._joiners.wake_all()

    def join(self, *, cancel: CancelToken | None = None) -> None:
        """Block until every item put has been marked done by task_done(); Cancelled if *cancel* fires."""
        token = _as_token(cancel) if cancel is not None else None
        with self._mutex:
            while self._unfinished:
                self._joiners.park(self._mutex, None, token, "join")

    # -- shutdown ----------------------------------------------------------
    @property
    def is_shutdown(self) -> bool:
        """True once shutdown() was called."""
        return self._shutdown

    def shutdown(self, immediate: bool = False) -> None:
        """Stop the queue: put() raises ShutDown, get() drains what is left, then raises ShutDown.

        With ``immediate=True`` the remaining items are dropped at once (and
        counted as done, releasing join()). Blocked callers are woken.
        """
        immediate = bool(immediate)  # first: it may raise, and nothing has changed yet
        dropped: Any = None
        dropped_lower: Any = None
        event = False
        fresh: deque[T] = deque()
        fresh_lower = tuple([deque() for _ in self._lower]) if immediate else ()
        with self._mutex:
            while immediate and len(fresh_lower) < len(self._lower):
                fresh_lower = tuple([deque() for _ in self._lower])  # a level made meanwhile (lazily)
            # One step, pure bytecode: a handler's get_nowait() sees the items or none.
            self._shutdown = True
            if immediate:
                dropped = self._items
                dropped_lower = self._lower
                n = self._count
                unfinished = self._unfinished
                self._items = fresh
                self._lower = fresh_lower  # as many levels: _lower never gets shorter
                self._count = 0
                self._lower_count = 0
                self._unfinished = unfinished - n if unfinished > n else 0
                self._joiners.wake_all()
                if n and self._alert_down >= 0:
                    event = self._shrank()  # emptied: "low", as clear() delivers it
            self._getters.wake_all()
            self._putters.wake_all()
        # The dropped items die here, outside the lock: their __del__ may use this queue.
        del dropped, dropped_lower
        if event:
            self._deliver_watermark()

    def clear(self) -> int:
        """Drop every queued item at once (all levels of a PriorityQueue); return how many.

        The dropped items count as done for join(), and blocked putters are woken
        (there is room now). It replaces the stdlib idiom
        ``with q.mutex: q.queue.clear()``::

            dropped = q.clear()    # the queue is empty; join() no longer waits for them
        """
        dropped: Any = None
        dropped_lower: Any = None
        event = False
        fresh: deque[T] = deque()
        fresh_lower = tuple([deque() for _ in self._lower])
        with self._mutex:
            while len(fresh_lower) < len(self._lower):
                fresh_lower = tuple([deque() for _ in self._lower])  # a level made meanwhile (lazily)
            # One step, pure bytecode (as in shutdown(immediate=True)): a signal
            # handler, a __del__ or a fork child sees every item or none.
            dropped = self._items
            dropped_lower = self._lower
            count = self._count
            unfinished = self._unfinished
            self._items = fresh
            self._lower = fresh_lower  # as many levels: _lower never gets shorter
            self._count = 0
            self._lower_count = 0
            self._unfinished = unfinished - count if unfinished > count else 0
            if count:
                if self._unfinished == 0:
                    self._joiners.wake_all()
                if self._alert_down >= 0:
                    event = self._shrank()
            self._putters.wake_all()  # they re-check the room
        # The dropped items die here, outside the lock: their __del__ may use this queue.
        del dropped, dropped_lower
        if event:
            self._deliver_watermark()
        return count

    # -- asyncio -----------------------------------------------------------
    # An async call checks the queue like the sync call; to wait, it appends a
    # _TaskWaiter to the same FIFO deque a thread would join (in the same locked
    # section as the failed check) and awaits its future: the loop never blocks on
    # a lock held by a waiting thread. Woken, it re-checks; cancelled or closed
    # while waiting, it leaves, passing on a wake-up it had already received.

    async def _sleep(self, rec: _TaskWaiter, deadline: float | None, token: CancelToken | None = None) -> None:
        timer = None
        key = None
        if token is not None:
            # The token wakes the task like a waker; the caller's next _check_token raises Cancelled.
            deadline = _earlier(deadline, token._deadline)
            key = token._add_callback(rec.loop, rec.fut)
        if deadline is not None:
            timer = rec.loop.call_later(deadline - monotonic(), _resolve, rec.fut)
        try:
            await rec.fut
        except BaseException:
            with self._mutex:
                rec.wait_list.leave_task(rec, True)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if key is not None:
                token._remove_callback(key)
        with self._mutex:
            rec.wait_list.leave_task(rec, False)

    async def aput(self, item: T, timeout: float | None = None, *, cancel: CancelToken | None = None) -> None:
        """Put *item* at the tail, awaiting room for up to *timeout* seconds (async put()).

        Raises Full on a timeout and ShutDown if the queue is shut down. Cancelled,
        it either put the item (and returned) or left the queue unchanged.
        """
        await self._aput_at(item, 0, timeout, cancel)

    async def _aput_at(self, item: T, level: int, timeout: float | None, cancel: Any = None) -> None:
        deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while True:
            with self._mutex:
                if self._shutdown:
                    raise ShutDown
                if self._put_one(item, level):
                    event = self._count >= self._alert_up and self._grew()
                    if self._getters:
                        self._getters.wake(1)
                    break
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                _check_token(token)
                rec = self._putters.link_task()
            await self._sleep(rec, deadline, token)
        if event:
            self._deliver_watermark()

    async def aput_many(
        self, items: Iterable[T], timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        cancellation the items already put stay in the queue.
        """
        await self._aput_many_at(items, 0, timeout, cancel)

    async def _aput_many_at(self, items: Iterable[T], level: int, timeout: float | None, cancel: Any = None) -> None:
        deadline = _deadline(timeout)
        try:
            token = _as_token(cancel) if cancel is not None else None
        except Cancelled as e:
            raise _with_put_count(e, 0)  # noqa: B904 - the caught exception itself, re-raised
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = 0
        while True:
            with self._mutex:
                if self._shutdown:
                    raise _with_put_count(ShutDown(), done)
                take = self._put_run(batch, done, level, True)
                if take == _CHANGED:
                    continue
                if take == _SHUT_DOWN:
                    raise _with_put_count(ShutDown(), done)
                if take > 0:
                    done += take
                    event = self._count >= self._alert_up and self._grew()
                    if self._getters:
                        self._getters.wake(take)
                else:
                    event = False
                if not event:
                    if done == n:
                        return
                    if deadline is not None and monotonic() >= deadline:
                        raise _with_put_count(Full(), done)
                    try:
                        _check_token(token)
                    except Cancelled as e:
                        raise _with_put_count(e, done)  # noqa: B904 - the caught exception itself, re-raised
                    rec = self._putters.link_task()
            if event:
                self._deliver_watermark()  # outside the lock, then check again
                continue
            await self._sleep(rec, deadline, token)

    async def aget(self, timeout: float | None = None, *, cancel: CancelToken | None = None) -> T:
        """Remove and return the oldest item, awaiting one for up to *timeout* seconds (async get()).

        Raises Empty on a timeout and ShutDown once the queue is shut down and
        empty. Cancelled, it either returned its item or left the queue unchanged.
        """
        deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while True:
            with self._mutex:
                if self._items or self._lower_count:
                    item = self._pop_first()
                    self._gets += 1
                    event = self._count <= self._alert_down and self._shrank()
                    if self._putters:
                        self._putters.wake(1)
                    break
                if self._shutdown:
                    _raise_shutdown(self._shutdown_cause)
                if deadline is not None and monotonic() >= deadline:
                    raise Empty
                _check_token(token)
                rec = self._getters.link_task()
            await self._sleep(rec, deadline, token)
        if event:
            self._deliver_watermark()
        return item

    async def aget_many(
        self, max_items: int, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> list[T]:
        """Await like aget() for at least one item, then return up to *max_items* (async get_many())."""
        if isinstance(max_items, bool):  # True is an int, but not a count
            raise TypeError("max_items must be an integer, not 'bool'")
        try:
            n = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if n < 1:
            raise ValueError("max_items must be >= 1")
        deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while True:
            with self._mutex:
                items = self._items
                if items or self._lower_count:
                    batch: list[T] = []
                    while self._count and len(batch) < n:
                        batch.append(self._pop_first())
                    self._gets += len(batch)
                    event = self._count <= self._alert_down and self._shrank()
                    if self._putters:
                        self._putters.wake(len(batch))
                    if batch:
                        break
                    continue
                if self._shutdown:
                    _raise_shutdown(self._shutdown_cause)
                if deadline is not None and monotonic() >= deadline:
                    raise Empty
                _check_token(token)
                rec = self._getters.link_task()
            await self._sleep(rec, deadline, token)
        if event:
            self._deliver_watermark()
        return batch

    async def ajoin(self, timeout: float | None = None, *, cancel: CancelToken | None = None) -> None:
        """Await until every item put has been marked done (async join()); TimeoutError after *timeout*."""
        deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while True:
            with self._mutex:
                if not self._unfinished:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise TimeoutError("ajoin() timed out with unfinished tasks")
                _check_token(token)
                rec = self._joiners.link_task()
            await self._sleep(rec, deadline, token)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.aget()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise  # a producer passed a cause on: the consumer learns why the stream ended
            raise StopAsyncIteration from None

    @property
    def async_q(self) -> AsyncQueueView[T]:
        """An ``asyncio.Queue``-compatible view of this queue (for janus-style code)."""
        return AsyncQueueView(self)

    @property
    def sync_q(self) -> Queue[T]:
        """The queue itself: it is already the ``queue.Queue``-compatible side."""
        return self

    # -- protocols ---------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        """Return get(); the iteration ends when the queue is shut down and empty.

        If a producer passed on an exception (see producer()), the iteration ends
        with ShutDown chained to it instead, so the consumer learns why.
        """
        try:
            return self.get()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise
            raise StopIteration from None

    def __enter__(self) -> Queue[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"cannot pickle {_type_name(self)!r} object")

    def __copy__(self) -> Any:
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __repr__(self) -> str:
        state = " shutdown" if self._shutdown else ""
        return f"<{_type_name(self)} maxsize={self._maxsize!r} qsize={self.qsize()}{state}>"


def _type_name(q: object) -> str:
    """How repr and error messages name *q*: ringq.Queue, ringq.PriorityQueue, or a subclass's module.qualname."""
    cls = type(q)
    if cls is Queue:
        return "ringq.Queue"
    if cls is PriorityQueue:
        return "ringq.PriorityQueue"
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_put_count(exc: BaseException, count: int) -> BaseException:
    """*exc* (raised by a batch put) carrying how many of the batch's items went in."""
    exc.put_count = count  # type: ignore[attr-defined]
    return exc


def _as_levels(levels: Any) -> int:
    if isinstance(levels, bool):
        raise TypeError("levels must be an integer, not 'bool'")
    try:
        n = operator.index(levels)
    except TypeError:
        raise TypeError(f"levels must be an integer, not {type(levels).__name__!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, not {n}")
    if n > sys.maxsize:
        raise OverflowError(f"levels must be at most sys.maxsize ({sys.maxsize}), not {n}")
    return n


class PriorityQueue(Queue[T]):
    """A bounded queue with *levels* priority levels: ``0`` is the most urgent.

    ``get()`` always takes the oldest item of the most urgent non-empty level.
    Within a level it is FIFO, and items are never compared. ``put(item,
    priority)`` takes the level; without one an item goes to the middle level,
    ``levels // 2`` (with 3 levels: 0 high, 1 normal, 2 low). *maxsize* bounds
    all the levels together. The rest is ``ringq.Queue``'s API::

        q = PriorityQueue(levels=3)
        q.put("report")                # priority 1 (the default)
        q.put("cleanup", priority=2)
        q.put("alert", priority=0)
        q.get_many(3)                  # ['alert', 'report', 'cleanup']
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        levels, maxsize = _priority_queue_args(*args, **kwargs)  # a bad call names PriorityQueue()
        n = _as_levels(levels)
        try:
            current = self._levels
        except AttributeError:  # not initialised yet
            current = 1
        if current != 1 and current != n:
            raise RuntimeError("the levels of a PriorityQueue cannot be changed")
        super().__init__(maxsize)
        # The levels' deques are made when first used (see _level_of), as the core's
        # rings are allocated lazily: PriorityQueue(levels=10**9) costs no memory.
        self._levels = n

    @property
    def levels(self) -> int:
        """The number of priority levels; 0 is the most urgent, ``levels - 1`` the least."""
        return self._levels

    def _level_of(self, priority: Any) -> int:
        """The level for *priority* (None: the middle one), its deque made if it is the first use."""
        levels = self._levels
        if priority is None:
            p = levels // 2
        elif isinstance(priority, bool):
            raise TypeError("priority must be an integer, not 'bool'")
        else:
            try:
                p = operator.index(priority)
            except TypeError:
                raise TypeError(f"priority must be an integer, not {type(priority).__name__!r}") from None
            if not 0 <= p < levels:
                raise ValueError(f"priority must be in range({levels}), not {p}")
        if p > len(self._lower):
            self._make_levels(p)
        return p

    def _make_levels(self, level: int) -> None:
        """Make the deques of every level up to *level* (before the put's locked step).

        Levels are made in order, so a get's scan of _lower still sees every level
        that may hold an item; _lower is replaced as a whole, never shortened
        (clear() and shutdown(immediate=True) keep its length).
        """
        with self._mutex:
            while True:
                lower = self._lower
                if level <= len(lower):
                    return
                grown = lower + tuple([deque() for _ in range(level - len(lower))])
                # The allocations above may run a __del__ (the GC) that makes levels
                # too: replace _lower only if it is still the one we extended.
                if self._lower is lower:
                    self._lower = grown
                    return

    def put(  # type: ignore[override]
        self,
        item: T,
        priority: int | None = None,
        block: bool = True,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put *item* at the tail of level *priority* (None: ``levels // 2``), like Queue.put."""
        self._put_at(item, self._level_of(priority), block, timeout, cancel)

    def put_nowait(self, item: T, priority: int | None = None) -> None:
        """Put *item* at level *priority* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, priority, block=False)``.
        """
        if type(self) is not PriorityQueue:
            self.put(item, priority, block=False)
            return
        self._put_at(item, self._level_of(priority), False, None, None)

    def put_many(  # type: ignore[override]
        self,
        items: Iterable[T],
        priority: int | None = None,
        block: bool = True,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many."""
        self._put_many_at(items, self._level_of(priority), block, timeout, cancel)

    def put_evict(self, item: T, priority: int | None = None) -> tuple[T, ...]:
        """Put *item* at level *priority* without waiting, evicting when the queue is full.

        The evicted item is the oldest of the least urgent non-empty level; when
        *item* is less urgent than every queued item, *item* itself is refused.
        Returns the evicted (or refused) items as a tuple, ``()`` if there was room.
        """
        return self._put_evict(item, self._level_of(priority))

    async def aput(  # type: ignore[override]
        self, item: T, priority: int | None = None, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put *item* at level *priority* (None: ``levels // 2``), awaiting room like Queue.aput."""
        await self._aput_at(item, self._level_of(priority), timeout, cancel)

    async def aput_many(  # type: ignore[override]
        self,
        items: Iterable[T],
        priority: int | None = None,
        timeout: float | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> None:
        """Put every item of *items*, in order, at level *priority*, awaiting room like Queue.aput_many."""
        await self._aput_many_at(items, self._level_of(priority), timeout, cancel)

    def __repr__(self) -> str:
        state = " shutdown" if self._shutdown else ""
        return (f"<{_type_name(self)} levels={self.levels} maxsize={self._maxsize!r} "
                f"qsize={self.qsize()}{state}>")


def _with_self(binder: Any) -> inspect.Signature:
    params = [p.replace(annotation=inspect.Parameter.empty) for p in inspect.signature(binder).parameters.values()]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self_param, *params])  # as the core's: no annotations


# What inspect.signature() and help() show: the parameters _ctor binds, not *args/**kwargs.
Queue.__init__.__signature__ = _with_self(_queue_args)  # type: ignore[attr-defined]
PriorityQueue.__init__.__signature__ = _with_self(_priority_queue_args)  # type: ignore[attr-defined]


_config_lock = threading.Lock()  # serialises one-time set-up of a queue's watermark delivery lock


def _raise_shutdown(cause: BaseException | None) -> None:
    """Raise ShutDown, chained to *cause* when a producer passed one on."""
    if cause is not None:
        raise ShutDown from cause
    raise ShutDown


def _watermark_sizes(high: Any, low: Any, maxsize: int) -> tuple[int, int]:
    """(high, low) as sizes: floats are fractions of a bounded maxsize, ints are sizes."""
    if isinstance(high, (bool, str, bytes, bytearray)) or isinstance(low, (bool, str, bytes, bytearray)):
        # float() would parse "0.8"; the core, like any C double conversion, does not.
        raise TypeError("high and low must be numbers")
    if isinstance(high, int) and isinstance(low, int):
        if not 0 <= low < high:
            raise ValueError("watermark sizes need 0 <= low < high")
        return high, low
    try:
        h = float(high)
        lo_f = float(low)
    except TypeError:
        raise TypeError("high and low must be numbers") from None
    if not (0.0 <= lo_f < h <= 1.0):
        raise ValueError("watermark fractions need 0 <= low < high <= 1")
    if maxsize <= 0:
        raise ValueError("fractional watermarks need a bounded queue (maxsize > 0); give sizes as ints")
    hi = math.ceil(h * maxsize)
    lo = math.floor(lo_f * maxsize)
    if lo >= hi:
        lo = hi - 1
    return max(hi, 1), lo


class Producer:
    """A registered producer of a queue (see Queue.producer()); close it once, or use it as a context manager."""

    __slots__ = ("queue", "_closed")

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, exc: BaseException | None = None) -> None:
        """Unregister; the last producer to close shuts the queue down.

        *exc* (an exception instance) is passed on: getters that find the queue shut
        down and drained raise ShutDown chained to the first one passed. Closing
        again does nothing.
        """
        if exc is not None and not isinstance(exc, BaseException):
            raise TypeError("exc must be an exception instance or None")
        if self._closed:
            return
        self._closed = True
        self.queue._producer_closed(exc)

    def __enter__(self) -> Producer:  # noqa: PYI034 - not meant to be subclassed, as in the core
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc)

    def __repr__(self) -> str:
        return f"<ringq.Producer {'closed' if self._closed else 'open'} of {self.queue!r}>"


_PRUNE_MIN = 16  # a token's set of children is first pruned at this size
_MAX_PRUNE_AT = 1 << 62


class CancelToken:
    """A cancellation signal for blocking calls: Go's ``context`` done the Python way.

    Pass it as ``cancel=token`` to any blocking call (put, get, put_many, get_many,
    join, select); ``cancel()`` from any thread makes them raise Cancelled at once.
    ``CancelToken(timeout=...)`` also fires by itself after that many seconds, and
    ``child(timeout=...)`` makes a token that fires with its parent or at its own
    earlier deadline. See the core's docstring for an example.
    """

    __slots__ = (
        "_lock", "_cancelled", "_links", "_deadline", "_parent", "_children", "_prune_at", "_callbacks",
        "__weakref__",
    )

    # The tree of tokens. A child holds its parent (so root.child().child() stays
    # linked while the leaf lives: Go's contexts do the same); a parent holds its
    # children only weakly, in a plain set of weak references. No lock guards the set
    # or the dict of async waits: each change or snapshot of them is one C call
    # (set.add, list(set), dict.pop...) that runs no Python code, so a __del__ or a
    # signal handler that the GC or the interpreter runs in between may itself call
    # child() or cancel() without deadlocking or seeing half a change. Dead references
    # are pruned by child() once the set has doubled since the last pruning.

    def __init__(self, timeout: float | None = None) -> None:
        self._deadline = _deadline(timeout)
        self._lock = allocate_lock()  # guards _cancelled and _links
        self._cancelled = False
        self._links: list[_Link] = []
        self._parent: CancelToken | None = None
        self._children: set[weakref.ref[CancelToken]] = set()
        self._prune_at = _PRUNE_MIN
        self._callbacks: dict[object, tuple[Any, Any]] = {}  # async waits

    def _expired(self) -> bool:
        return self._deadline is not None and monotonic() >= self._deadline

    def _raise(self) -> None:
        if self._expired() and not self._cancelled:
            raise Cancelled("the cancel token's deadline has passed")
        raise Cancelled("the cancel token was cancelled")

    def _link(self, link: _Link) -> bool:
        """Link a waiting call; False if the token has fired."""
        with self._lock:
            if self._cancelled or self._expired():
                return False
            self._links.append(link)
            return True

    def _unlink(self, link: _Link) -> None:
        with self._lock:
            try:
                self._links.remove(link)
            except ValueError:
                pass  # cancel() took it

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called, the deadline passed, or a parent fired."""
        return self._cancelled or self._expired()

    @property
    def deadline(self) -> float | None:
        """The deadline on the ``time.monotonic()`` clock, or None."""
        return self._deadline

    def cancel(self) -> None:
        """Fire the token: every call blocked with it raises Cancelled, and so does every later one.

        Its children, their children and so on fire too, however deep the tree (it is
        walked with a list, not by recursion). Calling it again does nothing.
        """
        pending: list[CancelToken] = [self]
        error: BaseException | None = None
        while pending:
            token = pending.pop()
            try:
                with token._lock:
                    if token._cancelled:
                        continue
                    token._cancelled = True
                    links, token._links = token._links, []
                    for link in links:
                        link.call.claim(link.source)
                # Set first, then read: a child() or an async wait that registers now
                # either is in these snapshots or sees _cancelled and fires by itself.
                kids = list(token._children)
                waits = list(token._callbacks.values())
                for loop, fut in waits:
                    _wake_future(loop, fut)
                for ref in kids:
                    kid = ref()
                    if kid is not None:
                        pending.append(kid)
            except BaseException as exc:  # noqa: BLE001 - e.g. a signal handler's: the rest still fire
                if error is None:
                    error = exc
        if error is not None:
            try:
                raise error
            finally:
                error = None

    def _add_callback(self, loop: Any, fut: Any) -> object:
        """Register an async wait: cancel() resolves *fut* on *loop*. Returns the key for _remove_callback."""
        key = object()
        self._callbacks[key] = (loop, fut)
        if self.cancelled:  # cancel() may have copied the callbacks before the add
            _wake_future(loop, fut)
        return key

    def _remove_callback(self, key: object) -> None:
        self._callbacks.pop(key, None)

    def child(self, timeout: float | None = None) -> CancelToken:
        """A new token that fires when this one does, or after *timeout* seconds, whichever is first.

        The child keeps this token alive; this token does not keep the child alive.
        """
        kid = CancelToken(timeout)
        kid._deadline = _earlier(kid._deadline, self._deadline)
        kid._parent = self
        children = self._children
        children.add(weakref.ref(kid))
        if len(children) >= self._prune_at:
            self._prune_at = _MAX_PRUNE_AT  # one thread prunes; the others go on
            for ref in list(children):
                if ref() is None:
                    children.discard(ref)
            self._prune_at = max(_PRUNE_MIN, 2 * len(children))
        if self._cancelled:  # cancel() may have copied the children before the add
            kid.cancel()
        return kid

    def raise_if_cancelled(self) -> None:
        """Raise Cancelled if the token has fired (a check point for loops that do not block)."""
        if self.cancelled:
            self._raise()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the token fires or *timeout* seconds pass; return ``self.cancelled``."""
        deadline = _earlier(_deadline(timeout), self._deadline)
        if (
            _running_loop() is not None
            and not self.cancelled
            and (deadline is None or monotonic() < deadline)
        ):
            _refuse_blocking("CancelToken.wait")  # it would wait: not on a loop's thread
        call = _Call()
        link = _Link(call, self)
        if not self._link(link):
            return True
        try:
            _acquire_until(call.parker, deadline)
        finally:
            self._unlink(link)
        return call.close() is not None or self.cancelled

    def await_cancelled(self, timeout: float | None = None) -> Coroutine[Any, Any, bool]:
        """``await token.await_cancelled(timeout=None)``: wait in a coroutine until the token fires.

        Returns ``self.cancelled``: True once it fired, False if *timeout* seconds
        passed first. The loop is never blocked. See the core's docstring.
        """
        return _tokenasync.await_cancelled(self, timeout)

    def scope(self) -> _tokenasync.CancelScope:
        """``async with token.scope():`` the token firing cancels the block (ringq.Cancelled on leaving)."""
        return _tokenasync.CancelScope(self)

    def __repr__(self) -> str:
        return f"<ringq.CancelToken {'cancelled' if self.cancelled else 'active'}>"


def _wake_future(loop: Any, fut: Any) -> None:
    """Resolve *fut* on *loop* from any thread; a closed loop has no task left to wake."""
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:
        pass


def _check_token(token: CancelToken | None) -> None:
    """Raise Cancelled if *token* has fired: an async call's check before each wait."""
    if token is not None and token.cancelled:
        token._raise()


def _as_token(cancel: Any) -> CancelToken:
    """*cancel* as a CancelToken; raises Cancelled if it has already fired."""
    if type(cancel) is not CancelToken:
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
    if cancel.cancelled:
        cancel._raise()
    return cancel


# -- select ------------------------------------------------------------------

_shuffle = random.Random().shuffle


def _pass_on(q: Queue[Any]) -> None:
    """Wake one getter of *q* if it has items: a wake-up we received from it and did not use."""
    with q._mutex:
        if (q._items or q._lower_count) and q._getters:
            q._getters.wake(1)


def select(
    *queues: Queue[Any], timeout: float | None = None, priority: bool = False, cancel: CancelToken | None = None
) -> tuple[Queue[Any], Any]:
    """Wait until any of *queues* has an item; take it and return ``(queue, item)``.

    Same contract as the core's select(): one item from exactly one queue; random
    and fair among ready queues (argument order with ``priority=True``); shut-down
    and drained queues are skipped, ShutDown once all are; Empty after *timeout*;
    Cancelled when *cancel* fires.
    """
    k = len(queues)
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q in queues:
        if not isinstance(q, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q).__name__!r}")
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    order = list(range(k))
    won: Any = None
    while True:
        if not priority:
            _shuffle(order)
        closed = [False] * k
        for i in order:
            q = queues[i]
            with q._mutex:
                if not q._items and not q._lower_count:
                    closed[i] = q._shutdown
                    continue
                item = q._pop_first()
                q._gets += 1
                event = q._count <= q._alert_down and q._shrank()
                if q._putters:
                    q._putters.wake(1)
            if won is not None and won is not q:
                _pass_on(won)
            if event:
                q._deliver_watermark()
            return q, item
        if won is not None:
            _pass_on(won)
            won = None
        if all(closed):
            for q in queues:
                if q._shutdown_cause is not None:
                    _raise_shutdown(q._shutdown_cause)
            raise ShutDown
        if deadline is not None and monotonic() >= deadline:
            raise Empty
        if token is not None and token.cancelled:
            token._raise()
        if _running_loop() is not None:
            _refuse_blocking("select")  # about to wait: not on a thread that runs an event loop

        # Link one waiter per open queue; any change seen meanwhile means scan again.
        call = _Call()
        links: list[tuple[Queue[Any], _Link]] = []
        ready = False
        for i in range(k):
            if closed[i]:
                continue  # shut down and drained at the scan: it stays so
            q = queues[i]
            with q._mutex:
                if q._items or q._lower_count or q._shutdown:
                    ready = True
                    break
                link = _Link(call, q)
                q._getters._parked.append(link)
                links.append((q, link))
        tlink = None
        cancelled = False
        try:
            if not ready:
                if token is not None:
                    tlink = _Link(call, token)
                    if not token._link(tlink):
                        tlink = None
                        cancelled = True
                if not cancelled:
                    _acquire_until(call.parker, _earlier(deadline, token._deadline if token is not None else None))
        except BaseException:
            won = _unlink_select(links, token, tlink, call)
            if isinstance(won, Queue):
                _pass_on(won)
            raise
        won = _unlink_select(links, token, tlink, call)
        if won is not None and won is token:
            won = None
            cancelled = True
        if cancelled:
            if won is not None:
                _pass_on(won)
            token._raise()  # type: ignore[union-attr]


def _unlink_select(links: list[tuple[Queue[Any], _Link]], token: Any, tlink: _Link | None, call: _Call) -> Any:
    """Make every link of a select unreachable, then return who claimed it (a queue, the token or None)."""
    for q, link in links:
        with q._mutex:
            try:
                q._getters._parked.remove(link)
            except ValueError:
                pass
    if tlink is not None:
        token._unlink(tlink)
    return call.close()


class _TaskSelectLink:
    """One link of an aselect: in one queue's getters deque, sharing the task's future and claim."""

    __slots__ = ("call", "queue", "loop", "fut", "thread_ident")

    def __init__(self, call: _Call, queue: Queue[Any], loop: Any, fut: Any) -> None:
        self.call = call
        self.queue = queue
        self.loop = loop
        self.fut = fut
        self.thread_ident = get_ident()

    def release(self) -> bool:
        """The waker's call (lock held): False if the task was already claimed through another queue."""
        if not self.call._claim.acquire(False):
            return False
        self.call.won = self.queue
        try:
            if get_ident() == self.thread_ident:
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # noqa: BLE001 - the loop is closed: nobody will take this wake-up
            return False
        return True


async def aselect(
    *queues: Queue[Any], timeout: float | None = None, priority: bool = False, cancel: CancelToken | None = None
) -> tuple[Queue[Any], Any]:
    """select() for asyncio: await an item from whichever of *queues* has one first.

    Same contract as the core's aselect() and as select(), ``cancel=`` included.
    """
    k = len(queues)
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q in queues:
        if not isinstance(q, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q).__name__!r}")
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    won: Any = None
    while True:
        try:
            _check_token(token)  # as select(): a fired token ends the call before the next scan
            got: Any = select(*queues, timeout=0, priority=priority)  # a scan that does not wait
        except Empty:
            got = None
        except BaseException:
            if won is not None:
                _pass_on(won)
            raise
        if won is not None and (got is None or got[0] is not won):
            _pass_on(won)
        won = None
        if got is not None:
            return got  # type: ignore[no-any-return]
        if deadline is not None and monotonic() >= deadline:
            raise Empty
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        call = _Call()
        links: list[tuple[Queue[Any], Any]] = []
        ready = False
        open_queues = 0
        for q in queues:
            with q._mutex:
                if q._items or q._lower_count:
                    ready = True
                    break
                link = _TaskSelectLink(call, q, loop, fut)
                q._getters._parked.append(link)
                links.append((q, link))
                if not q._shutdown:
                    open_queues += 1
        if open_queues == 0:
            ready = True  # all shut down meanwhile: the scan raises ShutDown
        if not ready:
            timer = None
            key = None
            wake_at = deadline
            if token is not None:
                # The token resolves the future like a waker would; the next pass raises Cancelled.
                wake_at = _earlier(deadline, token._deadline)
                key = token._add_callback(loop, fut)
            if wake_at is not None:
                timer = loop.call_later(wake_at - monotonic(), _resolve, fut)
            try:
                await fut
            except BaseException:
                won = _unlink_select(links, None, None, call)
                if won is not None:
                    _pass_on(won)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                if key is not None:
                    token._remove_callback(key)
        won = _unlink_select(links, None, None, call)
