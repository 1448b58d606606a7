"""The pure-Python twin of ringq's Cython core: a package that mirrors ``_queue_c``.

It is used on PyPy, where no extension is built, and wherever RINGQ_NO_EXTENSIONS=1
is set. It keeps the core's design so that both behave the same way, and the same
file layout, one concern per file, so that each file can be read beside its C twin
(``ring.py`` beside ``_queue_c/ring.pxi`` and so on):

==================  ===============================================================
ring.py             storage: the deques of the levels, and the steps that move items
waiters.py          waiter lists, parking and wake-ups
timeouts.py         deadlines, timeouts, signals (main-thread 50 ms slices), fork
tokens.py           CancelToken
bucket.py           TokenBucket: a RateLimiter's state
async_waiters.py    async waiter records, linking, sleeping
queue.py            the Queue class: its state and public methods, with the fast paths
queue_sync.py       the sync calls' internals and the one waiting routine they share
queue_async.py      the async calls' internals
priority.py         PriorityQueue
select.py           select() and aselect()
stats.py            statistics, watermarks, producer handles
==================  ===============================================================

The core also has ``gc.pxi`` (traverse and clear for the cyclic GC); the twin has no
such file: its objects are ordinary Python objects, which the GC handles by itself.
Queue's long method bodies live in the concern files as functions taking the queue
as ``q``; Queue stays one class.

The lock rules (every file here follows them)
---------------------------------------------
* One lock guards every field of a queue (here a ``threading.RLock``: a signal
  handler, or an item's ``__del__`` run by the GC, may call back into the same queue
  from the thread that holds it, and a plain Lock would deadlock there). A
  CancelToken has its own plain lock, taken inside a queue's lock, never around it.
* Waiting threads park on a private lock each, queued FIFO per condition
  (getters, putters, joiners). A waker only removes the waiter from its list and
  releases its lock: the woken thread re-checks the queue itself. A thread that
  leaves after being woken without using the wake-up (timeout, Ctrl-C, or an
  exception from a signal handler right after its wake-up) passes it on to the
  next waiter.
* No user code runs under the lock: watermark callbacks are delivered, and dropped
  or evicted items die, after it is released.
* Every wait is interruptible: the main thread waits in 50 ms slices so that
  signal handlers (Ctrl-C) run.

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
an iterator made after the previous put's step (see ring.put_one). One gap remains,
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

A handler that *wakes* a call is never lost, whatever the call (sync or async, select
and token waits included): the queue's lock being re-entrant, a handler run between a
call's check of the queue and the link of its waiter may shut the queue down, put,
get or finish a task while nobody is linked. So a waiting call reads its condition
again once linked (``_WaitList.park``, ``async_waiters.sleep``; the conditions are in
``queue_sync.py``), and select() makes its links before it checks, with no check point
between the check and the append. A CancelToken's lock is re-entrant too, so that a
handler may call cancel() while its thread is inside the token.
"""
from __future__ import annotations

from _thread import allocate_lock, get_ident  # noqa: F401 - re-exported (tests patch allocate_lock)

from .._errors import Cancelled, Empty, Full, ShutDown  # noqa: F401 - as the core module has them
from .._timeout import deadline as _deadline  # noqa: F401
from .async_waiters import _GONE, _LINKED, _WOKEN, _resolve, _TaskWaiter, _wake_future  # noqa: F401
from .bucket import TokenBucket
from .priority import PriorityQueue, _as_levels  # noqa: F401
from .queue import Queue, _as_maxsize, _type_name, _with_self  # noqa: F401
from .queue_sync import _raise_shutdown, _with_put_count  # noqa: F401
from .ring import _CHANGED, _NO_ROOM_FOR_ALL, _NOTHING, _SHUT_DOWN, _popleft  # noqa: F401
from .select import _pass_on, _shuffle, _TaskSelectLink, _unlink_select, aselect, select  # noqa: F401
from .stats import _PRODUCERS_LEFT, Producer, _config_lock, _watermark_sizes  # noqa: F401
from .timeouts import (  # noqa: F401
    _MAIN_THREAD_SLICE,
    _acquire_until,
    _clamped,
    _earlier,
    _live_queues,
    _reset_after_fork,
    _running_loop,
)
from .tokens import _MAX_PRUNE_AT, _PRUNE_MIN, CancelToken, _as_token, _check_token  # noqa: F401
from .waiters import _DEPTH_SLACK, _Call, _depth, _Link, _saved_state, _WaitList  # noqa: F401

__all__ = ["CancelToken", "PriorityQueue", "Producer", "Queue", "aselect", "select"]

# The public objects name this package as their module, as they did when the twin was
# one file: class reprs, pickling errors and the tests' implementation checks see
# "ringq._queue_py.Queue" (the core's are "ringq._queue_c.Queue").
for _obj in (CancelToken, PriorityQueue, Producer, Queue, TokenBucket, aselect, select):
    _obj.__module__ = __name__
del _obj
