"""The pure-Python twin of ringq's Cython core (``_queue_c.pyx``).

It is used on PyPy, where no extension is built, and wherever RINGQ_NO_EXTENSIONS=1
is set. It keeps the core's design so that both behave the same way:

* one lock guards every field (here a ``threading.RLock``: a signal handler, or an
  item's ``__del__`` run by the GC, may call back into the same queue from the
  thread that holds it, and a plain Lock would deadlock there);
* waiting threads park on a private lock each, queued FIFO per condition
  (getters, putters, joiners). A waker only removes the waiter from its list and
  releases its lock: the woken thread re-checks the queue itself. A waiter that
  leaves after being woken without using the wake-up (timeout, Ctrl-C, or an
  exception from a signal handler after its wake-up) passes it on to the next
  waiter.

Signals, ``__del__`` and fork: each call is all or nothing
----------------------------------------------------------
Unlike the core, the twin runs bytecode while it holds its lock, so a signal
handler (main thread, between bytecodes; it may raise or use the queue), a
``__del__`` run by the GC, or a ``fork()`` from another thread may land in the
middle of a call. The twin keeps this guarantee against all three: **a handler, a
``__del__`` or a fork child sees each call's effect on the queue either entirely
or not at all**, and an exception from a handler lands before or after a call's
effect, never half-way (a batch is put and counted, or returned, or not moved).

How: CPython runs signal handlers, switches threads (so another thread can fork)
and, from 3.12, runs the GC only at "check points": after a CALL, at a backward
jump, at a function's entry. So every change of state here is one *step*: plain
field updates (no call, no allocation of a GC object) followed by at most one C
call that moves the data and cannot run Python code (``deque.append``, or
``deque.extend`` of a ready-made tuple iterator), or by a pure-bytecode move
(``item = items[0]; del items[0]``; ``batch += iterator``). No check point lies
inside a step. ``_count`` mirrors ``len(_items)`` so that room and availability
are decided by plain reads right before the step; anything computed earlier (a
tuple slice, an iterator: allocations, where the GC may run) is re-validated by
plain reads first. A get also takes its items as one step, and when an exception
lands after the take but before the call returns (at the wake-up or the lock's
release), ``_give_back`` puts the items back at the head, as one step too.

Limits, said plainly: the guarantee is CPython's with a GIL (3.10 and later;
3.9 checks for signals at almost every bytecode). On free-threaded builds other
threads are excluded by the lock alone, which holds for threads but not for a
fork from a thread that is mid-call; that is what the compiled core is for. A
second exception that lands while ``_give_back`` runs is dropped in favour of the
first, so that the items always go back.
"""
from __future__ import annotations

import operator
import os
import threading
import weakref
from _thread import allocate_lock, get_ident
from collections import deque
from itertools import islice, repeat
from math import isnan
from threading import RLock
from time import monotonic
from types import GenericAlias
from typing import Any, Generic, Iterable, Iterator, TypeVar

from ._errors import Empty, Full, ShutDown

__all__ = ["Queue"]

T = TypeVar("T")

# Timeouts longer than this (about 31 years) mean "wait forever".
_FOREVER = 1e9
_popleft = deque.popleft
_NOTHING: Any = object()  # "no item taken yet" (an item may be None)


