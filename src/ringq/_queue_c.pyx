# cython: language_level=3
# cython: embedsignature=True, embedsignature.format=clinic, binding=False
# cython: freethreading_compatible=True
# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The Cython core of ringq.Queue: a ring buffer of object pointers plus FIFO lists of parked threads.

Design in one paragraph
-----------------------
Items live in a ring of ``PyObject*`` slots that grows on demand (doubling, never
past a bounded queue's maxsize); a ring of more than RING_KEEP slots halves again
when it falls under 1/8 full. A call that can proceed does its work in one short
locked section and never releases the GIL. A call that must wait parks its thread:
it takes a *parker* (a PyThread lock held in the "acquired" state), links a
``Waiter`` that points at it into the getters, putters or joiners list, and blocks
on the parker with the GIL released. A waker unlinks the oldest waiter, marks it
woken and, after leaving the locked section, releases its parker; it wakes one
waiter per item or slot it made available, and nobody when nobody waits. The woken
thread re-checks the queue itself: nothing is handed over, so a thread that leaves
early (timeout, Ctrl-C) never strands an item, and one that leaves on an exception
after being woken passes the wake-up to the next waiter.

The waiter record is all a waker touches, and asyncio tasks use the same lists.
An async call that must wait links an ``_AsyncWaiter`` (a Python object embedding a
Waiter node whose ``task`` points back at it) into the getters, putters or joiners
list, in the same locked section as its failed check, and awaits the record's
future; so threads and tasks share one FIFO per condition and the event loop never
blocks on a thread primitive. The list owns a reference to a linked record
(Py_INCREF is allowed under the lock); a claim passes it to the waker's chain, and
wake_chain, after unlocking, resolves the future and drops it: directly when the
waker runs on the task's loop thread (no self-pipe write), else with
``loop.call_soon_threadsafe``. If that raises (the loop is closed), the wake-up goes
to the next waiter, so a dead loop never strands the queue. A task that leaves its
wait by an exception (cancellation, asyncio.timeout, the task being closed) unlinks
its record, or, if a waker had claimed it already, passes that wake-up on: the
queue is then exactly as if it had never waited (atomic cancellation). Each wait
uses a fresh record, whose fields other than the node are written before linking
and never again, so a waker may read them after unlocking.

For issue 8: a select over several queues would link one node per queue, each
pointing at one shared record, and let the first claim win (the claim checks a
flag on the shared record under each queue's lock); a cancel token would keep its
own list of such records. The ``task`` field is where such a record hangs.

Lock rules (every field of Queue below the "guarded" line obeys them)
--------------------------------------------------------------------
1. Every read or write of a guarded field happens between ``self._lock()`` and
   ``self._unlock()``. The lock is the queue's ``ringq_mutex`` (see _sync.h): a
   PyMutex on free-threaded builds, the GIL itself on GIL builds.
2. A locked section runs no Python code and never waits: no Py_DECREF (it can run
   ``__del__``, which can re-enter this queue), no allocation of Python objects (it
   can run the GC), no exception set, no release of the GIL. Allowed: plain field
   access, Py_INCREF (it cannot run code) and PyMem_Raw* (a C allocator).
3. So references are dropped, exceptions raised and parkers released only after
   ``_unlock()``. Draining (shutdown(immediate=True), GC clear, dealloc) first moves
   the slots out of the queue under the lock, then decrefs them outside it.
4. A thread never blocks on the state lock with the GIL held: PyMutex detaches
   while it waits, and on GIL builds there is nothing to block on.
5. A waiter marked woken keeps its Waiter record alive until its parker has been
   released (it blocks on the parker if needed), so a waker may release the parker
   after unlocking without the record disappearing under it.
6. An async record is kept alive by the reference its list owns, which a claim hands
   to the waker's chain; so it cannot disappear between the claim and the wake-up
   either. Its future is resolved, and the reference dropped, after unlocking.

Why this holds without a GIL (free-threaded CPython)
-----------------------------------------------------
Correctness rests on rule 1 alone, never on the GIL: on free-threaded builds the
state lock is a real PyMutex, and no field is read or written outside it. The only
reads without it are the GC's traverse (the GC stops the world, and a stopped
thread is never inside a locked section, because sections contain no stop point)
and the two module globals _fork_generation and _main_thread_ident, written only at
import and in a fork child, where a single thread runs. A waiter's ``woken`` flag
is written by its waker and read by the waiter, both under the lock; the parker's
release and acquire order the waiter's later reads.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals, PyErr_Fetch, PyErr_Restore
from cpython.list cimport PyList_New
from cpython.object cimport PyObject, PyTypeObject, traverseproc, inquiry, visitproc, Py_TPFLAGS_BASETYPE
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t
from libc.string cimport memcpy

import asyncio
import operator
import os
import threading
from types import GenericAlias

from ._asyncview import AsyncQueueView
from ._errors import Empty, Full, ShutDown

cdef object _get_running_loop = asyncio.get_running_loop
cdef object _WAIT = object()  # an async step's answer: not done, wait (and maybe linked)

cdef extern from "pythread.h":
    ctypedef void *PyThread_type_lock
    ctypedef long long PY_TIMEOUT_T
    ctypedef enum PyLockStatus:
        PY_LOCK_FAILURE
        PY_LOCK_ACQUIRED
        PY_LOCK_INTR
    const PY_TIMEOUT_T PY_TIMEOUT_MAX
    int WAIT_LOCK
    int NOWAIT_LOCK
    PyThread_type_lock PyThread_allocate_lock() nogil
    void PyThread_free_lock(PyThread_type_lock) nogil
    int PyThread_acquire_lock(PyThread_type_lock, int) nogil
    void PyThread_release_lock(PyThread_type_lock) nogil
    # Returns PY_LOCK_INTR when a signal interrupts the wait (intr_flag=1).
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock, PY_TIMEOUT_T, int) nogil
    unsigned long PyThread_get_thread_ident() nogil

cdef extern from "Python.h":
    void *PyMem_RawMalloc(size_t) nogil
    void *PyMem_RawCalloc(size_t, size_t) nogil
    void PyMem_RawFree(void *) nogil
    void Py_SET_SIZE(object, Py_ssize_t)
    const Py_ssize_t PY_SSIZE_T_MAX

cdef extern from "Python.h":
    # PyObject* forms, so that no temporary reference is created under the lock.
    void incref "Py_INCREF"(PyObject *) nogil
    void decref "Py_DECREF"(PyObject *)

cdef extern from "_sync.h":
    ctypedef struct ringq_mutex:
        pass
    const char *RINGQ_LOCK_KIND
    const bint RINGQ_GIL_BUILD
    int ringq_mutex_init(ringq_mutex *) nogil
    void ringq_mutex_free(ringq_mutex *) nogil
    void ringq_mutex_lock(ringq_mutex *)
    void ringq_mutex_unlock(ringq_mutex *) nogil
    void ringq_clock_init()
    int64_t ringq_monotonic_ns() nogil
    object ringq_steal(PyObject *)
    PyObject **ringq_list_items(object)
    PyObject **ringq_tuple_items(object)


# ---------------------------------------------------------------------------
# The ring: a circular array of owned references. Every helper runs with the
# queue's lock held and calls nothing that can run Python code.
# ---------------------------------------------------------------------------

ctypedef struct Ring:
    PyObject **slots     # NULL until the first item arrives
    Py_ssize_t cap       # number of slots
    Py_ssize_t head      # index of the oldest item
    Py_ssize_t count     # number of items

# Rings up to RING_KEEP slots (32 KiB) never shrink; larger ones halve when under
# 1/8 full, so a burst does not pin its peak memory.
cdef enum:
    RING_MIN_CAP = 8     # first allocation
    RING_KEEP = 4096


cdef inline void ring_push(Ring *r, PyObject *item) noexcept nogil:
    """Append *item* (a reference the ring now owns) at the tail; requires count < cap."""
    cdef Py_ssize_t i = r.head + r.count
    if i >= r.cap:
        i -= r.cap
    r.slots[i] = item
    r.count += 1


cdef inline PyObject *ring_pop(Ring *r) noexcept nogil:
    """Remove the oldest item and return its reference to the caller; requires count > 0."""
    cdef PyObject *item = r.slots[r.head]
    r.head += 1
    if r.head == r.cap:
        r.head = 0
    r.count -= 1
    return item


