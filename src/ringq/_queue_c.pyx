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
on the parker with the GIL released. A waker unlinks the oldest waiter, claims it
(see below) and, after leaving the locked section, releases its parker; it wakes one
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

Links and claims (select, cancel tokens)
----------------------------------------
A ``Waiter`` is one *link* of a waiting call, and a call may have several, each in
a different list under a different lock: ``select()`` links one per open queue into
their getters lists, and a call given ``cancel=token`` links one more into the
token's own list. All links of a call share its parker and one ``int`` claim flag;
each link has a ``tag`` (its number, > 0). A waker takes a link out of its list and
claims the call by changing the flag from 0 to the link's tag (``ringq_claim``: an
atomic compare-and-swap on free-threaded builds, where the links sit under
different locks; a plain store under the GIL). Only the winner releases the parker,
so a call is woken once. A link whose call is already claimed (another queue of
the select woke it, or the token fired) is dropped *without counting*: the waker
goes on to the next waiter, so the wake-up meant for an item or a slot is never
spent on a call that will not use it. The woken call then takes its other links
out (each under its own list's lock); once none is reachable the flag is final,
and the call reads which link won. If it leaves without using the wake-up
(Ctrl-C, Cancelled, or a select that took from another queue while the one that
woke it still has items), it passes it on to the next waiter of that list. A plain
call has one link (and a second one only with a token), so the scheme costs a
plain wait one compare on the flag. Lock order: a queue's lock may be held while
taking a token's (never the reverse), and no two queues' locks are ever held at once.

Async records: a plain async wait has one record with one link, so a waker's
claim on it always wins. ``aselect()`` links one record per queue, all sharing the
task's future and the claim flag of the first record (which the others keep alive
through ``owner``). A waker that loses the claim on such a link cannot drop the
list's reference under the lock (rule 2), so wl_claim puts the skipped async link
on the chain uncounted, and wake_chain, after unlocking, sees that the claim went
to another link (``*claim != tag``) and only drops the reference.

Statistics and watermarks ride on the same locked sections: counters are guarded
fields, and the fast paths compare the new size with one precomputed threshold
each (``_alert_up`` for puts, ``_alert_down`` for gets), so they gain one
predictable branch; the rare work (a new high-water mark, a crossed watermark)
runs out of line. A watermark callback runs after unlocking, in the thread whose
call crossed the mark, serialised by a per-queue RLock that delivers the current
state (see _deliver_watermark).

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
5. A thread whose call was claimed keeps its Waiter links alive until its parker
   has been released (it blocks on the parker if needed), so a waker may release
   the parker after unlocking without the links disappearing under it. The same
   holds for select's links and for the token links (CancelToken has its own
   ringq_mutex, with the same rules, guarding its list and its cancelled flag).
6. An async record is kept alive by the reference its list owns, which a claim hands
   to the waker's chain; so it cannot disappear between the claim and the wake-up
   either. Its future is resolved, and the reference dropped, after unlocking.
7. Callbacks (on_watermark) and the producer handle's shutdown run after unlocking;
   a locked section only decides *whether* to run them.

Why this holds without a GIL (free-threaded CPython)
-----------------------------------------------------
Correctness rests on rule 1 alone, never on the GIL: on free-threaded builds the
state lock is a real PyMutex, and no field is read or written outside it. The only
reads without it are the GC's traverse (the GC stops the world, and a stopped
thread is never inside a locked section, because sections contain no stop point)
and the two module globals _fork_generation and _main_thread_ident, written only at
import and in a fork child, where a single thread runs. A link's ``unlinked`` flag
is written by its waker and read by the waiter, both under that list's lock. The
claim flag is the one datum shared across locks: it is changed only by the atomic
compare-and-swap, and read by the waiter only after it has taken every link out
under each list's lock, which orders it after every waker's claim; the parker's
release and acquire order the waiter's later reads. select()'s random scan order
comes from an atomically advanced counter (ringq_next_seed), not a shared PRNG state.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals, PyErr_Fetch, PyErr_Restore
from cpython.list cimport PyList_New
from cpython.object cimport PyObject, PyTypeObject, traverseproc, inquiry, visitproc
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

import asyncio
import math
import operator
import os
import threading
import weakref
from types import GenericAlias

from . import _tokenasync
from ._asyncview import AsyncQueueView
from ._ctor import priority_queue_args as _priority_queue_args, queue_args as _queue_args
from ._errors import Cancelled, Empty, Full, ShutDown, report_callback_error
from ._loopguard import refuse as _refuse_blocking
from ._stats import QueueStatistics as _QueueStatistics

cdef object _get_running_loop = asyncio.get_running_loop
# The thread's running loop or None, without raising: _asyncio's C function (see _refuse_in_loop).
cdef object _running_loop_or_none = asyncio._get_running_loop
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
    # Declared without Cython's "except -1": _park runs the handlers while its record
    # is still linked, and must unlink it before an exception propagates.
    int run_signal_handlers "PyErr_CheckSignals"() noexcept

