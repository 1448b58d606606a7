"""The Queue class: its state and its public method surface.

The fast paths of put, get, put_many and get_many stay here, inline; what a call
does under the lock beyond them, and how it waits, is in queue_sync.py (sync calls)
and queue_async.py (async calls); storage steps are in ring.py, watermarks and
statistics in stats.py. The package's docstring (__init__.py) has the lock rules.

The C side of this file is ``_queue_c/queue.pxi``.
"""
from __future__ import annotations

import inspect
import operator
from collections import deque
from itertools import islice, repeat
from threading import RLock
from time import monotonic
from types import GenericAlias
from typing import TYPE_CHECKING, Any, AsyncIterator, Generic, Iterable, Iterator, TypeVar

from .._asyncview import AsyncQueueView
from .._ctor import queue_args as _queue_args
from .._errors import Empty, ShutDown
from .._stats import QueueStatistics
from .._timeout import deadline as _deadline  # the check shared with the toolkit modules
from .async_waiters import sleep
from .queue_async import aput_at, aput_many_at
from .queue_sync import _raise_shutdown, item_or_shut_down, put_at, put_many_at, tasks_done, wait
from .queue_sync import clear as _clear
from .queue_sync import put_evict as _put_evict
from .queue_sync import shutdown as _shutdown
from .ring import _NOTHING, _popleft, first_level, give_back_lower, pop_first, take_lower
from .stats import Producer, deliver_watermark, register_producer, shrank
from .stats import on_watermark as _on_watermark
from .stats import statistics as _statistics
from .timeouts import _live_queues
from .tokens import CancelToken, _as_token, _check_token
from .waiters import _WaitList

T = TypeVar("T")


