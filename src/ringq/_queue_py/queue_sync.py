"""The sync calls' internals: put's and put_many's locked sections, their waits, eviction, shutdown, clear.

Queue's methods (queue.py) keep the fast paths; what they do under the lock and
while they wait is here. Every function takes the queue as ``q``.

The C side of this file is ``_queue_c/queue_sync.pxi``.
"""
from __future__ import annotations

from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any, Iterable

from .._errors import Cancelled, Full, ShutDown
from .._loopguard import refuse as _refuse_blocking
from .._timeout import deadline as _deadline  # the check shared with the toolkit modules
from .ring import _CHANGED, _NO_ROOM_FOR_ALL, _SHUT_DOWN, least_urgent_level, level_deque, priority_of, put_one, put_run
from .stats import deliver_watermark, grew, shrank
from .timeouts import _running_loop
from .tokens import _as_token
from .waiters import _DEPTH_SLACK, _depth, _WaitList

if TYPE_CHECKING:
    from .queue import Queue


def _with_put_count(exc: BaseException, count: int) -> BaseException:
    """*exc* (raised by a batch put) carrying how many of the batch's items went in."""
    exc.put_count = count  # type: ignore[attr-defined]
    return exc


def _raise_shutdown(cause: BaseException | None) -> None:
    """Raise ShutDown, chained to *cause* when a producer passed one on."""
    if cause is not None:
        raise ShutDown from cause
    raise ShutDown


# What a waiting call waits for, by plain reads of the queue's fields (lock held): park()
# reads it again once its waiter is linked (see _WaitList.park). Each must hold exactly
# when its caller's own check would not wait (or would raise ShutDown): one that held
# when the caller must wait would make it spin.


def room_or_shut_down(q: Queue[Any]) -> bool:
    """put's and put_many's: room for an item (see ring.put_one, ring.put_run), or shut down."""
    maxsize = q._maxsize
    return q._shutdown or maxsize <= 0 or q._count < maxsize


def item_or_shut_down(q: Queue[Any]) -> bool:
    """get's and get_many's: an item at any level, or shut down."""
    return q._count > 0 or q._shutdown


def tasks_done(q: Queue[Any]) -> bool:
    """join's: no unfinished task."""
    return not q._unfinished


def wait(
    q: Queue[Any], waiters: _WaitList, ready: Any, block: bool, deadline: float | None, token: Any, call: str
) -> bool | None:
    """The one waiting routine of put, put_many, get and get_many (lock held: the call found no room or no item).

    None if the call must not wait: *block* is false or *deadline* has passed (the
    caller raises its Full or Empty). Otherwise one park() on *waiters* (the lock is
    released meanwhile; Cancelled if *token* fires; see waiters.py), returning True if
    a waker chose this call; *ready* is the condition it waits for (room_or_shut_down
    or item_or_shut_down), which park() re-checks once linked. The caller then re-checks the queue and either uses that
    wake-up or, leaving without using it (an exception, or a deadline that passes
    before a re-check succeeds), hands it on to the next waiter. That hand-over is
    inline in each caller's except or finally clause: a call would be a check point
    where a signal handler could raise before it ran (see the package's docstring).
    """
    if not block or (deadline is not None and monotonic() >= deadline):
        return None
    return waiters.park(q, ready, deadline, token, call)


def put_at(q: Queue[Any], item: Any, level: int, block: bool, timeout: float | None, cancel: Any) -> None:
    """put() and PriorityQueue.put(): put *item* at *level*, then deliver a watermark event it caused."""
    deadline = _deadline(timeout) if block else None
    token = _as_token(cancel) if cancel is not None else None
    if under_lock(q, put_locked, item, level, block, deadline, token):
        deliver_watermark(q)


def under_lock(
    q: Queue[Any], locked: Any, items: Any, level: int, block: bool, deadline: float | None, token: Any
) -> bool:
    """put's and put_many's locked section: take the lock, run *locked* (put_locked or put_many_locked), release it.

    Returns *locked*'s answer: True if a watermark event is due.
    """
    # Not "with q._mutex": on 3.11 and earlier its __exit__ lookup allocates a
    # bound method, where the GC may run a __del__ that put()s before this item
    # (CPython's test_reentrancy). acquire() allocates nothing.
    mutex = q._mutex
    held = _depth(mutex) - _DEPTH_SLACK
    released = False
    try:
        mutex.acquire()
        event: bool = locked(q, items, level, block, deadline, token)
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