cdef void ring_take(Ring *r, PyObject **dst, Py_ssize_t n) noexcept nogil:
    """Move the *n* oldest items (and their references) to dst[0..n); requires n <= count."""
    cdef Py_ssize_t first = r.cap - r.head
    if first > n:
        first = n
    memcpy(dst, r.slots + r.head, <size_t>first * sizeof(PyObject *))
    if n > first:
        memcpy(dst + first, r.slots, <size_t>(n - first) * sizeof(PyObject *))
    r.head += n
    if r.head >= r.cap:
        r.head -= r.cap
    r.count -= n


cdef void ring_extend(Ring *r, PyObject **src, Py_ssize_t n) noexcept:
    """Append src[0..n) at the tail, taking a new reference to each; requires count + n <= cap."""
    cdef Py_ssize_t i
    cdef Py_ssize_t tail = r.head + r.count
    if tail >= r.cap:
        tail -= r.cap
    for i in range(n):
        incref(src[i])
        r.slots[tail] = src[i]
        tail += 1
        if tail == r.cap:
            tail = 0
    r.count += n


cdef int ring_resize(Ring *r, Py_ssize_t cap) noexcept nogil:
    """Move the items to a fresh array of *cap* >= count slots, oldest first; -1 if out of memory."""
    cdef PyObject **slots
    cdef Py_ssize_t n = r.count
    if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(PyObject *):
        return -1
    slots = <PyObject **>PyMem_RawMalloc(<size_t>cap * sizeof(PyObject *))
    if slots == NULL:
        return -1
    if n:
        ring_take(r, slots, n)
    PyMem_RawFree(r.slots)
    r.slots = slots
    r.cap = cap
    r.head = 0
    r.count = n
    return 0


cdef int ring_reserve(Ring *r, Py_ssize_t need, Py_ssize_t bound) noexcept nogil:
    """Make room for *need* more items, by doubling, never past *bound* (if > 0); -1 if out of memory.

    Returns 0 also when the bound caps the growth: callers re-read cap - count.
    """
    cdef Py_ssize_t want = r.count + need
    cdef Py_ssize_t cap = r.cap
    if want <= cap:
        return 0
    if bound > 0 and want > bound:
        want = bound
        if want <= cap:
            return 0
    if cap < RING_MIN_CAP:
        cap = RING_MIN_CAP
    while cap < want:
        if cap > PY_SSIZE_T_MAX // 2:
            cap = want
            break
        cap *= 2
    if bound > 0 and cap > bound:
        cap = bound
    return ring_resize(r, cap)


cdef inline void ring_maybe_shrink(Ring *r) noexcept nogil:
    """Halve a large ring that is under 1/8 full (allocation failure: keep it)."""
    if r.cap > RING_KEEP and r.count < (r.cap >> 3):
        ring_resize(r, r.cap >> 1)


cdef inline Ring ring_detach(Ring *r) noexcept nogil:
    """Return the whole ring and leave *r* empty, so its references can be dropped after unlocking."""
    cdef Ring out = r[0]
    r.slots = NULL
    r.cap = 0
    r.head = 0
    r.count = 0
    return out


cdef void ring_release(Ring r) noexcept:
    """Drop every reference of a detached ring and free it. Call WITHOUT the lock: this runs __del__."""
    cdef Py_ssize_t i = r.head
    cdef Py_ssize_t _
    for _ in range(r.count):
        decref(r.slots[i])
        i += 1
        if i == r.cap:
            i = 0
    PyMem_RawFree(r.slots)


# ---------------------------------------------------------------------------
# Waiters: a parked thread, in a FIFO list per condition. Lists are touched only
# under the queue's lock; a woken waiter's parker is released after unlocking.
# ---------------------------------------------------------------------------

ctypedef struct Waiter:
    Waiter *prev
    Waiter *next
    PyThread_type_lock parker  # thread waiters: held ("acquired") while parked; the waker releases it
    PyObject *task             # async waiters: the _AsyncWaiter that embeds this node; NULL for a thread
    bint woken                 # set by the waker when it unlinks this waiter

ctypedef struct WaitList:
    Waiter *head
    Waiter *tail


cdef inline void wl_append(WaitList *wl, Waiter *w) noexcept nogil:
    """Link *w* at the tail of *wl*."""
    w.next = NULL
    w.prev = wl.tail
    if wl.tail != NULL:
        wl.tail.next = w
    else:
        wl.head = w
    wl.tail = w


cdef inline void wl_remove(WaitList *wl, Waiter *w) noexcept nogil:
    """Unlink *w*, which must be in *wl*."""
    if w.prev != NULL:
        w.prev.next = w.next
    else:
        wl.head = w.next
    if w.next != NULL:
        w.next.prev = w.prev
    else:
        wl.tail = w.prev
    w.prev = NULL
    w.next = NULL


cdef Waiter *wl_claim(WaitList *wl, Py_ssize_t n) noexcept nogil:
    """Unlink up to *n* oldest waiters, mark them woken and return them as a chain (linked by next)."""
    cdef Waiter *chain = wl.head
    cdef Waiter *last = NULL
    cdef Waiter *w = wl.head
    while w != NULL and n > 0:
        w.woken = True
        last = w
        w = w.next
        n -= 1
    if last == NULL:
        return NULL
    last.next = NULL
    wl.head = w
    if w != NULL:
        w.prev = NULL
    else:
        wl.tail = NULL
    return chain


cdef inline void wake_chain(Waiter *w) noexcept nogil:
    """Wake every waiter of a claimed chain (NULL: nobody); call after unlocking (rules 3, 5 and 6).

    Inline, so a fast path whose chain is NULL (nobody waits) pays one test, no call.
    """
    if w != NULL:
        _wake_chain(w)


cdef void _wake_chain(Waiter *w) noexcept nogil:
    """wake_chain's work for a non-empty chain.

    A thread waiter: release its parker. An async waiter: resolve its future (see
    _AsyncWaiter.wake), then drop the reference the list held, which the claim
    passed to this chain. The thread path is the same plain C as before async
    waiters existed; only an async waiter takes the GIL (already held by every
    caller, so that is cheap) to run Python code.
    """
    cdef Waiter *nxt
    cdef PyThread_type_lock parker
    while w != NULL:
        nxt = w.next      # read before the wake-up: the waiter may return right after
        if w.task == NULL:
            parker = w.parker
            PyThread_release_lock(parker)
        else:
            nxt = _wake_task(w.task, nxt)
        w = nxt


cdef Waiter *_wake_task(PyObject *task, Waiter *nxt) noexcept with gil:
    """Wake one async waiter of a chain and drop the chain's reference to it; returns the rest of the chain.

    If its loop is closed, the wake-up goes to the next waiter of its list, claimed
    here and put at the front of the rest, so a dead loop never strands an item, a
    slot or a join.
    """
    cdef Waiter *w
    if not (<_AsyncWaiter>task).wake():
        w = _claim_next(<_AsyncWaiter>task)
        if w != NULL:
            w.next = nxt
            nxt = w
    decref(task)
    return nxt


# ---------------------------------------------------------------------------
# Async waiters: one wait of one asyncio task, as a Waiter node in the same FIFO
# lists as the threads. The record is a Python object (the node lives inside it);
# while linked, the list owns one reference to it, which a claim passes to the
# waker's chain and wake_chain drops after the wake-up.
# ---------------------------------------------------------------------------

def _resolve(fut):
    """Wake a parked task: runs on its loop (via call_soon_threadsafe or a timer)."""
    if not fut.done():
        fut.set_result(None)