def _as_maxsize(maxsize: Any) -> int:
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


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
        "_order",
        "_prios",
        "_slots",
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
        self._lower: tuple[deque[T], ...] = ()  # made lazily, one per level in use (see ring.py)
        self._order: tuple[int, ...] = ()  # _lower's levels, from the most urgent priority to the least
        self._prios: tuple[int, ...] = ()  # the priority of each of _lower's levels
        self._slots: dict[int, int] | None = None  # priority -> its level in _lower, once one is made
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
        # put()'s step iterator, made ahead of time (see ring.put_one): None while a put uses it.
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

    if TYPE_CHECKING:
        def __class_getitem__(cls, item: Any, /) -> GenericAlias: ...
    else:
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

    # -- put ---------------------------------------------------------------
    def put(
        self, item: T, block: bool = True, timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), ShutDown if
        the queue is shut down, and Cancelled if the ``cancel`` token fires first.
        """
        put_at(self, item, 0, block, timeout, cancel)

    def put_nowait(self, item: T) -> None:
        """Put *item* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue:
            self.put(item, block=False)
            return
        put_at(self, item, 0, False, None, None)

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
        put_many_at(self, items, 0, block, timeout, cancel)

    def put_evict(self, item: T) -> tuple[T, ...]:
        """Put *item* without waiting; if the queue is full, first evict its oldest item.

        Returns the evicted items as a tuple: ``()`` when there was room, else
        ``(oldest,)`` (more only if maxsize was lowered below the size). An evicted
        item counts as done for join()::

            dropped = latest.put_evict(reading)   # never blocks
        """
        return _put_evict(self, item, 0)

    # -- get ---------------------------------------------------------------
    def get(self, block: bool = True, timeout: float | None = None, *, cancel: CancelToken | None = None) -> T:
        """Remove and return the oldest item, waiting up to *timeout* seconds.

        Raises Empty if none arrives (at once with ``block=False``), ShutDown
        once the queue is shut down and empty (chained to the cause a producer
        passed on, see producer()), and Cancelled if the ``cancel`` token fires.
        """
        deadline = _deadline(timeout) if block else None
        token = _as_token(cancel) if cancel is not None else None
        item: T = _NOTHING  # the sentinel (typed Any) until the take
        level = 0
        woken = False
        try:
            with self._mutex:
                while True:
                    if self._count:
                        # Wake a putter first: it needs our lock, so it runs after the take.
                        if self._putters._parked:
                            self._putters.wake(1)
                        level = 0 if self._items else first_level(self)
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
                            event = self._count <= self._alert_down and shrank(self)
                            break
                        continue
                    if self._shutdown:
                        _raise_shutdown(self._shutdown_cause)
                    waited = wait(self, self._getters, item_or_shut_down, block, deadline, token, "get")
                    if waited is None:
                        raise Empty  # the except clause hands on a wake-up we did not use
                    woken = waited
            if event:
                deliver_watermark(self)
        except BaseException:
            # Everything here is inline, each step plain bytecode plus one C call:
            # even calling a helper is a check point where a handler may raise.
            try:
                if item is not _NOTHING:
                    # The exception landed after the take (at the lock's release): the
                    # item goes back to the head, neither lost nor delivered, and its
                    # wake-up to the next getter (one may have parked meanwhile).
                    woken = True
                    self._count += 1
                    self._gets -= 1
                    if level:
                        self._lower_count += 1
                        source = self._lower[level - 1]
                    else:
                        source = self._items
                    source.appendleft(item)
            finally:
                if woken:  # a wake-up we did not use: hand it on, as in queue_sync.put_wait()
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
                            take_lower(self, batch, n, lower_taken)
                        if not batch:
                            continue
                        event = self._count <= self._alert_down and shrank(self)
                        break
                    if self._shutdown:
                        _raise_shutdown(self._shutdown_cause)
                    waited = wait(self, self._getters, item_or_shut_down, block, deadline, token, "get_many")
                    if waited is None:
                        raise Empty  # the except clause hands on a wake-up we did not use
                    woken = waited
            if event:
                deliver_watermark(self)
        except BaseException:
            # As in get(): inline steps only.
            try:
                if batch:
                    woken = True  # the batch's wake-up goes on with it
                    if lower_taken is not None:
                        give_back_lower(self, batch, got, lower_taken)
                    if got:
                        back = batch[got - 1::-1]
                        self._count += got
                        self._gets -= got
                        self._items.extendleft(back)
            finally:
                if woken:
                    parked = self._getters._parked
                    while parked:
                        other = parked[0]
                        del parked[0]
                        if other.release() is not False:  # a task that left takes none: next
                            break
            raise
        return batch

    # -- statistics and watermarks -----------------------------------------
    def on_watermark(self, high: float = 0.8, low: float = 0.7, callback: Any = None) -> None:
        """Call ``callback("high")`` when the size reaches *high*, then ``callback("low")`` when it falls to *low*.

        *high* and *low* are fractions of maxsize (floats) or sizes (ints); see the
        core's docstring and docs/api.md. ``callback=None`` removes the watermark.
        """
        _on_watermark(self, high, low, callback)

    def statistics(self) -> QueueStatistics:
        """A snapshot of the queue's counters, as a QueueStatistics named tuple."""
        return _statistics(self)

    # -- producers ---------------------------------------------------------
    def producer(self) -> Producer:
        """Register a producer; the queue shuts down (gracefully) when the last registered one closes.

        A producer that leaves on an exception passes it on: once the queue is shut
        down and drained, get() raises ShutDown chained to it. Raises ShutDown if
        the queue is already shut down. See the core's docstring for an example.
        """
        return register_producer(self)

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
                self._joiners.park(self, tasks_done, None, token, "join")

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
        _shutdown(self, immediate)

    def clear(self) -> int:
        """Drop every queued item at once (all levels of a PriorityQueue); return how many.

        The dropped items count as done for join(), and blocked putters are woken
        (there is room now). It replaces the stdlib idiom
        ``with q.mutex: q.queue.clear()``::

            dropped = q.clear()    # the queue is empty; join() no longer waits for them
        """
        return _clear(self)

    # -- asyncio: see async_waiters.py -------------------------------------
    async def aput(self, item: T, timeout: float | None = None, *, cancel: CancelToken | None = None) -> None:
        """Put *item* at the tail, awaiting room for up to *timeout* seconds (async put()).

        Raises Full on a timeout and ShutDown if the queue is shut down. Cancelled,
        it either put the item (and returned) or left the queue unchanged.
        """
        await aput_at(self, item, 0, timeout, cancel)

    async def aput_many(
        self, items: Iterable[T], timeout: float | None = None, *, cancel: CancelToken | None = None
    ) -> None:
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        cancellation the items already put stay in the queue.
        """
        await aput_many_at(self, items, 0, timeout, cancel)

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
                    item: T = pop_first(self)
                    self._gets += 1
                    event = self._count <= self._alert_down and shrank(self)
                    if self._putters:
                        self._putters.wake(1)
                    break
                if self._shutdown:
                    _raise_shutdown(self._shutdown_cause)
                if deadline is not None and monotonic() >= deadline:
                    raise Empty
                _check_token(token)
                rec = self._getters.link_task()
            await sleep(self, rec, item_or_shut_down, deadline, token)
        if event:
            deliver_watermark(self)
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
                        batch.append(pop_first(self))
                    self._gets += len(batch)
                    event = self._count <= self._alert_down and shrank(self)
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
            await sleep(self, rec, item_or_shut_down, deadline, token)
        if event:
            deliver_watermark(self)
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
            await sleep(self, rec, tasks_done, deadline, token)

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


# How repr and error messages name the public classes (priority.py adds PriorityQueue).
_PUBLIC_NAMES: dict[type, str] = {}


def _type_name(q: object) -> str:
    """How repr and error messages name *q*: ringq.Queue, ringq.PriorityQueue, or a subclass's module.qualname."""
    cls = type(q)
    name = _PUBLIC_NAMES.get(cls)
    if name is not None:
        return name
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_self(binder: Any) -> inspect.Signature:
    params = [p.replace(annotation=inspect.Parameter.empty) for p in inspect.signature(binder).parameters.values()]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self_param, *params])  # as the core's: no annotations


# What inspect.signature() and help() show: the parameters _ctor binds, not *args/**kwargs.
Queue.__init__.__signature__ = _with_self(_queue_args)  # type: ignore[attr-defined]
_PUBLIC_NAMES[Queue] = "ringq.Queue"