def put_locked(q: Queue[Any], item: Any, level: int, block: bool, deadline: float | None, token: Any) -> bool:
    """Lock held: put *item* (waiting if *block*); True if a watermark event is due."""
    if put_one(q, item, level):
        event = q._count >= q._alert_up and grew(q)
        if q._getters._parked:
            q._getters.wake(1)
        return event
    if not block:
        raise Full
    return put_wait(q, item, level, deadline, token)


def put_wait(q: Queue[Any], item: Any, level: int, deadline: float | None, token: Any) -> bool:
    """Lock held. put()'s slow path: wait for room."""
    woken = False
    try:
        while True:
            waited = wait(q, q._putters, room_or_shut_down, True, deadline, token, "put")
            if waited is None:
                raise Full
            woken = waited
            if put_one(q, item, level):
                woken = False
                event = q._count >= q._alert_up and grew(q)
                if q._getters._parked:
                    q._getters.wake(1)
                return event
    finally:
        if woken:
            # Leaving on an exception (or Full) after a wake-up we did not use:
            # hand it on, inline (calling wake() is itself a check point).
            parked = q._putters._parked
            while parked:
                other = parked[0]
                del parked[0]
                if other.release() is not False:  # a task that left takes none: next
                    break


def put_many_at(
    q: Queue[Any], items: Iterable[Any], level: int, block: bool, timeout: float | None, cancel: Any
) -> None:
    """put_many() and PriorityQueue.put_many(): the batch at *level*, then a watermark event it caused."""
    deadline = _deadline(timeout) if block else None
    try:
        token = _as_token(cancel) if cancel is not None else None
    except Cancelled as e:
        raise _with_put_count(e, 0)  # noqa: B904 - the caught exception itself, re-raised
    batch = items if type(items) is tuple else tuple(items)
    if under_lock(q, put_many_locked, batch, level, block, deadline, token):
        deliver_watermark(q)


def put_many_locked(
    q: Queue[Any], batch: tuple[Any, ...], level: int, block: bool, deadline: float | None, token: Any
) -> bool:
    """Lock held: put_many()'s loop; True if a watermark event is still due."""
    n = len(batch)
    done = 0
    woken = False
    event = False
    maxsize = q._maxsize
    if block and 0 < maxsize < q._count + n and not q._shutdown and (
            deadline is None or monotonic() < deadline) and _running_loop() is not None:
        # Not all fit, so this call will wait: refuse a thread that runs an event
        # loop before any item goes in (park() would, but only after a partial put).
        _refuse_blocking("put_many")
    try:
        while True:
            took = put_run(q, batch, done, level, block)
            if took > 0:
                woken = False
                done += took
                if q._count >= q._alert_up and grew(q):
                    event = True
                if q._getters._parked:
                    q._getters.wake(took)
                if event and done < n:
                    # Deliver now, not after the wait for room: outside the lock, as the core does.
                    event = False
                    saved = q._mutex._release_save()  # type: ignore[attr-defined]  # private, not in typeshed
                    try:
                        deliver_watermark(q)
                    finally:
                        q._mutex._acquire_restore(saved)  # type: ignore[attr-defined]  # as _release_save
                    continue
            elif took == _CHANGED:
                continue
            elif took == _SHUT_DOWN:
                raise _with_put_count(ShutDown(), done)
            elif took == _NO_ROOM_FOR_ALL:
                raise _with_put_count(Full(), 0)
            if done == n:
                return event
            try:
                waited = wait(q, q._putters, room_or_shut_down, True, deadline, token, "put_many")
            except Cancelled as e:
                raise _with_put_count(e, done)  # noqa: B904 - the caught exception itself, re-raised
            if waited is None:
                raise _with_put_count(Full(), done)
            woken = waited
    finally:
        if woken:  # as in put_wait()
            parked = q._putters._parked
            while parked:
                other = parked[0]
                del parked[0]
                if other.release() is not False:  # a task that left takes none: next
                    break