@cython.final
@cython.no_gc_clear  # a linked record must keep its fields until the queue lets go of it
@cython.auto_pickle(False)
cdef class _AsyncWaiter:
    """One wait of one task on one queue condition (a fresh record, and future, per wait).

    Fresh per wait so that every field but the node is written before the record
    is linked and never again: a waker reads them after unlocking, while the task
    may already be preparing its next wait with a new record.
    """
    cdef:
        # Written before linking, then read-only.
        object queue                 # the Queue whose list this node joins
        object loop                  # the task's running loop
        object fut                   # resolved by the wake-up (or the timeout timer)
        unsigned long thread_ident   # the loop's thread: a waker there needs no self-pipe write
        WaitList *wl                 # the queue's list this node joins (getters, putters, joiners)
        # ---- guarded by the queue's lock ----
        Waiter node                  # node.task points back at this record
        unsigned long fork_gen       # the queue's _fork_gen when linked

    cdef bint wake(self) noexcept:
        """Resolve the future from any thread; after unlocking. False if the loop is gone (closed).

        On the loop's own thread the future is resolved directly (its callbacks are
        scheduled with call_soon: no self-pipe write). From another thread,
        call_soon_threadsafe does it on the loop. A future already done belongs to a
        task that was cancelled or timed out: it sees node.woken and passes the
        wake-up on itself.
        """
        cdef PyObject *et
        cdef PyObject *ev
        cdef PyObject *tb
        cdef bint ok = True
        # A waker may call this with an exception set (Ctrl-C while passing a wake-up on).
        PyErr_Fetch(&et, &ev, &tb)
        try:
            if PyThread_get_thread_ident() == self.thread_ident:
                if not self.fut.done():
                    self.fut.set_result(None)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except Exception:  # RuntimeError: the loop is closed
            ok = False
        PyErr_Restore(et, ev, tb)
        return ok


# ---------------------------------------------------------------------------
# Process-wide state: fork detection and the main thread (for Ctrl-C).
# ---------------------------------------------------------------------------

# Bumped in a fork child; a queue whose generation differs forgets its waiters,
# which belonged to threads that do not exist in the child.
cdef unsigned long _fork_generation = 0
# Signals are handled in the main thread only; it waits in slices so Ctrl-C is
# seen even where a lock wait is not interrupted by signals (macOS, Windows).
cdef unsigned long _main_thread_ident = threading.main_thread().ident
cdef enum:
    MAIN_THREAD_SLICE_US = 50000


ringq_clock_init()


def _after_fork_in_child():
    global _fork_generation, _main_thread_ident
    _fork_generation += 1
    _main_thread_ident = PyThread_get_thread_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

LOCK_KIND = RINGQ_LOCK_KIND.decode()

cdef enum:
    NO_DEADLINE = -1
    PARKERS_KEPT = 32  # parkers a queue keeps for reuse; more are freed

cdef double _FOREVER_S = 1e9  # longer timeouts (about 31 years) mean "forever"


cdef int64_t _deadline(object timeout) except? -2:
    """Monotonic deadline in ns for *timeout* seconds, or NO_DEADLINE; raises on bad input."""
    cdef double seconds
    if timeout is None:
        return NO_DEADLINE
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = timeout
    except TypeError:
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}") from None
    if seconds != seconds:
        raise ValueError("'timeout' must be a non-negative number, not NaN")
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if seconds > _FOREVER_S:
        return NO_DEADLINE
    return ringq_monotonic_ns() + <int64_t>(seconds * 1e9 + 0.999)


cdef object _as_maxsize(object maxsize):
    """*maxsize* as an int (through __index__); TypeError for anything else."""
    try:
        return operator.index(maxsize)
    except TypeError:
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__!r}") from None


cdef Py_ssize_t _as_bound(object maxsize) noexcept:
    """The bound for an int *maxsize*, clamped to Py_ssize_t; 0 means unbounded."""
    if maxsize > PY_SSIZE_T_MAX:
        return PY_SSIZE_T_MAX  # more than memory can hold: the same as no bound in practice
    if maxsize < 0:
        return 0
    return maxsize


