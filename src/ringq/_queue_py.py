"""The pure-Python twin of ringq's Cython core (``_queue_c.pyx``).

It is used on PyPy, where no extension is built, and wherever RINGQ_NO_EXTENSIONS=1
is set. It keeps the core's design so that both behave the same way:

* one lock guards every field (here a ``threading.RLock``: an item's ``__del__``,
  run by the GC at an allocation inside a locked section, may call back into the
  same queue, and a plain Lock would deadlock there);
* waiting threads park on a private lock each, queued FIFO per condition
  (getters, putters, joiners). A waker only removes the waiter from its list and
  releases its lock: the woken thread re-checks the queue itself. A waiter that
  leaves after being woken without using the wake-up (timeout, Ctrl-C) passes
  it on to the next waiter, so no wake-up is ever lost.
"""
from __future__ import annotations

import asyncio
import operator
import os
import weakref
from _thread import allocate_lock, get_ident
from collections import deque
from threading import RLock
from time import monotonic
from types import GenericAlias
from typing import Any, AsyncIterator, Generic, Iterable, Iterator, TypeVar

from ._asyncview import AsyncQueueView
from ._errors import Empty, Full, ShutDown
from ._timeout import deadline as _deadline  # shared with the toolkit modules

__all__ = ["PriorityQueue", "Queue"]

T = TypeVar("T")


def _as_maxsize(maxsize: Any) -> int:
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


class _WaitList:
    """A FIFO of parked threads, each represented by a lock it is blocked on.

    Every method is called with the queue's lock held.
    """

    __slots__ = ("_parked", "_gone")

    def __init__(self) -> None:
        self._parked: deque[Any] = deque()
        self._gone = 0  # task waiters that left but are still in the deque

    def __bool__(self) -> bool:
        return bool(self._parked)

    def wake(self, n: int = 1) -> None:
        """Wake the *n* oldest waiters (fewer if fewer wait).

        A thread's lock.release() returns None; a task waiter's release() returns
        False when it cannot take the wake-up (it left, or its loop is closed), and
        the wake-up then goes to the next waiter.
        """
        parked = self._parked
        while n > 0 and parked:
            if parked.popleft().release() is not False:
                n -= 1

    def link_task(self) -> _TaskWaiter:
        """Append a waiter for the running task (RuntimeError outside a running loop)."""
        rec = _TaskWaiter(self)
        self._parked.append(rec)
        return rec

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
                self._parked = deque(w for w in self._parked if getattr(w, "state", _LINKED) != _GONE)
                self._gone = 0
        elif rec.state == _WOKEN and pass_on:
            self.wake(1)

    def wake_all(self) -> None:
        self.wake(len(self._parked))

    def park(self, mutex: Any, deadline: float | None) -> None:
        """Sleep until woken, *deadline* or an exception (Ctrl-C), with *mutex* released.

        *mutex* is the queue's RLock, held by the caller (possibly re-entrantly: it
        is released fully, as threading.Condition does). It is held again on return
        and when an exception escapes. Callers re-check their condition and deadline.
        """
        waiter = allocate_lock()
        waiter.acquire()
        self._parked.append(waiter)
        saved = mutex._release_save()
        try:
            if deadline is None:
                acquired = waiter.acquire()
            else:
                remaining = deadline - monotonic()
                acquired = remaining > 0 and waiter.acquire(True, remaining)
        except BaseException:
            mutex._acquire_restore(saved)
            try:
                self._parked.remove(waiter)
            except ValueError:
                # A waker chose us just before the exception: hand its wake-up on,
                # so that no other waiter sleeps through it.
                self.wake(1)
            raise
        mutex._acquire_restore(saved)
        if not acquired:
            try:
                self._parked.remove(waiter)
            except ValueError:
                pass  # woken as the deadline passed: the caller's re-check uses it