def put_evict(q: Queue[Any], item: Any, level: int) -> tuple[Any, ...]:
    """put_evict(): put *item* at *level*, evicting the oldest least urgent item when full."""
    evicted: list[Any] = []
    event = False
    with q._mutex:
        while True:
            if q._shutdown:
                raise ShutDown
            if 0 < q._maxsize <= q._count:
                victim_level = least_urgent_level(q)
                if priority_of(q, level) > priority_of(q, victim_level):
                    evicted.append(item)  # less urgent than everything queued: refused
                    break
                victims = level_deque(q, victim_level)
                if not victims:
                    continue  # a handler or __del__ took it meanwhile
                # One step: the counts, then one list.append.
                victim = victims[0]
                del victims[0]
                q._count -= 1
                if victim_level:
                    q._lower_count -= 1
                if q._unfinished > 0:
                    q._unfinished -= 1  # an evicted item will never be task_done()
                evicted.append(victim)
                del victim
            if put_one(q, item, level):
                event = q._count >= q._alert_up and grew(q)
                if q._getters:
                    q._getters.wake(1)
                break
            if q._unfinished == 0:
                q._joiners.wake_all()
    if event:
        deliver_watermark(q)
    # The evicted items leave with the caller: their last reference dies outside the lock.
    return tuple(evicted)


def shutdown(q: Queue[Any], immediate: bool = False) -> None:
    """Queue.shutdown(): shut down in one step; with *immediate*, drop the items too."""
    immediate = bool(immediate)  # first: it may raise, and nothing has changed yet
    dropped: Any = None
    dropped_lower: Any = None
    event = False
    fresh: deque[Any] = deque()
    fresh_lower: tuple[deque[Any], ...] = tuple([deque() for _ in q._lower]) if immediate else ()
    with q._mutex:
        while immediate and len(fresh_lower) < len(q._lower):
            fresh_lower = tuple([deque() for _ in q._lower])  # a level made meanwhile (lazily)
        # One step, pure bytecode: a handler's get_nowait() sees the items or none.
        q._shutdown = True
        if immediate:
            dropped = q._items
            dropped_lower = q._lower
            n = q._count
            unfinished = q._unfinished
            q._items = fresh
            q._lower = fresh_lower  # as many levels: _lower never gets shorter
            q._count = 0
            q._lower_count = 0
            q._unfinished = unfinished - n if unfinished > n else 0
            q._joiners.wake_all()
            if n and q._alert_down >= 0:
                event = shrank(q)  # emptied: "low", as clear() delivers it
        q._getters.wake_all()
        q._putters.wake_all()
    # The dropped items die here, outside the lock: their __del__ may use this queue.
    del dropped, dropped_lower
    if event:
        deliver_watermark(q)


def clear(q: Queue[Any]) -> int:
    """Queue.clear(): drop every item in one step; return how many."""
    dropped: Any = None
    dropped_lower: Any = None
    event = False
    fresh: deque[Any] = deque()
    fresh_lower: tuple[deque[Any], ...] = tuple([deque() for _ in q._lower])
    with q._mutex:
        while len(fresh_lower) < len(q._lower):
            fresh_lower = tuple([deque() for _ in q._lower])  # a level made meanwhile (lazily)
        # One step, pure bytecode (as in shutdown(immediate=True)): a signal
        # handler, a __del__ or a fork child sees every item or none.
        dropped = q._items
        dropped_lower = q._lower
        count = q._count
        unfinished = q._unfinished
        q._items = fresh
        q._lower = fresh_lower  # as many levels: _lower never gets shorter
        q._count = 0
        q._lower_count = 0
        q._unfinished = unfinished - count if unfinished > count else 0
        if count:
            if q._unfinished == 0:
                q._joiners.wake_all()
            if q._alert_down >= 0:
                event = shrank(q)
        q._putters.wake_all()  # they re-check the room
    # The dropped items die here, outside the lock: their __del__ may use this queue.
    del dropped, dropped_lower
    if event:
        deliver_watermark(q)
    return count