# Not final: PriorityQueue (below) extends it. Every cdef method is final instead,
# so that calls between them stay direct C calls, not vtable look-ups.
@cython.no_gc_clear  # our own tp_clear is installed below (_queue_clear)
@cython.auto_pickle(False)
cdef class Queue:
    """Queue(maxsize=0)

    A bounded FIFO queue for threads: a drop-in for ``queue.Queue``.

    ``maxsize <= 0`` makes it unbounded. Besides the ``queue.Queue`` API it has
    ``put_many``/``get_many``, iteration until shutdown, and a context manager::

        q = Queue(maxsize=100)
        q.put_many(range(10))
        q.get_many(4)          # [0, 1, 2, 3]
        q.shutdown()
        list(q)                # [4, 5, 6, 7, 8, 9]
    """

    cdef:
        # Set in __cinit__, then read-only.
        ringq_mutex _mutex
        object __weakref__

        # ---- guarded by self._mutex: see "Lock rules" at the top of this file ----
        # Storage: a plain Queue has one ring, _ring. A PriorityQueue has one ring per
        # level: _ring is level 0 (the most urgent), _lower[k] is level k + 1, and
        # _lower_count counts the items in _lower, so that the size is always
        # _ring.count + _lower_count (plain queue: _lower is NULL, the count 0, and
        # every storage step below is the single-ring one).
        Ring _ring
        Ring *_lower                 # levels 1.. of a PriorityQueue (PyMem_Raw*); NULL otherwise
        # Rings in _lower. Written once, from 0, under the lock, by PriorityQueue.__init__
        # (after _lower). PriorityQueue's argument checks also read it without the lock:
        # a stale 0 could only make such a check reject a level, never accept a bad one.
        Py_ssize_t _nlower
        Py_ssize_t _lower_count      # items in the _lower rings
        Py_ssize_t _bound            # maxsize as a C integer; 0 means unbounded
        object _maxsize              # maxsize as an int of any size (what .maxsize returns)
        Py_ssize_t _unfinished       # items put and not yet task_done()
        bint _shutdown
        WaitList _getters            # threads waiting for an item
        WaitList _putters            # threads waiting for room
        WaitList _joiners            # threads waiting for _unfinished == 0
        PyThread_type_lock *_parkers  # spare parkers, reused across waits
        Py_ssize_t _nparkers
        unsigned long _fork_gen      # _fork_generation when the waiter lists were last valid

    def __cinit__(self, *args, **kwargs):
        # Only what every instance needs, whatever the (sub)class's constructor
        # arguments: Cython passes them to every __cinit__ of the hierarchy.
        # __init__ parses them.
        self._maxsize = 0
        self._fork_gen = _fork_generation
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()

    def __init__(self, maxsize=0):
        maxsize = _as_maxsize(maxsize)
        cdef Py_ssize_t bound = _as_bound(maxsize)
        self._lock()
        old = self._maxsize  # dropped after unlocking (rule 2)
        self._maxsize = maxsize
        self._bound = bound
        self._unlock()
        del old

    def __dealloc__(self):
        # No other reference exists, so nothing can race us; drain as rule 3 says anyway.
        cdef Ring ring = ring_detach(&self._ring)
        cdef Py_ssize_t i
        ring_release(ring)
        if self._lower != NULL:
            for i in range(self._nlower):
                ring_release(ring_detach(&self._lower[i]))
            PyMem_RawFree(self._lower)
        for i in range(self._nparkers):
            PyThread_free_lock(self._parkers[i])
        PyMem_RawFree(self._parkers)
        ringq_mutex_free(&self._mutex)

    # -- the lock ------------------------------------------------------------

    @cython.final
    cdef inline void _lock(self) noexcept:
        ringq_mutex_lock(&self._mutex)

    @cython.final
    cdef inline void _unlock(self) noexcept:
        ringq_mutex_unlock(&self._mutex)

    @cython.final
    cdef inline bint _has_waiters(self, WaitList *wl) noexcept:
        """Lock held. True if *wl* has a waiter; in a fork child, first forgets the parent's waiters."""
        if wl.head == NULL:
            return False
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()
            return False
        return True

    @cython.final
    cdef void _forget_waiters_after_fork(self) noexcept:
        # Lock held. The waiters' threads do not exist in this process.
        self._getters.head = self._getters.tail = NULL
        self._putters.head = self._putters.tail = NULL
        self._joiners.head = self._joiners.tail = NULL
        self._fork_gen = _fork_generation

    @cython.final
    cdef inline Waiter *_claim(self, WaitList *wl, Py_ssize_t n) noexcept:
        """Lock held. Claim up to *n* waiters of *wl*; wake the chain after unlocking."""
        if n <= 0 or not self._has_waiters(wl):
            return NULL
        return wl_claim(wl, n)

    @cython.final
    cdef inline Py_ssize_t _room(self) noexcept:
        """Lock held. Free places under the bound (PY_SSIZE_T_MAX when unbounded).

        Never negative: maxsize may have been lowered below the current size.
        """
        cdef Py_ssize_t size = self._size()
        if self._bound <= 0:
            return PY_SSIZE_T_MAX
        if size >= self._bound:
            return 0
        return self._bound - size

    # -- storage: the only steps that know about priority levels ----------------

    @cython.final
    cdef inline Py_ssize_t _size(self) noexcept:
        """Lock held. Items in the queue, every level."""
        return self._ring.count + self._lower_count

    @cython.final
    cdef inline Ring *_level_ring(self, Py_ssize_t level) noexcept:
        """Lock held. The ring of *level* (0 <= level <= _nlower; a constant 0 folds away)."""
        if level == 0:
            return &self._ring
        return &self._lower[level - 1]

    @cython.final
    cdef inline void _added(self, Py_ssize_t level, Py_ssize_t n) noexcept:
        """Lock held. Account for *n* items just stored at *level*."""
        self._unfinished += n
        if level != 0:
            self._lower_count += n

    @cython.final
    cdef PyObject *_pop_first(self) noexcept:
        """Lock held, size > 0. Remove the oldest item of the most urgent non-empty level."""
        cdef Ring *r = &self._ring
        cdef Py_ssize_t k = 0
        cdef PyObject *item
        if r.count == 0:
            while self._lower[k].count == 0:
                k += 1
            r = &self._lower[k]
            self._lower_count -= 1
        item = ring_pop(r)
        ring_maybe_shrink(r)
        return item

    @cython.final
    cdef void _take_first(self, PyObject **dst, Py_ssize_t n) noexcept:
        """Lock held, n <= size. Move the *n* first items in priority order (FIFO within a level) to dst."""
        cdef Ring *r = &self._ring
        cdef Py_ssize_t k = -1
        cdef Py_ssize_t take
        while True:
            take = r.count if r.count < n else n
            if take > 0:
                ring_take(r, dst, take)
                ring_maybe_shrink(r)
                dst += take
                n -= take
                if k >= 0:
                    self._lower_count -= take
            k += 1
            if n == 0 or k >= self._nlower:
                return
            r = &self._lower[k]

    @cython.final
    cdef Py_ssize_t _least_urgent_level(self) noexcept:
        """Lock held, size > 0. The least urgent level that holds an item."""
        cdef Py_ssize_t k = self._nlower
        while k > 0 and self._lower[k - 1].count == 0:
            k -= 1
        return k

    # -- parking ---------------------------------------------------------------

    @cython.final
    cdef PyThread_type_lock _take_parker(self) except NULL:
        """A parker in the acquired state, reused from the queue's spares if possible."""
        cdef PyThread_type_lock parker = NULL
        self._lock()
        if self._nparkers > 0:
            self._nparkers -= 1
            parker = self._parkers[self._nparkers]
        self._unlock()
        if parker != NULL:
            return parker
        parker = PyThread_allocate_lock()
        if parker == NULL:
            raise MemoryError()
        PyThread_acquire_lock(parker, NOWAIT_LOCK)
        return parker

    @cython.final
    cdef void _give_parker(self, PyThread_type_lock parker) noexcept:
        """Return an acquired parker to the spares (or free it when there are enough)."""
        self._lock()
        if self._parkers == NULL:
            self._parkers = <PyThread_type_lock *>PyMem_RawMalloc(PARKERS_KEPT * sizeof(PyThread_type_lock))
        if self._parkers != NULL and self._nparkers < PARKERS_KEPT:
            self._parkers[self._nparkers] = parker
            self._nparkers += 1
            parker = NULL
        self._unlock()
        if parker != NULL:
            PyThread_free_lock(parker)

    @cython.final
    cdef int _park(self, WaitList *wl, PyThread_type_lock parker, int64_t deadline) except -1:
        """Wait on *wl* until woken, the deadline or a signal. Enter with the lock held; returns without it.

        Returns 0 for the caller to re-check the queue (woken, timed out or a
        signal whose handler did not raise) and -1 with an exception set when a
        signal handler raised (Ctrl-C).
        """
        cdef Waiter w
        cdef Waiter *baton = NULL
        cdef PyLockStatus r
        cdef PY_TIMEOUT_T us = -1
        cdef int64_t left
        cdef bint woken, check_signals, is_main
        w.woken = False
        w.task = NULL
        w.parker = parker
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()  # before we join a list, not after (it clears them)
        wl_append(wl, &w)
        self._unlock()

        is_main = PyThread_get_thread_ident() == _main_thread_ident
        if deadline != NO_DEADLINE:
            left = deadline - ringq_monotonic_ns()
            us = (left + 999) // 1000 if left > 0 else 0
            if us > PY_TIMEOUT_MAX:
                us = PY_TIMEOUT_MAX
        if is_main and (us < 0 or us > MAIN_THREAD_SLICE_US):
            us = MAIN_THREAD_SLICE_US
        with nogil:
            r = PyThread_acquire_lock_timed(parker, us, 1)

        self._lock()
        woken = w.woken
        if not woken:
            wl_remove(wl, &w)
        self._unlock()
        if woken and r != PY_LOCK_ACQUIRED:
            # Our waker is between its unlock and the release of our parker (rule 5).
            with nogil:
                PyThread_acquire_lock(parker, WAIT_LOCK)
        check_signals = r == PY_LOCK_INTR or (is_main and r == PY_LOCK_FAILURE)
        if check_signals and PyErr_CheckSignals() < 0:
            if woken:
                # We leave without re-checking: pass the wake-up on, in case it meant an item or room.
                self._lock()
                baton = self._claim(wl, 1)
                self._unlock()
                wake_chain(baton)
            return -1
        return 0

    @cython.final
    cdef int _wait(self, WaitList *wl, PyThread_type_lock *parker, int64_t deadline) except -1:
        """Lock held on entry, released on return: park on *wl* (see _park).

        A caller's first wait only takes a parker into *parker* and returns, so the
        caller re-checks the queue before it sleeps; it gives the parker back with
        _give_parker when its loop ends.
        """
        if parker[0] == NULL:
            self._unlock()
            parker[0] = self._take_parker()
            return 0
        return self._park(wl, parker[0], deadline)

    @cython.final
    cdef inline void _maybe_shrink(self) noexcept:
        """Lock held. Halve a large level-0 ring that is under 1/8 full (see ring_maybe_shrink)."""
        ring_maybe_shrink(&self._ring)

    # -- put -------------------------------------------------------------------

    def put(self, item, bint block=True, timeout=None):
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), and
        ShutDown if the queue is shut down::

            q.put(job)                 # wait as long as it takes
            q.put(job, timeout=0.5)    # Full after half a second
        """
        cdef int64_t deadline = NO_DEADLINE
        if block and timeout is not None:
            deadline = _deadline(timeout)
        self._put(item, block, deadline, 0)

    def put_nowait(self, item):
        """Put *item* without waiting; Full if there is no room.
        """
        self._put(item, False, NO_DEADLINE, 0)

    @cython.final
    cdef inline int _put(self, object item, bint block, int64_t deadline, Py_ssize_t level) except -1:
        """Put *item* at *level* (0 for a plain queue: the ring lookup then folds away)."""
        cdef Waiter *chain
        cdef PyObject *one
        cdef Ring *r
        self._lock()
        r = self._level_ring(level)
        if not self._shutdown and r.count < r.cap and (
                self._bound <= 0 or self._size() < self._bound):
            Py_INCREF(item)
            ring_push(r, <PyObject *>item)
            self._added(level, 1)
            chain = self._claim(&self._getters, 1)
            self._unlock()
            wake_chain(chain)
            return 0
        self._unlock()
        one = <PyObject *>item
        return self._put_items(&one, 1, block, deadline, level)

    @cython.final
    cdef inline bint _try_put(self, object item) noexcept:
        """aput's fast path (the same as _put's): put *item* if it fits in its ring as it is; False otherwise."""
        cdef Waiter *chain
        cdef Ring *r
        cdef Py_ssize_t level
        self._lock()
        level = self._async_level()
        r = self._level_ring(level)
        if not self._shutdown and r.count < r.cap and (
                self._bound <= 0 or self._size() < self._bound):
            Py_INCREF(item)
            ring_push(r, <PyObject *>item)
            self._added(level, 1)
            chain = self._claim(&self._getters, 1)
            self._unlock()
            wake_chain(chain)
            return True
        self._unlock()
        return False

    def put_many(self, items, bint block=True, timeout=None):
        """Put every item of *items*, in order; runs of items are copied in one locked section.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full) or a shutdown
        (ShutDown) the items already put stay in the queue::

            q.put_many(range(100))
        """
        cdef int64_t deadline = NO_DEADLINE
        if block and timeout is not None:
            deadline = _deadline(timeout)
        self._put_batch(items, block, deadline, 0)

    def put_evict(self, item):
        """Put *item* without waiting; if the queue is full, first evict its oldest item.

        Returns the evicted items as a tuple: ``()`` when there was room, else
        ``(oldest,)`` (more only if maxsize was lowered below the size). An evicted
        item counts as done for join(). This is a ring buffer's "overwrite" put,
        for a consumer that only wants the most recent items::

            latest = Queue(maxsize=100)
            dropped = latest.put_evict(reading)   # never blocks
        """
        return self._put_evict(item, 0)

    @cython.final
    cdef tuple _put_evict(self, object item, Py_ssize_t level):
        """Put *item* at *level*, evicting the least urgent, oldest items while there is no room.

        When *item* is less urgent than every queued item (a PriorityQueue), it is
        the one refused and returned. Each loop evicts at most one item and puts
        *item* if that made room, in one locked section; the evicted references
        are handed to the caller, so they are dropped outside the lock.
        """
        cdef PyObject *victim
        cdef Waiter *chain
        cdef Ring *r
        cdef Ring *vr
        cdef Py_ssize_t vlevel
        cdef bint done
        cdef list evicted = None  # made outside the lock, on the first eviction
        while True:
            victim = NULL
            chain = NULL
            done = False
            self._lock()
            if self._shutdown:
                self._unlock()
                raise ShutDown
            r = self._level_ring(level)
            # Room in the ring first, so that nothing has changed if memory runs out.
            if ring_reserve(r, 1, self._bound) < 0:
                self._unlock()
                raise MemoryError()
            if self._bound > 0 and self._size() >= self._bound:
                vlevel = self._least_urgent_level()
                if level > vlevel:
                    # Less urgent than everything queued: item itself is refused.
                    self._unlock()
                    if evicted is None:
                        return (item,)
                    evicted.append(item)
                    return tuple(evicted)
                vr = self._level_ring(vlevel)
                victim = ring_pop(vr)
                if vlevel:
                    self._lower_count -= 1
                if self._unfinished > 0:
                    self._unfinished -= 1  # an evicted item will never be task_done()
            if (self._bound <= 0 or self._size() < self._bound) and r.count < r.cap:
                Py_INCREF(item)
                ring_push(r, <PyObject *>item)
                self._added(level, 1)
                chain = self._claim(&self._getters, 1)
                done = True
            elif self._unfinished == 0:
                chain = self._claim(&self._joiners, PY_SSIZE_T_MAX)
            self._unlock()
            wake_chain(chain)
            if victim != NULL:
                stolen = ringq_steal(victim)  # owned by this frame from here on
                if evicted is None:
                    evicted = []
                evicted.append(stolen)
            if done:
                return () if evicted is None else tuple(evicted)

    @cython.final
    cdef int _put_batch(self, object items, bint block, int64_t deadline, Py_ssize_t level) except -1:
        """put_many's work, at *level*."""
        cdef tuple batch
        if RINGQ_GIL_BUILD and type(items) is list and self._put_list_at_once(<list>items, level):
            return 0
        # A private tuple: a caller's list could change while we wait for room.
        batch = items if type(items) is tuple else tuple(items)
        return self._put_items(ringq_tuple_items(batch), len(batch), block, deadline, level)

    @cython.final
    cdef bint _put_list_at_once(self, list items, Py_ssize_t level) noexcept:
        """GIL builds only: copy all of *items* straight from the list if they fit now.

        With the GIL held and no Python code run, nothing can change the list during
        the locked section, so no private copy is needed. Returns False (nothing
        put) when the items do not all fit at once; put_many then takes the general path.
        """
        cdef Py_ssize_t n = len(items)
        cdef Waiter *chain
        cdef Ring *r
        self._lock()
        r = self._level_ring(level)
        if self._shutdown or n == 0 or self._room() < n or ring_reserve(r, n, self._bound) < 0:
            self._unlock()
            return False
        ring_extend(r, ringq_list_items(items), n)
        self._added(level, n)
        chain = self._claim(&self._getters, n)
        self._unlock()
        wake_chain(chain)
        return True

    @cython.final
    cdef int _put_items(self, PyObject **items, Py_ssize_t n, bint block, int64_t deadline,
                        Py_ssize_t level) except -1:
        """Put items[0..n) (kept alive by the caller) at *level*, waiting for room as needed.

        With block=False, all or nothing. Raises ShutDown, Full or MemoryError.
        """
        cdef Py_ssize_t done = 0
        cdef Py_ssize_t take
        cdef Waiter *chain
        cdef PyThread_type_lock parker = NULL
        cdef object failure
        cdef Ring *r
        try:
            while True:
                chain = NULL
                failure = None
                self._lock()
                r = self._level_ring(level)
                if self._shutdown:
                    failure = ShutDown
                else:
                    take = self._room()
                    if take > n - done:
                        take = n - done
                    if not block and take < n:
                        failure = Full
                    elif take > 0:
                        if ring_reserve(r, take, self._bound) < 0:
                            # Out of memory: with block=False put nothing; else use what fits.
                            take = 0 if not block else min(take, r.cap - r.count)
                            if take == 0:
                                failure = MemoryError
                        if take > 0:
                            ring_extend(r, items + done, take)
                            done += take
                            self._added(level, take)
                            chain = self._claim(&self._getters, take)
                    if failure is None and done < n and deadline != NO_DEADLINE and (
                            ringq_monotonic_ns() >= deadline):
                        failure = Full
                if failure is not None or done == n or chain != NULL:
                    self._unlock()
                    wake_chain(chain)
                    if failure is not None:
                        raise failure
                    if done == n:
                        return 0
                    continue  # woke getters; now re-check and wait for the rest
                self._wait(&self._putters, &parker, deadline)
        finally:
            if parker != NULL:
                self._give_parker(parker)

    # -- get -------------------------------------------------------------------

    def get(self, bint block=True, timeout=None):
        """Remove and return the oldest item, waiting up to *timeout* seconds for one.

        Raises Empty if none arrives (at once with ``block=False``), and ShutDown
        once the queue is shut down and empty::

            job = q.get()
            job = q.get(timeout=1.0)   # Empty after a second
        """
        cdef int64_t deadline = NO_DEADLINE
        if block and timeout is not None:
            deadline = _deadline(timeout)
        return self._get(block, deadline)

    def get_nowait(self):
        """Remove and return the oldest item without waiting; Empty if there is none.
        """
        return self._get(False, NO_DEADLINE)

    @cython.final
    cdef inline object _get(self, bint block, int64_t deadline):
        cdef PyObject *item
        cdef Waiter *chain
        self._lock()
        if self._ring.count > 0:
            item = ring_pop(&self._ring)
            self._maybe_shrink()
            chain = self._claim(&self._putters, 1)
            self._unlock()
            wake_chain(chain)
            return ringq_steal(item)
        self._unlock()
        return self._get_slow(0, block, deadline)

    def get_many(self, max_items, bint block=True, timeout=None):
        """Wait like get() for at least one item, then return up to *max_items* of them, oldest first.

        It never waits for more than the first item::

            while True:
                batch = q.get_many(64)   # 1 to 64 items
        """
        cdef int64_t deadline = NO_DEADLINE
        try:
            wanted = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if wanted < 1:
            raise ValueError("max_items must be >= 1")
        if block and timeout is not None:
            deadline = _deadline(timeout)
        return self._get_slow(wanted if wanted < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX, block, deadline)

    @cython.final
    cdef object _get_slow(self, Py_ssize_t max_items, bint block, int64_t deadline):
        """Wait for items; return one item (max_items == 0) or a list of 1..max_items."""
        cdef PyObject *item
        cdef Waiter *chain
        cdef PyThread_type_lock parker = NULL
        cdef Py_ssize_t n
        cdef list batch
        try:
            while True:
                self._lock()
                n = self._size()
                if n > 0 and max_items == 0:
                    item = self._pop_first()
                    chain = self._claim(&self._putters, 1)
                    self._unlock()
                    wake_chain(chain)
                    return ringq_steal(item)
                if n > 0:
                    chain = NULL
                    # The list is made outside the lock (allocation may run the GC);
                    # meanwhile others may take items, so re-read the count after.
                    self._unlock()
                    batch = PyList_New(min(n, max_items))
                    self._lock()
                    n = min(len(batch), self._size())
                    if n > 0:
                        self._take_first(ringq_list_items(batch), n)
                        chain = self._claim(&self._putters, n)
                    self._unlock()
                    if n == 0:
                        continue
                    wake_chain(chain)
                    if n < len(batch):
                        Py_SET_SIZE(batch, n)  # the tail slots are still NULL
                    return batch
                if self._shutdown:
                    self._unlock()
                    raise ShutDown
                if not block or (deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline):
                    self._unlock()
                    raise Empty
                self._wait(&self._getters, &parker, deadline)
        finally:
            if parker != NULL:
                self._give_parker(parker)

    # -- size ------------------------------------------------------------------

    def qsize(self):
        """Number of items in the queue (a snapshot: other threads may change it at once).
        """
        cdef Py_ssize_t n
        self._lock()
        n = self._size()
        self._unlock()
        return n

    def empty(self):
        """True if the queue holds no item (a snapshot).
        """
        return self.qsize() == 0

    def full(self):
        """True if the queue is bounded and holds maxsize items or more (a snapshot).
        """
        cdef bint full
        self._lock()
        full = 0 < self._bound <= self._size()
        self._unlock()
        return full

    @property
    def maxsize(self):
        """The bound; ``<= 0`` means unbounded. Assignable, as in ``queue.Queue``: raising it wakes blocked putters."""
        self._lock()
        value = self._maxsize  # takes a reference under the lock: it cannot run code
        self._unlock()
        return value

    @maxsize.setter
    def maxsize(self, value):
        value = _as_maxsize(value)
        cdef Py_ssize_t bound = _as_bound(value)
        cdef Waiter *chain
        self._lock()
        # `old` keeps the previous value alive, so the assignment's decref cannot free it
        # (and run code) under the lock; it is released when this function returns.
        old = self._maxsize
        self._maxsize = value
        self._bound = bound
        chain = self._claim(&self._putters, PY_SSIZE_T_MAX)  # they re-check the new room
        self._unlock()
        wake_chain(chain)
        del old

    # -- tasks -----------------------------------------------------------------

    @property
    def unfinished_tasks(self):
        """Items put and not yet marked done by task_done()."""
        cdef Py_ssize_t n
        self._lock()
        n = self._unfinished
        self._unlock()
        return n

    def task_done(self):
        """Mark one item taken with get() as processed; join() returns once none is left::

            item = q.get()
            try:
                handle(item)
            finally:
                q.task_done()
        """
        cdef Waiter *chain = NULL
        self._lock()
        if self._unfinished <= 0:
            self._unlock()
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            chain = self._claim(&self._joiners, PY_SSIZE_T_MAX)
        self._unlock()
        wake_chain(chain)

    def join(self):
        """Block until every item put has been marked done with task_done(). Ctrl-C interrupts it.
        """
        cdef PyThread_type_lock parker = NULL
        try:
            while True:
                self._lock()
                if self._unfinished == 0:
                    self._unlock()
                    return
                self._wait(&self._joiners, &parker, NO_DEADLINE)
        finally:
            if parker != NULL:
                self._give_parker(parker)

    # -- shutdown --------------------------------------------------------------

    @property
    def is_shutdown(self):
        """True once shutdown() was called."""
        cdef bint down
        self._lock()
        down = self._shutdown
        self._unlock()
        return down

    def shutdown(self, bint immediate=False):
        """Stop the queue: put() raises ShutDown; get() returns what is left, then raises ShutDown.

        With ``immediate=True`` the remaining items are dropped at once and counted
        as done, which releases join(). Every blocked caller is woken. Calling it
        again is allowed::

            q.shutdown()
            for item in q:       # drains the rest, then stops
                handle(item)
        """
        cdef Ring dropped
        cdef Ring *lower_dropped = NULL
        cdef Py_ssize_t nlower = 0
        cdef Py_ssize_t count, i
        cdef Waiter *getters
        cdef Waiter *putters
        cdef Waiter *joiners = NULL
        dropped.slots = NULL
        dropped.cap = dropped.head = dropped.count = 0
        self._lock()
        if immediate and self._lower_count > 0:
            # A PriorityQueue's other levels go too; PyMem_Raw* is allowed here (rule 2).
            nlower = self._nlower
            lower_dropped = <Ring *>PyMem_RawMalloc(<size_t>nlower * sizeof(Ring))
            if lower_dropped == NULL:
                self._unlock()
                raise MemoryError()  # nothing changed
        self._shutdown = True
        if immediate:
            dropped = ring_detach(&self._ring)
            count = dropped.count
            if lower_dropped != NULL:
                for i in range(nlower):
                    lower_dropped[i] = ring_detach(&self._lower[i])
                count += self._lower_count
                self._lower_count = 0
            self._unfinished = self._unfinished - count if self._unfinished > count else 0
            joiners = self._claim(&self._joiners, PY_SSIZE_T_MAX)
        getters = self._claim(&self._getters, PY_SSIZE_T_MAX)
        putters = self._claim(&self._putters, PY_SSIZE_T_MAX)
        self._unlock()
        wake_chain(getters)
        wake_chain(putters)
        wake_chain(joiners)
        ring_release(dropped)  # __del__ of dropped items runs here, outside the lock
        if lower_dropped != NULL:
            for i in range(nlower):
                ring_release(lower_dropped[i])
            PyMem_RawFree(lower_dropped)

    # -- asyncio ---------------------------------------------------------------
    #
    # An async call runs its fast path like the sync call. When it must wait, it
    # links a fresh _AsyncWaiter into the same FIFO list a thread would join, in
    # the same locked section as its failed check (so no wake-up can fall between
    # them), and awaits the record's future: the event loop never blocks on a
    # thread primitive. Woken, it re-checks the queue itself, as a thread does.
    # Cancelled (or closed) while waiting, it leaves the list; if a waker had
    # already claimed it, it passes that wake-up to the next waiter instead, so
    # the queue is exactly as if the call had never waited.

    @cython.final
    cdef _AsyncWaiter _new_task_waiter(self, WaitList *wl):
        """A record for the running task's next wait on *wl*; RuntimeError outside a running loop."""
        cdef _AsyncWaiter rec = _AsyncWaiter.__new__(_AsyncWaiter)
        loop = _get_running_loop()
        rec.queue = self
        rec.loop = loop
        rec.fut = loop.create_future()
        rec.thread_ident = PyThread_get_thread_ident()
        rec.wl = wl
        rec.node.task = <PyObject *>rec
        rec.node.parker = NULL
        return rec

    @cython.final
    cdef inline void _link(self, _AsyncWaiter rec) noexcept:
        """Lock held. Append *rec* to its list, which takes a reference (allowed: rule 2)."""
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()
        rec.fork_gen = self._fork_gen
        rec.node.woken = False
        incref(<PyObject *>rec)
        wl_append(rec.wl, &rec.node)

    @cython.final
    cdef void _leave(self, _AsyncWaiter rec, bint pass_on) noexcept:
        """After a wait: unlink *rec* unless a waker claimed it; if one did and *pass_on*, wake the next waiter."""
        cdef bint unlinked = False
        cdef Waiter *baton = NULL
        self._lock()
        if rec.fork_gen == self._fork_gen:  # else a fork child forgot the lists
            if rec.node.woken:
                if pass_on:
                    baton = self._claim(rec.wl, 1)
            else:
                wl_remove(rec.wl, &rec.node)
                unlinked = True
        self._unlock()
        wake_chain(baton)
        if unlinked:
            decref(<PyObject *>rec)  # the list's reference; the caller still holds one

    async def _sleep(self, _AsyncWaiter rec, int64_t deadline):
        """Await *rec*'s wake-up (or the deadline); on any exception leave atomically and re-raise."""
        timer = None
        if deadline != NO_DEADLINE:
            timer = rec.loop.call_later((deadline - ringq_monotonic_ns()) / 1e9, _resolve, rec.fut)
        try:
            await rec.fut
        except BaseException:
            # Cancelled, timed out by asyncio.timeout()/wait_for, or the task is being
            # closed (GeneratorExit): no item or slot was taken, none is stranded.
            self._leave(rec, True)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        self._leave(rec, False)

    @cython.final
    cdef object _get_or_link(self, _AsyncWaiter rec, Py_ssize_t max_items, int64_t deadline):
        """Take one item (max_items == 0) or a list of 1..max_items; else raise, or link *rec* and return _WAIT."""
        cdef PyObject *item
        cdef Waiter *chain
        while True:
            self._lock()
            if self._size() > 0:
                if max_items == 0:
                    item = self._pop_first()
                    chain = self._claim(&self._putters, 1)
                    self._unlock()
                    wake_chain(chain)
                    return ringq_steal(item)
                self._unlock()
                try:
                    return self._get_slow(max_items, False, NO_DEADLINE)
                except Empty:
                    continue  # others took the items meanwhile: check again
            if self._shutdown:
                self._unlock()
                raise ShutDown
            if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                self._unlock()
                raise Empty
            if rec is not None:
                self._link(rec)
            self._unlock()
            return _WAIT

    @cython.final
    cdef Py_ssize_t _put_or_link(self, _AsyncWaiter rec, tuple batch, Py_ssize_t done,
                                 int64_t deadline) except -1:
        """Put what fits of batch[done:]; return the new *done*. Unless all are in, raise or link *rec*."""
        cdef Py_ssize_t n = len(batch)
        cdef Py_ssize_t take
        cdef Py_ssize_t level
        cdef Waiter *chain = NULL
        cdef object failure = None
        cdef Ring *r
        self._lock()
        level = self._async_level()
        r = self._level_ring(level)
        if self._shutdown:
            failure = ShutDown
        else:
            take = self._room()
            if take > n - done:
                take = n - done
            if take > 0 and ring_reserve(r, take, self._bound) < 0:
                take = min(take, r.cap - r.count)  # out of memory: use what fits
                if take == 0:
                    failure = MemoryError
            if take > 0:
                ring_extend(r, ringq_tuple_items(batch) + done, take)
                done += take
                self._added(level, take)
                chain = self._claim(&self._getters, take)
            if failure is None and done < n:
                if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                    failure = Full
                elif rec is not None:
                    self._link(rec)
        self._unlock()
        wake_chain(chain)
        if failure is not None:
            raise failure
        return done

    @cython.final
    cdef inline Py_ssize_t _async_level(self) noexcept:
        """Lock held. The level aput uses: 0 for a Queue; for a PriorityQueue its default, levels // 2."""
        return (self._nlower + 1) // 2

    @cython.final
    cdef bint _joined_or_link(self, _AsyncWaiter rec, int64_t deadline) except -1:
        """True if no task is unfinished; else raise TimeoutError past *deadline*, or link *rec*."""
        self._lock()
        if self._unfinished == 0:
            self._unlock()
            return True
        if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
            self._unlock()
            raise TimeoutError("ajoin() timed out with unfinished tasks")
        if rec is not None:
            self._link(rec)
        self._unlock()
        return False

    async def aput(self, item, timeout=None):
        """Put *item* at the tail, awaiting room for up to *timeout* seconds (async put()).

        Raises Full on a timeout and ShutDown if the queue is shut down. Cancelled,
        it either put the item (and returned) or left the queue unchanged::

            await q.aput(job)
            await q.aput(job, timeout=0.5)   # Full after half a second
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef tuple batch
        if timeout is not None:
            deadline = _deadline(timeout)
        if self._try_put(item):
            return
        batch = (item,)
        if self._put_or_link(None, batch, 0, deadline):
            return
        while True:
            rec = self._new_task_waiter(&self._putters)
            if self._put_or_link(rec, batch, 0, deadline):
                return
            await self._sleep(rec, deadline)
            if self._put_or_link(None, batch, 0, deadline):
                return

    async def aput_many(self, items, timeout=None):
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        cancellation the items already put stay in the queue::

            await q.aput_many(range(100))
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef tuple batch
        cdef Py_ssize_t done, n
        if timeout is not None:
            deadline = _deadline(timeout)
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = self._put_or_link(None, batch, 0, deadline)
        while done < n:
            rec = self._new_task_waiter(&self._putters)
            done = self._put_or_link(rec, batch, done, deadline)
            if done < n:
                await self._sleep(rec, deadline)
                done = self._put_or_link(None, batch, done, deadline)

    async def aget(self, timeout=None):
        """Remove and return the oldest item, awaiting one for up to *timeout* seconds (async get()).

        Raises Empty on a timeout and ShutDown once the queue is shut down and
        empty. Cancelled, it either returned its item or left the queue unchanged::

            job = await q.aget()
            job = await q.aget(timeout=1.0)   # Empty after a second
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        if timeout is not None:
            deadline = _deadline(timeout)
        item = self._get_or_link(None, 0, deadline)
        while item is _WAIT:
            rec = self._new_task_waiter(&self._getters)
            item = self._get_or_link(rec, 0, deadline)
            if item is _WAIT:
                await self._sleep(rec, deadline)
                item = self._get_or_link(None, 0, deadline)
        return item

    async def aget_many(self, max_items, timeout=None):
        """Await like aget() for at least one item, then return up to *max_items* of them (async get_many())::

            batch = await q.aget_many(64)   # 1 to 64 items
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef Py_ssize_t wanted_c
        try:
            wanted = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if wanted < 1:
            raise ValueError("max_items must be >= 1")
        wanted_c = wanted if wanted < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX
        if timeout is not None:
            deadline = _deadline(timeout)
        batch = self._get_or_link(None, wanted_c, deadline)
        while batch is _WAIT:
            rec = self._new_task_waiter(&self._getters)
            batch = self._get_or_link(rec, wanted_c, deadline)
            if batch is _WAIT:
                await self._sleep(rec, deadline)
                batch = self._get_or_link(None, wanted_c, deadline)
        return batch

    async def ajoin(self, timeout=None):
        """Await until every item put has been marked done with task_done() (async join()).

        Raises TimeoutError if *timeout* seconds pass first. ``shutdown(immediate=True)``
        releases it, as it releases join()::

            await q.ajoin()
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        if timeout is not None:
            deadline = _deadline(timeout)
        while not self._joined_or_link(None, deadline):
            rec = self._new_task_waiter(&self._joiners)
            if self._joined_or_link(rec, deadline):
                return
            await self._sleep(rec, deadline)

    def __aiter__(self):
        return self

    async def __anext__(self):
        """Return await aget(); the iteration ends when the queue is shut down and empty::

            async for job in q:
                await handle(job)
        """
        try:
            return await self.aget()
        except ShutDown:
            raise StopAsyncIteration from None

    @property
    def async_q(self):
        """An ``asyncio.Queue``-compatible view of this queue (for janus-style code); see ringq.AsyncQueueView."""
        return AsyncQueueView(self)

    @property
    def sync_q(self):
        """The queue itself: it is already the ``queue.Queue``-compatible side (for janus-style code)."""
        return self

    # -- protocols -------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        """Return get(); the iteration ends when the queue is shut down and empty."""
        try:
            return self._get(True, NO_DEADLINE)
        except ShutDown:
            raise StopIteration

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown()

    @classmethod
    def __class_getitem__(cls, item):
        """Queue[int] is a generic alias, for type hints evaluated at run time."""
        return GenericAlias(cls, item)

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle 'ringq.Queue' object")

    def __copy__(self):
        raise TypeError("cannot copy 'ringq.Queue' object")

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy 'ringq.Queue' object")

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return f"<ringq.Queue maxsize={self.maxsize!r} qsize={n}{' shutdown' if down else ''}>"