cdef extern from "_sync.h":
    ctypedef struct ringq_mutex:
        pass
    const char *RINGQ_LOCK_KIND
    const bint RINGQ_GIL_BUILD
    int ringq_claim(int *, int) nogil
    int ringq_claim_read(int *) nogil
    uint64_t ringq_next_seed(uint64_t *) nogil
    uint64_t ringq_mix64(uint64_t) nogil
    int ringq_mutex_init(ringq_mutex *) nogil
    void ringq_mutex_free(ringq_mutex *) nogil
    void ringq_mutex_lock(ringq_mutex *)
    void ringq_mutex_unlock(ringq_mutex *) nogil
    void ringq_clock_init()
    int64_t ringq_monotonic_ns() nogil
    object ringq_steal(PyObject *)
    PyObject **ringq_list_items(object)
    PyObject **ringq_tuple_items(object)


# The concerns, one file each, in dependency order (an include is pasted in place).
include "_queue_c/ring.pxi"  # the ring buffer: Ring, ring_*
include "_queue_c/waiters.pxi"  # waiter lists, parking and wake chains: Waiter, WaitList, wl_*, wake_chain
include "_queue_c/async_waiters.pxi"  # _AsyncWaiter: an asyncio task's wait, linked in the same lists
include "_queue_c/timeouts.pxi"  # deadlines, Ctrl-C slices, fork handling
include "_queue_c/stats.pxi"  # statistics, watermarks, producer handles
include "_queue_c/tokens.pxi"  # CancelToken and the cancel= helpers


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
--

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
        # Statistics, updated inside the locked sections that already exist. The
        # two alert thresholds keep the fast path at one predictable branch each:
        # a put looks at the size only when it reaches _alert_up (a new high-water
        # mark, or the high watermark), a get only when it falls to _alert_down.
        int64_t _puts                # items put, ever
        int64_t _gets                # items taken by get/get_many/select, ever
        Py_ssize_t _high_water       # the largest size ever reached
        Py_ssize_t _alert_up         # min(_high_water + 1, high watermark while below it)
        Py_ssize_t _alert_down       # low watermark while above the high one, else -1
        Py_ssize_t _wm_high          # watermark thresholds as sizes; 0: no watermark
        Py_ssize_t _wm_low
        bint _wm_above               # the size crossed _wm_high and has not yet fallen to _wm_low
        object _wm_callback          # fn(event) or None; called outside the lock (see _deliver_watermark)
        # Producers (see producer()); the cause is an exception object or None.
        Py_ssize_t _producers        # registered and not yet closed
        bint _producers_left         # the last registered producer's close shut the queue down
        object _shutdown_cause       # what a producer that left on an exception passed on
        # Not guarded by _mutex: a threading.RLock, held only while delivering a
        # watermark event outside the state lock, and what it last delivered.
        object _wm_delivery
        bint _wm_delivered_above

    def __cinit__(self, *args, **kwargs):
        # Only what every instance needs, whatever the (sub)class's constructor
        # arguments: Cython passes them to every __cinit__ of the hierarchy.
        # __init__ parses them.
        self._maxsize = 0
        self._fork_gen = _fork_generation
        self._alert_up = 1
        self._alert_down = -1
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()

    def __init__(self, *args, **kwargs):
        # Bound by a Python function named Queue, so a bad call's TypeError names Queue(),
        # as the twin's does. The setter's checks and locking; it also wakes putters if
        # __init__ is called again.
        if kwargs or len(args) > 1:
            self.maxsize = _queue_args(*args, **kwargs)
        else:  # the common calls, Queue() and Queue(n), without the Python-level binding
            self.maxsize = args[0] if args else 0

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
    cdef int _park(self, WaitList *wl, PyThread_type_lock parker, int64_t deadline,
                   CancelToken token) except -1:
        """Wait on *wl* until woken, the deadline, a signal or *token*. Enter with the lock held; returns without it.

        Returns 0 for the caller to re-check the queue (woken, timed out or a
        signal whose handler did not raise) and -1 with an exception set when a
        signal handler raised (Ctrl-C) or *token* fired (Cancelled). The call's
        links (one here, one in the token's list) share *parker* and ``claim``:
        whichever waker claims first wins, and the loser's link is skipped.
        """
        cdef Waiter w
        cdef Waiter tw
        cdef Waiter *baton = NULL
        cdef int claim = 0
        cdef int won
        cdef bint acquired = False, check_signals = False, linked_token = False, cancelled = False
        cdef bint raised = False
        w.parker = parker
        w.task = NULL
        w.claim = &claim
        w.tag = 1
        w.unlinked = False
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()  # before we join a list, not after (it clears them)
        wl_append(wl, &w)
        self._unlock()

        if token is not None:
            # Linked after the queue link: a token that fires in between is seen by _link.
            linked_token = token._link(&tw, parker, &claim, 2)
            cancelled = not linked_token
            deadline = _earlier(deadline, token._deadline)
        if not cancelled:
            # Stay linked across the main thread's slices and across signal handlers,
            # so the waiter keeps its FIFO place (a waker may claim it meanwhile).
            while True:
                acquired = _block(parker, deadline, &check_signals)
                if acquired or not check_signals:
                    break  # woken, or the deadline passed
                check_signals = False
                if run_signal_handlers() < 0:
                    raised = True
                    break
                if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                    break
                if ringq_claim_read(&claim) != 0:
                    break  # claimed while we ran the handlers: handled below

        self._lock()
        if not w.unlinked:
            wl_remove(wl, &w)
        self._unlock()
        if linked_token:
            token._unlink(&tw)
        # No link is reachable any more: the claim is final.
        won = ringq_claim_read(&claim)
        if won != 0 and not acquired:
            # Our waker is between its unlock and the release of our parker (rule 5).
            with nogil:
                PyThread_acquire_lock(parker, WAIT_LOCK)
        if won == 2:
            cancelled = True
        if cancelled or raised:
            if won == 1:
                # We leave without re-checking: pass the wake-up on, in case it meant an item or room.
                self._lock()
                baton = self._claim(wl, 1)
                self._unlock()
                wake_chain(baton)
            if cancelled and not raised:
                token._raise()
            return -1
        return 0

    @cython.final
    cdef int _wait(self, WaitList *wl, PyThread_type_lock *parker, int64_t deadline,
                   CancelToken token, str call) except -1:
        """Lock held on entry, released on return: park on *wl* (see _park).

        A caller's first wait only takes a parker into *parker* and returns, so the
        caller re-checks the queue before it sleeps; it gives the parker back with
        _give_parker when its loop ends. That first wait is where blocking *call*
        ("get", "put", ...) refuses to wait on a thread that runs an event loop.
        """
        if parker[0] == NULL:
            self._unlock()
            _refuse_in_loop(call)
            parker[0] = self._take_parker()
            return 0
        return self._park(wl, parker[0], deadline, token)

    @cython.final
    cdef inline void _maybe_shrink(self) noexcept:
        """Lock held. Halve a large level-0 ring that is under 1/8 full (see ring_maybe_shrink)."""
        ring_maybe_shrink(&self._ring)

    # -- put -------------------------------------------------------------------

    def put(self, item, bint block=True, timeout=None, *, cancel=None):
        """Put *item* at the tail, waiting up to *timeout* seconds for room.

        Raises Full if there is no room (at once with ``block=False``), ShutDown if
        the queue is shut down, and Cancelled if the ``cancel`` token fires first::

            q.put(job)                 # wait as long as it takes
            q.put(job, timeout=0.5)    # Full after half a second
            q.put(job, cancel=token)   # Cancelled when token.cancel() is called
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token(cancel)
        self._put(item, block, deadline, 0, token)

    def put_nowait(self, item):
        """Put *item* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue:
            self.put(item, block=False)
            return
        self._put(item, False, NO_DEADLINE, 0, None)

    @cython.final
    cdef inline int _put(self, object item, bint block, int64_t deadline, Py_ssize_t level,
                         CancelToken token) except -1:
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
            self._puts += 1
            if self._size() >= self._alert_up:
                return self._put_done_at_alert()  # out of line: keeps this path small enough to inline
            chain = self._claim(&self._getters, 1)
            self._unlock()
            wake_chain(chain)
            return 0
        self._unlock()
        one = <PyObject *>item
        return self._put_items(&one, 1, block, deadline, level, token, "put")

    @cython.final
    cdef int _put_done_at_alert(self) except -1:
        """Lock held, one item just put and the size at _alert_up: finish the put (unlock, wake, deliver)."""
        cdef bint event = self._grew()
        cdef Waiter *chain = self._claim(&self._getters, 1)
        self._unlock()
        wake_chain(chain)
        if event:
            self._deliver_watermark()
        return 0

    @cython.final
    cdef inline bint _try_put(self, object item, Py_ssize_t level) except -1:
        """aput's fast path (the same as _put's): put *item* at *level* if it fits in its ring as it is."""
        cdef Waiter *chain
        cdef Ring *r
        self._lock()
        r = self._level_ring(level)
        if not self._shutdown and r.count < r.cap and (
                self._bound <= 0 or self._size() < self._bound):
            Py_INCREF(item)
            ring_push(r, <PyObject *>item)
            self._added(level, 1)
            self._puts += 1
            if self._size() >= self._alert_up:
                self._put_done_at_alert()
                return True
            chain = self._claim(&self._getters, 1)
            self._unlock()
            wake_chain(chain)
            return True
        self._unlock()
        return False

    def put_many(self, items, bint block=True, timeout=None, *, cancel=None):
        """Put every item of *items*, in order; runs of items are copied in one locked section.

        *items* is read into a tuple first; if iterating it raises, nothing is put.
        With ``block=False`` it is all or nothing: Full unless every item fits.
        Otherwise items go in as room frees up; on a timeout (Full), a shutdown
        (ShutDown) or a fired ``cancel`` token (Cancelled) the items already put
        stay in the queue, in order, and the rest are not put. The exception's
        ``put_count`` attribute says how many went in::

            q.put_many(range(100))
            try:
                q.put_many(batch, timeout=1.0)
            except ringq.Full as e:
                rest = batch[e.put_count:]
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token_put_many(cancel)
        self._put_batch(items, block, deadline, 0, token)

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
        cdef bint event = False
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
                self._puts += 1
                if self._size() >= self._alert_up:
                    event = self._grew()
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
                if event:
                    self._deliver_watermark()
                return () if evicted is None else tuple(evicted)

    @cython.final
    cdef int _put_batch(self, object items, bint block, int64_t deadline, Py_ssize_t level,
                        CancelToken token) except -1:
        """put_many's work, at *level*."""
        cdef tuple batch
        if RINGQ_GIL_BUILD and type(items) is list and self._put_list_at_once(<list>items, level):
            return 0
        # A private tuple: a caller's list could change while we wait for room.
        batch = items if type(items) is tuple else tuple(items)
        return self._put_items(ringq_tuple_items(batch), len(batch), block, deadline, level, token, "put_many")

    @cython.final
    cdef bint _put_list_at_once(self, list items, Py_ssize_t level) except -1:
        """GIL builds only: copy all of *items* straight from the list if they fit now.

        With the GIL held and no Python code run, nothing can change the list during
        the locked section, so no private copy is needed. Returns False (nothing
        put) when the items do not all fit at once; put_many then takes the general path.
        """
        cdef Py_ssize_t n = len(items)
        cdef Waiter *chain
        cdef Ring *r
        cdef bint event = False
        self._lock()
        r = self._level_ring(level)
        if self._shutdown or n == 0 or self._room() < n or ring_reserve(r, n, self._bound) < 0:
            self._unlock()
            return False
        ring_extend(r, ringq_list_items(items), n)
        self._added(level, n)
        self._puts += n
        if self._size() >= self._alert_up:
            event = self._grew()
        chain = self._claim(&self._getters, n)
        self._unlock()
        wake_chain(chain)
        if event:
            self._deliver_watermark()
        return True

    @cython.final
    cdef int _put_items(self, PyObject **items, Py_ssize_t n, bint block, int64_t deadline,
                        Py_ssize_t level, CancelToken token, str call) except -1:
        """Put items[0..n) (kept alive by the caller) at *level*, waiting for room as needed.

        With block=False, all or nothing. Raises ShutDown, Full, Cancelled or MemoryError,
        and LoopBlockingError (before any item went in) if blocking *call* would wait
        on a thread that runs an event loop.
        """
        cdef Py_ssize_t done = 0
        cdef Py_ssize_t take
        cdef Waiter *chain
        cdef PyThread_type_lock parker = NULL
        cdef object failure
        cdef Ring *r
        cdef bint event
        try:
            while True:
                chain = NULL
                failure = None
                event = False
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
                    elif take < n - done and parker == NULL and (
                            deadline == NO_DEADLINE or ringq_monotonic_ns() < deadline):
                        # Not all fit, so this call will wait: its first wait (a parker, and
                        # the event-loop check) comes before any item goes in, so a refused
                        # call has put nothing. Then decide again.
                        self._wait(&self._putters, &parker, deadline, token, call)
                        continue
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
                            self._puts += take
                            if self._size() >= self._alert_up:
                                event = self._grew()
                            chain = self._claim(&self._getters, take)
                    if failure is None and done < n and deadline != NO_DEADLINE and (
                            ringq_monotonic_ns() >= deadline):
                        failure = Full
                if failure is not None or done == n or chain != NULL or event:
                    self._unlock()
                    wake_chain(chain)
                    if event:
                        self._deliver_watermark()
                    if failure is not None:
                        raise _with_put_count(failure(), done)
                    if done == n:
                        return 0
                    continue  # woke getters; now re-check and wait for the rest
                try:
                    self._wait(&self._putters, &parker, deadline, token, call)
                except Cancelled as e:
                    raise _with_put_count(e, done)
        finally:
            if parker != NULL:
                self._give_parker(parker)

    # -- get -------------------------------------------------------------------

    def get(self, bint block=True, timeout=None, *, cancel=None):
        """Remove and return the oldest item, waiting up to *timeout* seconds for one.

        Raises Empty if none arrives (at once with ``block=False``), ShutDown
        once the queue is shut down and empty (chained to the cause a producer
        passed on, see producer()), and Cancelled if the ``cancel`` token fires::

            job = q.get()
            job = q.get(timeout=1.0)   # Empty after a second
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token(cancel)
        return self._get(block, deadline, token)

    def get_nowait(self):
        """Remove and return the oldest item without waiting; Empty if there is none.

        In a subclass it calls ``self.get(block=False)``, as ``queue.Queue`` does.
        """
        if type(self) is not Queue and type(self) is not PriorityQueue:
            return self.get(block=False)
        return self._get(False, NO_DEADLINE, None)

    @cython.final
    cdef inline object _get(self, bint block, int64_t deadline, CancelToken token):
        cdef PyObject *item
        cdef Waiter *chain
        self._lock()
        if self._ring.count > 0:
            item = ring_pop(&self._ring)
            self._gets += 1
            self._maybe_shrink()
            if self._size() <= self._alert_down:
                return self._got_at_alert(item)  # out of line: keeps this path small enough to inline
            chain = self._claim(&self._putters, 1)
            self._unlock()
            wake_chain(chain)
            return ringq_steal(item)
        self._unlock()
        return self._get_slow(0, block, deadline, token)

    @cython.final
    cdef object _got_at_alert(self, PyObject *item):
        """Lock held, *item* just taken and the size at _alert_down: finish the get (unlock, wake, deliver)."""
        cdef bint event = self._shrank()
        cdef Waiter *chain = self._claim(&self._putters, 1)
        self._unlock()
        wake_chain(chain)
        obj = ringq_steal(item)
        if event:
            self._deliver_watermark()
        return obj

    def get_many(self, max_items, bint block=True, timeout=None, *, cancel=None):
        """Wait like get() for at least one item, then return up to *max_items* of them, oldest first.

        It never waits for more than the first item::

            while True:
                batch = q.get_many(64)   # 1 to 64 items
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if isinstance(max_items, bool):  # True is an int, but not a count
            raise TypeError("max_items must be an integer, not 'bool'")
        try:
            wanted = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if wanted < 1:
            raise ValueError("max_items must be >= 1")
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token(cancel)
        return self._get_slow(wanted if wanted < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX, block, deadline, token)

    @cython.final
    cdef object _get_slow(self, Py_ssize_t max_items, bint block, int64_t deadline, CancelToken token):
        """Wait for items; return one item (max_items == 0) or a list of 1..max_items."""
        cdef PyObject *item
        cdef Waiter *chain
        cdef PyThread_type_lock parker = NULL
        cdef Py_ssize_t n
        cdef list batch
        cdef bint event
        try:
            while True:
                event = False
                self._lock()
                n = self._size()
                if n > 0 and max_items == 0:
                    item = self._pop_first()
                    self._gets += 1
                    if self._size() <= self._alert_down:
                        event = self._shrank()
                    chain = self._claim(&self._putters, 1)
                    self._unlock()
                    wake_chain(chain)
                    obj = ringq_steal(item)
                    if event:
                        self._deliver_watermark()
                    return obj
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
                        self._gets += n
                        if self._size() <= self._alert_down:
                            event = self._shrank()
                        chain = self._claim(&self._putters, n)
                    self._unlock()
                    if n == 0:
                        continue
                    wake_chain(chain)
                    if n < len(batch):
                        Py_SET_SIZE(batch, n)  # the tail slots are still NULL
                    if event:
                        self._deliver_watermark()
                    return batch
                if self._shutdown:
                    cause = self._shutdown_cause  # a new reference: allowed under the lock
                    self._unlock()
                    _raise_shutdown(cause)
                if not block or (deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline):
                    self._unlock()
                    raise Empty
                self._wait(&self._getters, &parker, deadline, token, "get" if max_items == 0 else "get_many")
        finally:
            if parker != NULL:
                self._give_parker(parker)

    # -- statistics and watermarks ---------------------------------------------

    @cython.final
    cdef inline void _set_alerts(self) noexcept:
        """Lock held. Recompute _alert_up and _alert_down from the high-water mark and the watermark."""
        cdef Py_ssize_t up = self._high_water + 1 if self._high_water < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX
        if self._wm_high > 0 and not self._wm_above and self._wm_high < up:
            up = self._wm_high
        self._alert_up = up
        self._alert_down = self._wm_low if (self._wm_high > 0 and self._wm_above) else -1

    @cython.final
    cdef bint _grew(self) noexcept:
        """Lock held; the size reached _alert_up. True if the high watermark was just crossed."""
        cdef bint crossed = False
        if self._size() > self._high_water:
            self._high_water = self._size()
        if self._wm_high > 0 and not self._wm_above and self._size() >= self._wm_high:
            self._wm_above = True
            crossed = True
        self._set_alerts()
        return crossed

    @cython.final
    cdef bint _shrank(self) noexcept:
        """Lock held; the size fell to _alert_down. True if it just fell back to the low watermark."""
        if self._wm_high > 0 and self._wm_above and self._size() <= self._wm_low:
            self._wm_above = False
            self._set_alerts()
            return True
        return False

    @cython.final
    cdef int _deliver_watermark(self) except -1:
        """Call the watermark callback with the current state, if it differs from the last one delivered.

        Runs outside the state lock, in the thread whose put or get crossed a
        watermark. Deliveries are serialised by _wm_delivery and always report
        the state as it is now, so "high" and "low" strictly alternate and the
        last event delivered matches the queue; two crossings in quick succession
        by different threads may coalesce into none. A callback that raises is
        reported to sys.unraisablehook; the put or get that ran it has completed.
        """
        cdef bint above
        delivery = self._wm_delivery
        if delivery is None:
            return 0
        with delivery:
            self._lock()
            above = self._wm_above
            callback = self._wm_callback  # a new reference: allowed under the lock
            self._unlock()
            if callback is None or above == self._wm_delivered_above:
                return 0
            self._wm_delivered_above = above
            try:
                callback("high" if above else "low")
            except Exception:
                report_callback_error(callback, "ringq watermark callback")
        return 0

    def on_watermark(self, high=0.8, low=0.7, callback=None):
        """Call ``callback("high")`` when the size reaches *high*, then ``callback("low")`` when it falls to *low*.

        *high* and *low* are fractions of maxsize (floats, 0 < low < high <= 1) or,
        for any queue, sizes (ints, 0 <= low < high). Hysteresis: after "high",
        nothing more fires until the size falls to *low*, and vice versa.
        ``callback=None`` removes the watermark; a new call replaces it. The
        callback runs in the thread whose put or get crossed the mark, after the
        call's work is done and outside the queue's lock, so it may use the queue.
        If it raises, the exception goes to ``sys.unraisablehook``::

            q = ringq.Queue(maxsize=1000)
            q.on_watermark(high=0.8, low=0.7, callback=lambda e: print("slow down" if e == "high" else "resume"))
        """
        cdef Py_ssize_t hi = 0, lo = 0
        if callback is not None:
            if not callable(callback):
                raise TypeError("callback must be callable or None")
            from ._asyncfn import refuse_async  # here, not at import: it loads inspect
            refuse_async(callback, "Queue.on_watermark(callback=)",
                         "The callback runs inside the put or get that crossed the mark, which cannot "
                         "await it: pass a plain function (in a coroutine program it can set or clear "
                         "an asyncio.Event).")
            hi, lo = _watermark_sizes(high, low, self.maxsize)
            with _config_lock:
                if self._wm_delivery is None:
                    self._wm_delivery = threading.RLock()
        self._lock()
        old = self._wm_callback   # released after unlocking (rule 3)
        self._wm_callback = callback
        self._wm_high = hi
        self._wm_low = lo
        self._wm_above = False
        self._set_alerts()
        self._unlock()
        self._wm_delivered_above = False
        del old

    def statistics(self):
        """A snapshot of the queue's counters, as a QueueStatistics named tuple.

        For example::

            s = q.statistics()
            s.size, s.maxsize, s.high_water, s.puts, s.gets, s.waiting_putters, s.waiting_getters
        """
        cdef Py_ssize_t size, high_water, putters, getters
        cdef int64_t puts, gets
        self._lock()
        size = self._size()
        high_water = self._high_water
        puts = self._puts
        gets = self._gets
        if self._fork_gen != _fork_generation:
            self._forget_waiters_after_fork()
        putters = wl_length(&self._putters)
        getters = wl_length(&self._getters)
        maxsize = self._maxsize
        self._unlock()
        return QueueStatistics(size, maxsize, high_water, puts, gets, putters, getters)

    # -- producers -------------------------------------------------------------

    def producer(self):
        """Register a producer; the queue shuts down (gracefully) when the last registered one closes.

        Use it as a context manager, or call ``close()`` on the handle. A producer
        that leaves on an exception passes it on: once the queue is shut down and
        drained, get() raises ShutDown chained to it (``raise ShutDown from exc``)::

            def produce(part):
                with q.producer():
                    for item in part:
                        q.put(item)

            for part in parts:
                threading.Thread(target=produce, args=(part,)).start()  # register first (see below)

        Register every producer before any of them can finish (call producer()
        in the thread that starts them, and close it in the producer), or the
        queue may shut down while others are still starting. Raises ShutDown if
        the queue is already shut down.
        """
        cdef bint left
        self._lock()
        if self._shutdown:
            left = self._producers_left
            self._unlock()
            if left:
                raise ShutDown(_PRODUCERS_LEFT)
            raise ShutDown("cannot register a producer: the queue is shut down")
        self._producers += 1
        self._unlock()
        return Producer(self)

    @cython.final
    cdef int _producer_closed(self, exc) except -1:
        cdef bint last
        self._lock()
        if exc is not None and self._shutdown_cause is None:
            self._shutdown_cause = exc  # replaces None, whose decref cannot run code
        self._producers -= 1
        last = self._producers == 0
        if last and not self._shutdown:
            self._producers_left = True
        self._unlock()
        if last:
            self.shutdown()
        return 0

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

    @maxsize.deleter
    def maxsize(self):
        raise AttributeError("cannot delete the maxsize attribute")

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
        """Mark one item taken with get() as processed; join() returns once none is left.

        For example::

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

    def join(self, *, cancel=None):
        """Block until every item put has been marked done with task_done(). Ctrl-C interrupts it.

        With ``cancel=token`` it raises Cancelled when the token fires.
        """
        cdef PyThread_type_lock parker = NULL
        cdef CancelToken token = None
        if cancel is not None:
            token = _as_token(cancel)
        try:
            while True:
                self._lock()
                if self._unfinished == 0:
                    self._unlock()
                    return
                self._wait(&self._joiners, &parker, NO_DEADLINE, token, "join")
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
        cdef bint event = False
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
            if count > 0 and self._size() <= self._alert_down:
                event = self._shrank()  # emptied: "low", as clear() delivers it
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
        if event:
            self._deliver_watermark()

    def clear(self):
        """Drop every queued item at once (all levels of a PriorityQueue); return how many.

        The dropped items count as done for join(), and blocked putters are woken
        (there is room now). It replaces the stdlib idiom
        ``with q.mutex: q.queue.clear()``::

            dropped = q.clear()    # the queue is empty; join() no longer waits for them
        """
        cdef Ring dropped
        cdef Ring *lower_dropped = NULL
        cdef Py_ssize_t nlower = 0
        cdef Py_ssize_t count, i
        cdef Waiter *putters
        cdef Waiter *joiners = NULL
        cdef bint event = False
        self._lock()
        if self._lower_count > 0:
            # A PriorityQueue's other levels go too; PyMem_Raw* is allowed here (rule 2).
            nlower = self._nlower
            lower_dropped = <Ring *>PyMem_RawMalloc(<size_t>nlower * sizeof(Ring))
            if lower_dropped == NULL:
                self._unlock()
                raise MemoryError()  # nothing changed
        dropped = ring_detach(&self._ring)
        count = dropped.count
        if lower_dropped != NULL:
            for i in range(nlower):
                lower_dropped[i] = ring_detach(&self._lower[i])
            count += self._lower_count
            self._lower_count = 0
        if count > 0:
            self._unfinished = self._unfinished - count if self._unfinished > count else 0
            if self._unfinished == 0:
                joiners = self._claim(&self._joiners, PY_SSIZE_T_MAX)
            if self._size() <= self._alert_down:
                event = self._shrank()
        putters = self._claim(&self._putters, PY_SSIZE_T_MAX)  # they re-check the room
        self._unlock()
        wake_chain(putters)
        wake_chain(joiners)
        ring_release(dropped)  # __del__ of dropped items runs here, outside the lock
        if lower_dropped != NULL:
            for i in range(nlower):
                ring_release(lower_dropped[i])
            PyMem_RawFree(lower_dropped)
        if event:
            self._deliver_watermark()
        return count

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
        # One link only, so a waker's claim always wins: no claimed-elsewhere skip can
        # drop this node (and the list's reference) without waking it.
        rec.claim = 0
        rec.node.claim = &rec.claim
        rec.node.tag = 1
        rec.node.unlinked = False
        incref(<PyObject *>rec)
        wl_append(rec.wl, &rec.node)

    @cython.final
    cdef void _leave(self, _AsyncWaiter rec, bint pass_on) noexcept:
        """After a wait: unlink *rec* unless a waker claimed it; if one did and *pass_on*, wake the next waiter."""
        cdef bint unlinked = False
        cdef Waiter *baton = NULL
        self._lock()
        if rec.fork_gen == self._fork_gen:  # else a fork child forgot the lists
            if rec.node.unlinked:
                if pass_on:
                    baton = self._claim(rec.wl, 1)
            else:
                wl_remove(rec.wl, &rec.node)
                unlinked = True
        self._unlock()
        wake_chain(baton)
        if unlinked:
            decref(<PyObject *>rec)  # the list's reference; the caller still holds one

    async def _sleep(self, _AsyncWaiter rec, int64_t deadline, token=None):
        """Await *rec*'s wake-up (or the deadline, or *token*); on any exception leave atomically and re-raise.

        A cancel token wakes the task like a waker would (its callback resolves the
        future on the loop); the caller then re-checks the queue and, finding the
        token fired before its next wait, raises Cancelled (_check_token).
        """
        timer = None
        key = None
        if token is not None:
            deadline = _earlier(deadline, (<CancelToken>token)._deadline)
            key = (<CancelToken>token)._add_callback(rec.loop, rec.fut)
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
            if key is not None:
                (<CancelToken>token)._remove_callback(key)
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
                    self._gets += 1
                    if self._size() <= self._alert_down:
                        return self._got_at_alert(item)
                    chain = self._claim(&self._putters, 1)
                    self._unlock()
                    wake_chain(chain)
                    return ringq_steal(item)
                self._unlock()
                try:
                    return self._get_slow(max_items, False, NO_DEADLINE, None)
                except Empty:
                    continue  # others took the items meanwhile: check again
            if self._shutdown:
                cause = self._shutdown_cause  # a new reference: allowed under the lock
                self._unlock()
                _raise_shutdown(cause)
            if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                self._unlock()
                raise Empty
            if rec is not None:
                self._link(rec)
            self._unlock()
            return _WAIT

    @cython.final
    cdef Py_ssize_t _put_or_link(self, _AsyncWaiter rec, tuple batch, Py_ssize_t done,
                                 int64_t deadline, Py_ssize_t level) except -1:
        """Put what fits of batch[done:] at *level*; return the new *done*. Unless all are in, raise or link *rec*."""
        cdef Py_ssize_t n = len(batch)
        cdef Py_ssize_t take
        cdef Waiter *chain = NULL
        cdef object failure = None
        cdef Ring *r
        cdef bint event = False
        self._lock()
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
                self._puts += take
                if self._size() >= self._alert_up:
                    event = self._grew()
                chain = self._claim(&self._getters, take)
            if failure is None and done < n:
                if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                    failure = Full
                elif rec is not None:
                    self._link(rec)
        self._unlock()
        wake_chain(chain)
        if event:
            self._deliver_watermark()
        if failure is not None:
            raise _with_put_count(failure(), done)  # for aput_many; aput ignores it
        return done

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

    async def aput(self, item, timeout=None, *, cancel=None):
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
        token = _as_token(cancel) if cancel is not None else None
        if self._try_put(item, 0):
            return
        batch = (item,)
        if self._put_or_link(None, batch, 0, deadline, 0):
            return
        while True:
            _check_token(token)
            rec = self._new_task_waiter(&self._putters)
            if self._put_or_link(rec, batch, 0, deadline, 0):
                return
            await self._sleep(rec, deadline, token)
            if self._put_or_link(None, batch, 0, deadline, 0):
                return

    async def aput_many(self, items, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, awaiting room as needed (async put_many()).

        As with put_many(), on a timeout (Full), a shutdown (ShutDown) or a
        fired ``cancel`` token (Cancelled) the items already put stay in the queue,
        and the exception's ``put_count`` says how many went in::

            await q.aput_many(range(100))
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef tuple batch
        cdef Py_ssize_t done, n
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token_put_many(cancel) if cancel is not None else None
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = self._put_or_link(None, batch, 0, deadline, 0)
        while done < n:
            _check_token_put_many(token, done)
            rec = self._new_task_waiter(&self._putters)
            done = self._put_or_link(rec, batch, done, deadline, 0)
            if done < n:
                await self._sleep(rec, deadline, token)
                done = self._put_or_link(None, batch, done, deadline, 0)

    async def aget(self, timeout=None, *, cancel=None):
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
        token = _as_token(cancel) if cancel is not None else None
        item = self._get_or_link(None, 0, deadline)
        while item is _WAIT:
            _check_token(token)
            rec = self._new_task_waiter(&self._getters)
            item = self._get_or_link(rec, 0, deadline)
            if item is _WAIT:
                await self._sleep(rec, deadline, token)
                item = self._get_or_link(None, 0, deadline)
        return item

    async def aget_many(self, max_items, timeout=None, *, cancel=None):
        """Await like aget() for at least one item, then return up to *max_items* of them (async get_many()).

        For example::

            batch = await q.aget_many(64)   # 1 to 64 items
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef Py_ssize_t wanted_c
        if isinstance(max_items, bool):  # True is an int, but not a count
            raise TypeError("max_items must be an integer, not 'bool'")
        try:
            wanted = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
        if wanted < 1:
            raise ValueError("max_items must be >= 1")
        wanted_c = wanted if wanted < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        batch = self._get_or_link(None, wanted_c, deadline)
        while batch is _WAIT:
            _check_token(token)
            rec = self._new_task_waiter(&self._getters)
            batch = self._get_or_link(rec, wanted_c, deadline)
            if batch is _WAIT:
                await self._sleep(rec, deadline, token)
                batch = self._get_or_link(None, wanted_c, deadline)
        return batch

    async def ajoin(self, timeout=None, *, cancel=None):
        """Await until every item put has been marked done with task_done() (async join()).

        Raises TimeoutError if *timeout* seconds pass first. ``shutdown(immediate=True)``
        releases it, as it releases join()::

            await q.ajoin()
        """
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        while not self._joined_or_link(None, deadline):
            _check_token(token)
            rec = self._new_task_waiter(&self._joiners)
            if self._joined_or_link(rec, deadline):
                return
            await self._sleep(rec, deadline, token)

    def __aiter__(self):
        return self

    async def __anext__(self):
        """Return await aget(); the iteration ends when the queue is shut down and empty.

        For example::

            async for job in q:
                await handle(job)
        """
        try:
            return await self.aget()
        except ShutDown as e:
            if e.__cause__ is not None:
                raise  # a producer passed a cause on: the consumer learns why the stream ended
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
        """Return get(); the iteration ends when the queue is shut down and empty.

        If a producer passed on an exception (see producer()), the iteration ends
        with ShutDown chained to it instead, so the consumer learns why.
        """
        try:
            if type(self) is Queue or type(self) is PriorityQueue:
                return self._get(True, NO_DEADLINE, None)
            return self.get()  # a subclass's get(), as get_nowait() uses it
        except ShutDown as e:
            if e.__cause__ is not None:
                raise
            raise StopIteration from None  # as the twin: no ShutDown context in tracebacks

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown()

    @classmethod
    def __class_getitem__(cls, item):
        """Queue[int] is a generic alias, for type hints evaluated at run time."""
        return GenericAlias(cls, item)

    def __reduce_ex__(self, protocol):
        raise TypeError(f"cannot pickle {_type_name(self)!r} object")

    def __copy__(self):
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __deepcopy__(self, memo):
        raise TypeError(f"cannot copy {_type_name(self)!r} object")

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return f"<{_type_name(self)} maxsize={self.maxsize!r} qsize={n}{' shutdown' if down else ''}>"


include "_queue_c/priority.pxi"  # PriorityQueue
include "_queue_c/gc.pxi"  # GC support: installs Queue's tp_traverse/tp_clear (after both classes)
include "_queue_c/select.pxi"  # select() and aselect()