_LINKED, _WOKEN, _GONE = 0, 1, 2


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
        "_lower_count",
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
        # Storage, as in the core: _items is level 0 (a plain queue's only level),
        # _lower holds a PriorityQueue's levels 1.., _lower_count the items in them.
        self._items: deque[T] = deque()
        self._lower: tuple[deque[T], ...] = ()
        self._lower_count = 0
        self._unfinished = 0
        self._shutdown = False
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()
        _live_queues.add(self)

    def _reset_after_fork(self) -> None:
        # In a fork child only the forking thread exists: the parked waiters, and any
        # thread that held the lock at the fork, are gone. Forget them.
        self._mutex = RLock()
        self._getters = _WaitList()
        self._putters = _WaitList()
        self._joiners = _WaitList()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if cls.__module__ != __name__:  # PriorityQueue, below, is the one subclass
            raise TypeError(f"type {_closed_base_name(cls)!r} is not an acceptable base type")
        super().__init_subclass__(**kwargs)

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

    def _room(self) -> int:
        """Free slots (lock held); a large number when unbounded."""
        if self._maxsize <= 0:
            return 1 << 62
        # No call that allocates here (max() packs a tuple, which may run the GC and a
        # re-entrant __del__ after the size was read): maxsize may be below qsize.
        room = self._maxsize - len(self._items) - self._lower_count
        return room if room > 0 else 0

    def qsize(self) -> int:
        """Number of items in the queue (a snapshot)."""
        return len(self._items) + self._lower_count

    def empty(self) -> bool:
        """True if the queue holds no item (a snapshot)."""
        return not self._items and not self._lower_count

    def full(self) -> bool:
        """True if the queue is bounded and holds maxsize items or more (a snapshot)."""
        with self._mutex:
            return 0 < self._maxsize <= len(self._items) + self._lower_count

    # -- storage: the only steps that know about priority levels (lock held) --
    def _level_deque(self, level: int) -> deque[T]:
        return self._items if level == 0 else self._lower[level - 1]

    def _pop_first(self) -> T:
        """Remove the oldest item of the most urgent non-empty level (size > 0)."""
        if self._items:
            return self._items.popleft()
        lower = self._lower
        k = 0
        while not lower[k]:
            k += 1
        self._lower_count -= 1
        return lower[k].popleft()

    def _least_urgent_level(self) -> int:
        """The least urgent level that holds an item (size > 0)."""
        k = len(self._lower)
        while k > 0 and not self._lower[k - 1]:
            k -= 1
        return k

    # -- put ---------------------------------------------------------------
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), and
        ShutDown if the queue is shut down.
        """
        self._put_at(item, 0, block, timeout)

    def put_nowait(self, item: T) -> None:
        """Put *item* without waiting; Full if there is no room."""
        self._put_at(item, 0, False, None)

    def _put_at(self, item: T, level: int, block: bool, timeout: float | None) -> None:
        deadline = _deadline(timeout) if block else None
        with self._mutex:
            while True:
                if self._shutdown:
                    raise ShutDown
                if self._room() > 0:
                    self._level_deque(level).append(item)
                    self._unfinished += 1
                    if level:
                        self._lower_count += 1
                    if self._getters:
                        self._getters.wake(1)
                    return
                if not block or (deadline is not None and monotonic() >= deadline):
                    raise Full
                self._putters.park(self._mutex, deadline)

    def put_many(self, items: Iterable[T], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of *items*, in order.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full) or a shutdown
        (ShutDown) the items already put stay in the queue::

            q.put_many([1, 2, 3])
        """
        self._put_many_at(items, 0, block, timeout)

    def _put_many_at(self, items: Iterable[T], level: int, block: bool, timeout: float | None) -> None:
        deadline = _deadline(timeout) if block else None
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = 0
        with self._mutex:
            while True:
                if self._shutdown:
                    raise ShutDown
                append = self._level_deque(level).append  # allocated before the room check (see below)
                room = self._room()
                if not block and room < n:
                    raise Full
                take = n - done if n - done < room else room  # not min(): see _room()
                if take > 0:
                    # No allocation between the room check and the appends: one could
                    # run the GC, whose __del__ could re-enter put() and take the room.
                    for k in range(done, done + take):
                        append(batch[k])
                    done += take
                    self._unfinished += take
                    if level:
                        self._lower_count += take
                    if self._getters:
                        self._getters.wake(take)
                if done == n:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                self._putters.park(self._mutex, deadline)

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
        with self._mutex:
            while True:
                if self._shutdown:
                    raise ShutDown
                target = self._level_deque(level)
                if 0 < self._maxsize <= len(self._items) + self._lower_count:
                    victim_level = self._least_urgent_level()
                    if level > victim_level:
                        evicted.append(item)  # less urgent than everything queued: refused
                        break
                    evicted.append(self._level_deque(victim_level).popleft())
                    if victim_level:
                        self._lower_count -= 1
                    if self._unfinished > 0:
                        self._unfinished -= 1  # an evicted item will never be task_done()
                if self._room() > 0:
                    target.append(item)
                    self._unfinished += 1
                    if level:
                        self._lower_count += 1
                    if self._getters:
                        self._getters.wake(1)
                    break
                if self._unfinished == 0:
                    self._joiners.wake_all()
        # The evicted items leave with the caller: their last reference dies outside the lock.
        return tuple(evicted)

    # -- get ---------------------------------------------------------------
    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item, waiting up to *timeout* seconds.

        Raises Empty if none arrives (at once with ``block=False``), and ShutDown
        once the queue is shut down and empty.
        """
        deadline = _deadline(timeout) if block else None
        with self._mutex:
            while True:
                if self._items or self._lower_count:
                    item = self._pop_first()
                    if self._putters:
                        self._putters.wake(1)
                    return item
                if self._shutdown:
                    raise ShutDown
                if not block or (deadline is not None and monotonic() >= deadline):
                    raise Empty
                self._getters.park(self._mutex, deadline)

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
        with self._mutex:
            while True:
                items = self._items
                if items or self._lower_count:
                    batch: list[T] = []
                    # Re-check emptiness at every pop: creating the list may have run the
                    # GC, and a __del__ may have taken items through re-entrant calls.
                    while items and len(batch) < n:
                        batch.append(items.popleft())
                    while self._lower_count and len(batch) < n:
                        batch.append(self._pop_first())  # the other levels, most urgent first
                    if self._putters:
                        self._putters.wake(len(batch))
                    if batch:
                        return batch
                    continue
                if self._shutdown:
                    raise ShutDown
                if not block or (deadline is not None and monotonic() >= deadline):
                    raise Empty
                self._getters.park(self._mutex, deadline)

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
        dropped: list[T] = []
        with self._mutex:
            self._shutdown = True
            if immediate:
                dropped = list(self._items)
                self._items.clear()
                for level in self._lower:
                    dropped.extend(level)
                    level.clear()
                self._lower_count = 0
                self._unfinished = max(0, self._unfinished - len(dropped))
                self._joiners.wake_all()
            self._getters.wake_all()
            self._putters.wake_all()
        # The dropped items die here, outside the lock: their __del__ may use this queue.
        del dropped

    # -- asyncio -----------------------------------------------------------
    # An async call checks the queue like the sync call; to wait, it appends a
    # _TaskWaiter to the same FIFO deque a thread would join (in the same locked
    # section as the failed check) and awaits its future: the loop never blocks on
    # a lock held by a waiting thread. Woken, it re-checks; cancelled or closed
    # while waiting, it leaves, passing on a wake-up it had already received.

    def _async_level(self) -> int:
        """The level aput uses (lock held): 0 for a Queue; a PriorityQueue's default, levels // 2."""
        return (len(self._lower) + 1) // 2

    async def _sleep(self, rec: _TaskWaiter, deadline: float | None) -> None:
        timer = None
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
        with self._mutex:
            rec.wait_list.leave_task(rec, False)

    async def aput(self, item: T, timeout: float | None = None) -> None:
        """Put *item* at the tail, awaiting room for up to *timeout* seconds (async put()).

        Raises Full on a timeout and ShutDown if the queue is shut down. Cancelled,
        it either put the item (and returned) or left the queue unchanged.
        """
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if self._shutdown:
                    raise ShutDown
                if self._room() > 0:
                    level = self._async_level()
                    self._level_deque(level).append(item)
                    self._unfinished += 1
                    if level:
                        self._lower_count += 1
                    if self._getters:
                        self._getters.wake(1)
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                rec = self._putters.link_task()
            await self._sleep(rec, deadline)

    async def aput_many(self, items: Iterable[T], timeout: float | None = None) -> None:
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        cancellation the items already put stay in the queue.
        """
        deadline = _deadline(timeout)
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = 0
        while True:
            with self._mutex:
                if self._shutdown:
                    raise ShutDown
                level = self._async_level()
                append = self._level_deque(level).append  # allocated before the room check (see put_many)
                room = self._room()
                take = n - done if n - done < room else room
                if take > 0:
                    for k in range(done, done + take):
                        append(batch[k])
                    done += take
                    self._unfinished += take
                    if level:
                        self._lower_count += take
                    if self._getters:
                        self._getters.wake(take)
                if done == n:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise Full
                rec = self._putters.link_task()
            await self._sleep(rec, deadline)

    async def aget(self, timeout: float | None = None) -> T:
        """Remove and return the oldest item, awaiting one for up to *timeout* seconds (async get()).

        Raises Empty on a timeout and ShutDown once the queue is shut down and
        empty. Cancelled, it either returned its item or left the queue unchanged.
        """
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if self._items or self._lower_count:
                    item = self._pop_first()
                    if self._putters:
                        self._putters.wake(1)
                    return item
                if self._shutdown:
                    raise ShutDown
                if deadline is not None and monotonic() >= deadline:
                    raise Empty
                rec = self._getters.link_task()
            await self._sleep(rec, deadline)

    async def aget_many(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Await like aget() for at least one item, then return up to *max_items* (async get_many())."""
        try:
            n = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if n < 1:
            raise ValueError("max_items must be >= 1")
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                items = self._items
                if items or self._lower_count:
                    batch: list[T] = []
                    while items and len(batch) < n:
                        batch.append(items.popleft())
                    while self._lower_count and len(batch) < n:
                        batch.append(self._pop_first())
                    if self._putters:
                        self._putters.wake(len(batch))
                    if batch:
                        return batch
                    continue
                if self._shutdown:
                    raise ShutDown
                if deadline is not None and monotonic() >= deadline:
                    raise Empty
                rec = self._getters.link_task()
            await self._sleep(rec, deadline)

    async def ajoin(self, timeout: float | None = None) -> None:
        """Await until every item put has been marked done (async join()); TimeoutError after *timeout*."""
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if not self._unfinished:
                    return
                if deadline is not None and monotonic() >= deadline:
                    raise TimeoutError("ajoin() timed out with unfinished tasks")
                rec = self._joiners.link_task()
            await self._sleep(rec, deadline)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.aget()
        except ShutDown:
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
        return f"<ringq.Queue maxsize={self._maxsize} qsize={self.qsize()}{state}>"