cdef Py_ssize_t _as_levels(object levels) except -1:
    """*levels* as a C integer >= 1; TypeError or ValueError otherwise."""
    if isinstance(levels, bool):
        raise TypeError("levels must be an integer, not 'bool'")
    try:
        n = operator.index(levels)
    except TypeError:
        raise TypeError(f"levels must be an integer, not {type(levels).__name__!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, not {n}")
    return n


@cython.auto_pickle(False)
cdef class PriorityQueue(Queue):
    """PriorityQueue(levels=3, maxsize=0)

    A bounded queue with *levels* priority levels: ``0`` is the most urgent, and
    ``get()`` always takes the oldest item of the most urgent non-empty level.
    Within a level it is FIFO, and items are never compared (unlike
    ``queue.PriorityQueue``, any object can be queued, in any order).

    ``put(item, priority)`` takes the level; without one an item goes to the
    middle level, ``levels // 2`` (with 3 levels: 0 high, 1 normal, 2 low).
    *maxsize* bounds all the levels together. The rest is ``ringq.Queue``'s API::

        q = PriorityQueue(levels=3)
        q.put("report")                # priority 1 (the default)
        q.put("cleanup", priority=2)
        q.put("alert", priority=0)
        q.get_many(3)                  # ['alert', 'report', 'cleanup']
    """

    def __init__(self, levels=3, maxsize=0):
        cdef Py_ssize_t n = _as_levels(levels)
        cdef Ring *lower = NULL
        cdef bint changed = False
        Queue.__init__(self, maxsize)
        if n > 1:
            lower = <Ring *>PyMem_RawCalloc(<size_t>(n - 1), sizeof(Ring))
            if lower == NULL:
                raise MemoryError()
        self._lock()
        if self._lower == NULL and self._nlower == 0:
            self._lower = lower
            self._nlower = n - 1
            lower = NULL
        else:
            changed = self._nlower != n - 1
        self._unlock()
        PyMem_RawFree(lower)
        if changed:
            raise RuntimeError("the levels of a PriorityQueue cannot be changed")

    @property
    def levels(self):
        """The number of priority levels; 0 is the most urgent, ``levels - 1`` the least."""
        return self._nlower + 1

    @cython.final
    cdef Py_ssize_t _level_of(self, object priority) except -1:
        """The level for *priority* (None: the middle level); TypeError or ValueError otherwise."""
        cdef Py_ssize_t levels = self._nlower + 1
        if priority is None:
            return levels // 2
        if type(priority) is int and 0 <= priority < levels:
            return priority
        if isinstance(priority, bool):
            raise TypeError("priority must be an integer, not 'bool'")
        try:
            p = operator.index(priority)
        except TypeError:
            raise TypeError(f"priority must be an integer, not {type(priority).__name__!r}") from None
        if not 0 <= p < levels:
            raise ValueError(f"priority must be in range({levels}), not {p}")
        return p

    def put(self, item, priority=None, bint block=True, timeout=None):
        """Put *item* at the tail of level *priority*, waiting up to *timeout* seconds for room.

        *priority* is an int from 0 (most urgent) to ``levels - 1``; None (the
        default) means ``levels // 2``. Raises Full and ShutDown like Queue.put::

            q.put(job, 0)                  # most urgent
            q.put(job, priority=2, timeout=1.0)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        if block and timeout is not None:
            deadline = _deadline(timeout)
        self._put(item, block, deadline, level)

    def put_nowait(self, item, priority=None):
        """Put *item* at level *priority* without waiting; Full if there is no room.
        """
        self._put(item, False, NO_DEADLINE, self._level_of(priority))

    def put_many(self, items, priority=None, bint block=True, timeout=None):
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many::

            q.put_many(batch, priority=2)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        if block and timeout is not None:
            deadline = _deadline(timeout)
        self._put_batch(items, block, deadline, level)

    def put_evict(self, item, priority=None):
        """Put *item* at level *priority* without waiting, evicting when the queue is full.

        The evicted item is the oldest of the least urgent non-empty level; when
        *item* is less urgent than every queued item, *item* itself is refused.
        Returns the evicted (or refused) items as a tuple, ``()`` if there was room.
        So a full queue keeps the most urgent items::

            q = PriorityQueue(levels=3, maxsize=2)
            q.put_many(["a", "b"], priority=1)
            q.put_evict("c", priority=0)   # ('a',)
            q.put_evict("d", priority=2)   # ('d',)
        """
        return self._put_evict(item, self._level_of(priority))

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle 'ringq.PriorityQueue' object")

    def __copy__(self):
        raise TypeError("cannot copy 'ringq.PriorityQueue' object")

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy 'ringq.PriorityQueue' object")

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return (f"<ringq.PriorityQueue levels={self._nlower + 1} maxsize={self.maxsize!r} "
                f"qsize={n}{' shutdown' if down else ''}>")


# ---------------------------------------------------------------------------
# Garbage collection. The ring's references are invisible to Cython, so the
# type's traverse and clear slots are extended here: a queue that holds itself
# (directly or through its items) is then collected like any other cycle.
# ---------------------------------------------------------------------------

cdef traverseproc _cython_traverse = (<PyTypeObject *>Queue).tp_traverse


cdef int _queue_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    # The GC runs with the world stopped (or under the GIL), never inside a
    # locked section (rule 2), so the ring is consistent here without the lock.
    cdef Queue q = <Queue>o
    cdef Py_ssize_t level
    cdef int err
    if _cython_traverse != NULL:
        err = _cython_traverse(o, visit, arg)
        if err:
            return err
    for level in range(q._nlower + 1):
        err = _ring_traverse(q._level_ring(level), visit, arg)
        if err:
            return err
    # The async records the lists own (a record holds its queue: a cycle). In a fork
    # child the lists may still name the parent's waiters: they are not walked.
    if q._fork_gen != _fork_generation:
        return 0
    err = _visit_tasks(&q._getters, visit, arg)
    if err == 0:
        err = _visit_tasks(&q._putters, visit, arg)
    if err == 0:
        err = _visit_tasks(&q._joiners, visit, arg)
    return err


cdef int _ring_traverse(Ring *r, visitproc visit, void *arg) noexcept:
    cdef Py_ssize_t i = r.head
    cdef Py_ssize_t _
    cdef int err
    for _ in range(r.count):
        err = visit(r.slots[i], arg)
        if err:
            return err
        i += 1
        if i == r.cap:
            i = 0
    return 0


cdef int _visit_tasks(WaitList *wl, visitproc visit, void *arg) noexcept:
    cdef Waiter *w = wl.head
    cdef int err
    while w != NULL:
        if w.task != NULL:
            err = visit(w.task, arg)
            if err:
                return err
        w = w.next
    return 0


cdef int _queue_clear(PyObject *o) noexcept:
    # One level at a time: nothing else can reach a queue the GC is clearing.
    cdef Queue q = <Queue>o
    cdef Ring ring
    cdef Waiter *tasks = NULL
    cdef Py_ssize_t level
    for level in range(q._nlower + 1):
        q._lock()
        ring = ring_detach(q._level_ring(level))
        if level:
            q._lower_count -= ring.count
        q._unlock()
        ring_release(ring)  # outside the lock (rule 3)
    q._lock()
    # Async records of tasks that are garbage too (a closed loop's): the lists let go of them.
    if q._fork_gen == _fork_generation:
        tasks = _unlink_tasks(&q._getters, tasks)
        tasks = _unlink_tasks(&q._putters, tasks)
        tasks = _unlink_tasks(&q._joiners, tasks)
    q._unlock()
    _drop_tasks(tasks)
    return 0


cdef Waiter *_unlink_tasks(WaitList *wl, Waiter *out) noexcept nogil:
    """Lock held. Unlink every async node of *wl* and push it on *out* (linked by next); thread nodes stay."""
    cdef Waiter *w = wl.head
    cdef Waiter *nxt
    while w != NULL:
        nxt = w.next
        if w.task != NULL:
            wl_remove(wl, w)
            w.next = out
            out = w
        w = nxt
    return out


cdef void _drop_tasks(Waiter *w) noexcept:
    """Drop the lists' references to unlinked async records; after unlocking (it may run code)."""
    cdef Waiter *nxt
    while w != NULL:
        nxt = w.next
        decref(w.task)
        w = nxt


cdef Waiter *_claim_next(_AsyncWaiter rec) noexcept:
    """Claim the waiter after *rec* in its list, to take over a wake-up *rec* cannot use."""
    cdef Queue q = <Queue>rec.queue
    cdef Waiter *w
    q._lock()
    w = q._claim(rec.wl, 1)
    q._unlock()
    return w


# PriorityQueue adds no object field, so Queue's slots serve it as they are. Its
# type was readied before these lines ran, with a copy of Queue's old slots: set both.
(<PyTypeObject *>Queue).tp_traverse = <traverseproc>_queue_traverse
(<PyTypeObject *>Queue).tp_clear = <inquiry>_queue_clear
(<PyTypeObject *>PriorityQueue).tp_traverse = <traverseproc>_queue_traverse
(<PyTypeObject *>PriorityQueue).tp_clear = <inquiry>_queue_clear

# Queue is not @cython.final, so that PriorityQueue can extend it in C; Python code
# still cannot subclass either (as with the twin) until subclassing is supported.
(<PyTypeObject *>Queue).tp_flags &= ~Py_TPFLAGS_BASETYPE
(<PyTypeObject *>PriorityQueue).tp_flags &= ~Py_TPFLAGS_BASETYPE