def _deadline(timeout: Any) -> float | None:
    """Monotonic deadline for *timeout* seconds; None waits forever."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = float(timeout)
    except TypeError:
        raise TypeError(
            f"timeout must be a number or None, not {type(timeout).__name__!r}"
        ) from None
    if isnan(seconds):
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if seconds > _FOREVER:
        return None
    return monotonic() + seconds


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


class _WaitList:
    """A FIFO of parked threads, each represented by a lock it is blocked on.

    Every method is called with the queue's lock held.
    """

    __slots__ = ("_parked",)

    def __init__(self) -> None:
        self._parked: deque[Any] = deque()

    def __bool__(self) -> bool:
        return bool(self._parked)

    def wake(self, n: int = 1) -> None:
        """Wake the *n* oldest waiters (fewer if fewer wait)."""
        parked = self._parked
        while n > 0 and parked:
            # Unlink (pure bytecode), then release: no check point between the two,
            # so an exception from a signal handler cannot orphan a waiter.
            waiter = parked[0]
            del parked[0]
            waiter.release()
            n -= 1

    def wake_all(self) -> None:
        self.wake(len(self._parked))

    def park(self, mutex: Any, deadline: float | None) -> bool:
        """Sleep until woken, *deadline* or an exception (Ctrl-C), with *mutex* released.

        *mutex* is the queue's RLock, held by the caller (possibly re-entrantly: it
        is released fully, as threading.Condition does). It is held again on return
        and when an exception escapes. Returns True when a waker chose this waiter:
        the caller must use that wake-up or pass it on (``wake(1)``) if it leaves on
        an exception. Callers re-check their condition and deadline.
        """
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
            if deadline is None:
                acquired = waiter.acquire()
            else:
                remaining = deadline - monotonic()
                if remaining > threading.TIMEOUT_MAX:
                    # Windows' limit is about 49.7 days: wake early, the caller re-parks.
                    remaining = threading.TIMEOUT_MAX
                acquired = remaining > 0 and waiter.acquire(True, remaining)
            restored = True
            mutex._acquire_restore(saved)
        except BaseException:
            # Another exception may land at any check point in here: the finally
            # clauses make each step run anyway, as one uninterruptible step.
            try:
                if released and not restored:
                    restored = True
                    mutex._acquire_restore(saved)
            finally:
                if linked:
                    if waiter in parked:
                        parked.remove(waiter)
                    elif parked:
                        # A waker chose us just before the exception: hand its wake-up
                        # on (inline, as in wake()), so no other waiter sleeps through it.
                        other = parked[0]
                        del parked[0]
                        other.release()
            raise
        if acquired:
            return True
        if waiter in parked:
            parked.remove(waiter)
            return False
        return True  # woken as the deadline passed: the caller's re-check uses it


# _put_run's answers besides a count of items put.
_SHUT_DOWN = -1
_NO_ROOM_FOR_ALL = -2
_CHANGED = -3


def _with_put_count(exc: BaseException, count: int) -> BaseException:
    """*exc* (Full or ShutDown from put_many) with the number of items put before it."""
    exc.put_count = count  # type: ignore[attr-defined]
    return exc


# Every live twin queue, so that a fork child can reset them (see _reset_after_fork).
_live_queues: weakref.WeakSet[Queue[Any]] = weakref.WeakSet()


def _reset_queues_after_fork() -> None:
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
        "_count",
        "_maxsize",
        "_unfinished",
        "_shutdown",
        "_getters",
        "_putters",
        "_joiners",
        "__weakref__",
    )

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = _as_maxsize(maxsize)
        self._mutex = RLock()
        self._items: deque[T] = deque()
        self._count = 0  # == len(self._items) at every check point (see the module docstring)
        self._unfinished = 0
        self._shutdown = False
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()
        _live_queues.add(self)

    def _reset_after_fork(self) -> None:
        # In a fork child only the forking thread exists: the parked waiters, and any
        # thread that held the lock at the fork, are gone. Forget them. The data is
        # consistent: the forking thread ran only at a check point of the others.
        self._mutex = RLock()
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("type 'ringq.Queue' is not an acceptable base type")

    __class_getitem__ = classmethod(GenericAlias)

    # -- size --------------------------------------------------------------
    @property
    def maxsize(self) -> int:
        """The bound; ``<= 0`` means unbounded. Assignable, as in ``queue.Queue``."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        value = _as_maxsize(value)
        with self._mutex:
            self._maxsize = value
            self._putters.wake_all()  # room may have grown: let them re-check

    def qsize(self) -> int:
        """Number of items in the queue (a snapshot)."""
        return self._count

    def empty(self) -> bool:
        """True if the queue holds no item (a snapshot)."""
        return not self._count

    def full(self) -> bool:
        """True if the queue is bounded and holds maxsize items or more (a snapshot)."""
        return 0 < self._maxsize <= self._count

    # -- put ---------------------------------------------------------------
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), and
        ShutDown if the queue is shut down.
        """
        deadline = _deadline(timeout) if block else None
        # Not "with self._mutex": on 3.11 and earlier its __exit__ lookup allocates a
        # bound method, where the GC may run a __del__ that put()s before this item
        # (CPython's test_reentrancy). acquire() allocates nothing.
        mutex = self._mutex
        held = _depth(mutex) - _DEPTH_SLACK
        try:
            mutex.acquire()
            self._put_locked(item, block, deadline)
        finally:
            # Release only what we took: acquire() may have been interrupted (Ctrl-C).
            # The depth is read again if a handler raises at the read's check point.
            try:
                taken = _depth(mutex) > held
            except BaseException:
                taken = _depth(mutex) > held
            if taken:
                mutex.release()

    # put() and put_many() are kept short, their work done in helpers: on 3.11 an
    # exception that passes a handler far into a long function makes the interpreter
    # allocate an int, which loops forever when no memory is left at all (see the
    # MemoryError tests in test_errors.py).

    def _put_locked(self, item: T, block: bool, deadline: float | None) -> None:
        if self._put_one(item):
            if self._getters._parked:
                self._getters.wake(1)
            return
        if not block:
            raise Full
        self._put_wait(item, deadline)

    def _put_wait(self, item: T, deadline: float | None) -> None:
        """Lock held. put()'s slow path: wait for room."""
        woken = False
        try:
            while True:
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                woken = self._putters.park(self._mutex, deadline)
                if self._put_one(item):
                    woken = False
                    if self._getters._parked:
                        self._getters.wake(1)
                    return
        finally:
            if woken:
                # Leaving on an exception with an unused wake-up (a success clears the
                # flag): pass it on, inline, as calling a function is itself a check
                # point where a signal handler may raise.
                parked = self._putters._parked
                if parked:
                    other = parked[0]
                    del parked[0]
                    other.release()

    def _put_one(self, item: T) -> bool:
        """Lock held. Put *item* as one step if there is room; False if there is none.

        A helper, so that the room check follows the check point at its entry (a
        handler run there may take the room) and nothing lies between check and step.
        """
        # extend() of a ready-made iterator, not append(): it allocates nothing that
        # could run the GC inside the step, and, unlike deque.append, it does not leak
        # a reference to the item when it fails with MemoryError (CPython 3.11-3.13).
        one = iter((item,))
        if self._shutdown:
            raise ShutDown
        maxsize = self._maxsize
        if maxsize > 0 and self._count >= maxsize:
            return False
        # One step: the counts, then the extend (a C call that runs no Python code).
        self._count += 1
        self._unfinished += 1
        try:
            self._items.extend(one)
        except MemoryError:  # nothing was added: undo the counts
            self._count -= 1
            self._unfinished -= 1
            raise
        return True

    def put_nowait(self, item: T) -> None:
        """Put *item* without waiting; Full if there is no room."""
        self.put(item, False)

    def put_many(self, items: Iterable[T], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of *items*, in order.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full) or a shutdown
        (ShutDown) the items already put stay in the queue, and the exception's
        ``put_count`` attribute says how many went in::

            q.put_many([1, 2, 3])
        """
        deadline = _deadline(timeout) if block else None
        self._put_batch(items if type(items) is tuple else tuple(items), block, deadline)

    def _put_batch(self, batch: tuple[T, ...], block: bool, deadline: float | None) -> None:
        mutex = self._mutex
        held = _depth(mutex) - _DEPTH_SLACK  # see put()
        try:
            mutex.acquire()
            self._put_many_locked(batch, block, deadline)
        finally:
            try:
                taken = _depth(mutex) > held
            except BaseException:
                taken = _depth(mutex) > held
            if taken:
                mutex.release()

    def _put_many_locked(self, batch: tuple[T, ...], block: bool, deadline: float | None) -> None:
        n = len(batch)
        done = 0
        woken = False
        try:
            while True:
                took = self._put_run(batch, done, block)
                if took > 0:
                    woken = False
                    done += took
                    if self._getters._parked:
                        self._getters.wake(took)
                elif took == _CHANGED:
                    continue
                elif took != 0:
                    raise _with_put_count(ShutDown() if took == _SHUT_DOWN else Full(), done)
                if done == n:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise _with_put_count(Full(), done)
                woken = self._putters.park(self._mutex, deadline)
        finally:
            if woken:  # as in _put_wait()
                parked = self._putters._parked
                if parked:
                    other = parked[0]
                    del parked[0]
                    other.release()

    def _put_run(self, batch: tuple[T, ...], done: int, block: bool) -> int:
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
        self._count += take
        self._unfinished += take
        try:
            self._items.extend(run)
        except MemoryError:
            # Out of memory part-way: keep what went in, counted (plain reads).
            short = self._count - len(self._items)
            self._count -= short
            self._unfinished -= short
            raise
        return take

    # -- get ---------------------------------------------------------------
    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item, waiting up to *timeout* seconds.

        Raises Empty if none arrives (at once with ``block=False``), and ShutDown
        once the queue is shut down and empty.
        """
        deadline = _deadline(timeout) if block else None
        item = _NOTHING
        woken = False
        try:
            with self._mutex:
                while True:
                    if self._count:
                        # Wake a putter first: it needs our lock, so it runs after the take.
                        if self._putters._parked:
                            self._putters.wake(1)
                        if self._count:  # re-checked: a handler may have run in wake()
                            # One step, pure bytecode: no check point until we return.
                            woken = False
                            item = self._items[0]
                            del self._items[0]
                            self._count -= 1
                            return item
                        continue
                    if self._shutdown:
                        raise ShutDown
                    if not block or (deadline is not None and monotonic() >= deadline):
                        raise Empty
                    woken = self._getters.park(self._mutex, deadline)
        except BaseException:
            # Everything here is inline, each step plain bytecode plus one C call:
            # even calling a helper is a check point where a handler may raise.
            if item is not _NOTHING:
                # The exception landed after the take (at the lock's release): the
                # item goes back to the head, neither lost nor delivered.
                try:
                    self._count += 1
                    self._items.appendleft(item)
                finally:
                    parked = self._getters._parked
                    if parked:  # a getter may have parked meanwhile
                        other = parked[0]
                        del parked[0]
                        other.release()
            elif woken:
                parked = self._getters._parked
                if parked:
                    other = parked[0]
                    del parked[0]
                    other.release()
            raise

    def get_nowait(self) -> T:
        """Remove and return the oldest item without waiting; Empty if there is none."""
        return self.get(False)

    def get_many(self, max_items: int, block: bool = True, timeout: float | None = None) -> list[T]:
        """Wait like get() for at least one item, then return up to *max_items*, oldest first::

            batch = q.get_many(64)   # 1 to 64 items
        """
        try:
            n = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if n < 1:
            raise ValueError("max_items must be >= 1")
        deadline = _deadline(timeout) if block else None
        batch: list[T] = []
        woken = False
        items = self._items
        pops = map(_popleft, repeat(items))  # allocated before the lock (MemoryError: nothing done)
        try:
            with self._mutex:
                while True:
                    count = self._count
                    if count:
                        k = n if n < count else count
                        if items is not self._items:  # replaced by shutdown(immediate=True)
                            items = self._items
                            pops = map(_popleft, repeat(items))
                        take = islice(pops, k)  # allocates: re-checked below
                        if self._putters._parked:
                            self._putters.wake(k)  # they need our lock: they run after the take
                        if items is not self._items or self._count < k:
                            continue  # a handler or __del__ took items meanwhile: decide again
                        # One step, pure bytecode: the count, then k pops into our list.
                        woken = False
                        got = k
                        self._count -= k
                        batch += take
                        return batch
                    if self._shutdown:
                        raise ShutDown
                    if not block or (deadline is not None and monotonic() >= deadline):
                        raise Empty
                    woken = self._getters.park(self._mutex, deadline)
        except BaseException:
            # As in get(): inline steps only.
            if batch:
                try:
                    back = batch[::-1]
                    self._count += got
                    self._items.extendleft(back)
                finally:
                    parked = self._getters._parked
                    if parked:
                        other = parked[0]
                        del parked[0]
                        other.release()
            elif woken:
                parked = self._getters._parked
                if parked:
                    other = parked[0]
                    del parked[0]
                    other.release()
            raise

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
            if self._unfinished == 0 and self._joiners._parked:
                self._joiners.wake_all()

    def join(self) -> None:
        """Block until every item put has been marked done by task_done()."""
        with self._mutex:
            while self._unfinished:
                self._joiners.park(self._mutex, None)

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
        fresh: deque[T] = deque()
        with self._mutex:
            # One step, pure bytecode: a handler's get_nowait() sees the items or none.
            self._shutdown = True
            if immediate:
                dropped = self._items
                n = self._count
                unfinished = self._unfinished
                self._items = fresh
                self._count = 0
                self._unfinished = unfinished - n if unfinished > n else 0
                self._joiners.wake_all()
            self._getters.wake_all()
            self._putters.wake_all()
        # The dropped items die here, outside the lock: their __del__ may use this queue.
        del dropped

    # -- protocols ---------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            return self.get()
        except ShutDown:
            raise StopIteration from None

    def __enter__(self) -> Queue[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("cannot pickle 'ringq.Queue' object")

    def __copy__(self) -> Any:
        raise TypeError("cannot copy 'ringq.Queue' object")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("cannot copy 'ringq.Queue' object")

    def __repr__(self) -> str:
        state = " shutdown" if self._shutdown else ""
        return f"<ringq.Queue maxsize={self._maxsize} qsize={self._count}{state}>"