def _closed_base_name(cls: type) -> str:
    return "ringq.PriorityQueue" if issubclass(cls, PriorityQueue) else "ringq.Queue"


def _as_levels(levels: Any) -> int:
    if isinstance(levels, bool):
        raise TypeError("levels must be an integer, not 'bool'")
    try:
        n = operator.index(levels)
    except TypeError:
        raise TypeError(f"levels must be an integer, not {type(levels).__name__!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, not {n}")
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

    def __init__(self, levels: int = 3, maxsize: int = 0) -> None:
        n = _as_levels(levels)
        try:
            current = len(self._lower)
        except AttributeError:  # not initialised yet
            current = 0
        if current and current != n - 1:
            raise RuntimeError("the levels of a PriorityQueue cannot be changed")
        super().__init__(maxsize)
        self._lower = tuple(deque() for _ in range(n - 1))

    @property
    def levels(self) -> int:
        """The number of priority levels; 0 is the most urgent, ``levels - 1`` the least."""
        return len(self._lower) + 1

    def _level_of(self, priority: Any) -> int:
        levels = len(self._lower) + 1
        if priority is None:
            return levels // 2
        if isinstance(priority, bool):
            raise TypeError("priority must be an integer, not 'bool'")
        try:
            p = operator.index(priority)
        except TypeError:
            raise TypeError(f"priority must be an integer, not {type(priority).__name__!r}") from None
        if not 0 <= p < levels:
            raise ValueError(f"priority must be in range({levels}), not {p}")
        return p

    def put(  # type: ignore[override]
        self, item: T, priority: int | None = None, block: bool = True, timeout: float | None = None
    ) -> None:
        """Put *item* at the tail of level *priority* (None: ``levels // 2``), like Queue.put."""
        self._put_at(item, self._level_of(priority), block, timeout)

    def put_nowait(self, item: T, priority: int | None = None) -> None:
        """Put *item* at level *priority* without waiting; Full if there is no room."""
        self._put_at(item, self._level_of(priority), False, None)

    def put_many(  # type: ignore[override]
        self,
        items: Iterable[T],
        priority: int | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many."""
        self._put_many_at(items, self._level_of(priority), block, timeout)

    def put_evict(self, item: T, priority: int | None = None) -> tuple[T, ...]:
        """Put *item* at level *priority* without waiting, evicting when the queue is full.

        The evicted item is the oldest of the least urgent non-empty level; when
        *item* is less urgent than every queued item, *item* itself is refused.
        Returns the evicted (or refused) items as a tuple, ``()`` if there was room.
        """
        return self._put_evict(item, self._level_of(priority))

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("cannot pickle 'ringq.PriorityQueue' object")

    def __copy__(self) -> Any:
        raise TypeError("cannot copy 'ringq.PriorityQueue' object")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("cannot copy 'ringq.PriorityQueue' object")

    def __repr__(self) -> str:
        state = " shutdown" if self._shutdown else ""
        return (f"<ringq.PriorityQueue levels={self.levels} maxsize={self._maxsize} "
                f"qsize={self.qsize()}{state}>")
