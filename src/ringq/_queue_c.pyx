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
    cdef Py_ssize_t first
    if tail >= r.cap:
        tail -= r.cap
    first = r.cap - tail
    if first > n:
        first = n
    # Two block copies and a separate incref pass: the copies run at memcpy speed.
    memcpy(r.slots + tail, src, <size_t>first * sizeof(PyObject *))
    if n > first:
        memcpy(r.slots, src + first, <size_t>(n - first) * sizeof(PyObject *))
    for i in range(n):
        incref(src[i])
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
    # One *link* of a waiting call. A plain get/put/join has one link; with a
    # cancel token it has a second one in the token's list; select() has one per
    # queue. All links of a call share its parker and its claim flag.
    Waiter *prev
    Waiter *next
    PyThread_type_lock parker  # thread waiters: held ("acquired") while parked; the winning waker releases it
    PyObject *task             # async waiters: the _AsyncWaiter that embeds this node; NULL for a thread
    int *claim                 # the call's claim flag: 0 while unclaimed, then the tag of the link that won
    int tag                    # this link's number (> 0), written into *claim by a waker that wins
    bint unlinked              # set by a waker that took this link out of its list (won or skipped)

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
    """Claim up to *n* of the oldest waiting calls of *wl*; return their links as a chain (linked by next).

    Every link looked at is unlinked and marked ``unlinked``. A link whose call was
    already claimed through another list (a select woken by another queue, a
    cancelled token) is skipped without counting, so the next waiter gets the
    wake-up instead. A skipped *async* link (an aselect's) still joins the chain,
    uncounted: the list's reference to its record is dropped by wake_chain, after
    unlocking, which sees that the claim went to another link and wakes nothing.
    """
    cdef Waiter *chain = NULL
    cdef Waiter *last = NULL
    cdef Waiter *w
    while n > 0 and wl.head != NULL:
        w = wl.head
        wl.head = w.next
        if wl.head != NULL:
            wl.head.prev = NULL
        else:
            wl.tail = NULL
        w.next = NULL
        w.unlinked = True
        if ringq_claim(w.claim, w.tag):
            n -= 1
        elif w.task == NULL:
            continue  # a thread's link: the thread owns it, nothing to release
        if last == NULL:
            chain = w
        else:
            last.next = w
        last = w
    return chain


cdef inline Py_ssize_t wl_length(WaitList *wl) noexcept nogil:
    cdef Py_ssize_t n = 0
    cdef Waiter *w = wl.head
    while w != NULL:
        n += 1
        w = w.next
    return n


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
        elif ringq_claim_read(w.claim) != w.tag:
            _drop_task_ref(w.task)  # an aselect link claimed through another queue: only the list's reference
        else:
            nxt = _wake_task(w.task, nxt)
        w = nxt


cdef void _drop_task_ref(PyObject *task) noexcept with gil:
    """Drop the reference a list held to an async record that is not to be woken (a skipped aselect link)."""
    decref(task)


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
        _AsyncWaiter owner           # aselect: the record holding the shared claim flag (keeps it alive)
        # ---- guarded by the queue's lock ----
        Waiter node                  # node.task points back at this record
        int claim                    # the node's claim flag (an async wait has one link only)
        unsigned long fork_gen       # the queue's _fork_gen when linked

    cdef bint wake(self) noexcept:
        """Resolve the future from any thread; after unlocking. False if the loop is gone (closed).

        On the loop's own thread the future is resolved directly (its callbacks are
        scheduled with call_soon: no self-pipe write). From another thread,
        call_soon_threadsafe does it on the loop. A future already done belongs to a
        task that was cancelled or timed out: it sees node.unlinked and passes the
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
    cdef bint overflowed = False
    if timeout is None:
        return NO_DEADLINE
    if isinstance(timeout, (str, bytes, bytearray)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}")
    try:
        seconds = timeout
    except TypeError:
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__!r}") from None
    except OverflowError:
        overflowed = True
    if overflowed:
        # Past a double's range (10**400, a huge Fraction): forever if positive, as documented.
        if timeout > 0:
            return NO_DEADLINE
        raise ValueError("'timeout' must be a non-negative number")
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


QueueStatistics = _QueueStatistics
# producer() on a queue that its last registered producer shut down: name the rule (as the twin).
_PRODUCERS_LEFT = ("cannot register a producer: the queue was shut down when its last registered producer "
                "closed. Register every producer before starting any of them (call q.producer() in the "
                "thread that starts them, and close it in the producer): a producer that finishes first "
                "shuts the queue down while the others are still starting")
_config_lock = threading.Lock()  # serialises one-time set-up of a queue's watermark delivery lock


cdef int _raise_shutdown(object cause) except -1:
    """Raise ShutDown, chained to *cause* when a producer passed one on."""
    if cause is not None:
        raise ShutDown from cause
    raise ShutDown


cdef tuple _watermark_sizes(object high, object low, object maxsize):
    """(high, low) as sizes: floats are fractions of a bounded maxsize, ints are sizes."""
    cdef double h, frac_low
    if isinstance(high, bool) or isinstance(low, bool):
        raise TypeError("high and low must be numbers")
    if isinstance(high, int) and isinstance(low, int):
        if not 0 <= low < high:
            raise ValueError("watermark sizes need 0 <= low < high")
        return min(high, PY_SSIZE_T_MAX), low
    try:
        h = high
        frac_low = low
    except TypeError:
        raise TypeError("high and low must be numbers") from None
    if not (0.0 <= frac_low < h <= 1.0):
        raise ValueError("watermark fractions need 0 <= low < high <= 1")
    if maxsize <= 0:
        raise ValueError("fractional watermarks need a bounded queue (maxsize > 0); give sizes as ints")
    hi = math.ceil(h * maxsize)
    lo = math.floor(frac_low * maxsize)
    if lo >= hi:
        lo = hi - 1
    return max(hi, 1), lo


@cython.final
@cython.auto_pickle(False)
cdef class Producer:
    """A registered producer of a queue (see Queue.producer()); close it once, or use it as a context manager."""

    cdef:
        readonly Queue queue
        bint _closed  # read and written by the thread that owns the handle

    def __cinit__(self, Queue queue):
        self.queue = queue

    @property
    def closed(self):
        return self._closed

    def close(self, exc=None):
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

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(exc)

    def __repr__(self):
        return f"<ringq.Producer {'closed' if self._closed else 'open'} of {self.queue!r}>"


cdef int _propagate() except -1:
    """Make Cython propagate the exception already set (by a signal handler)."""
    return -1


cdef int _check_signals() except -1:
    """Run pending signal handlers; a handler's exception (KeyboardInterrupt) propagates."""
    if PyErr_CheckSignals() < 0:
        return -1
    return 0


cdef bint _block(PyThread_type_lock parker, int64_t deadline, bint *check_signals) noexcept:
    """Block on *parker* until a waker releases it, the deadline passes or a signal arrives.

    Returns True if the parker was acquired (released by a waker). The main thread
    waits in slices of MAIN_THREAD_SLICE_US, so Ctrl-C is seen on every platform;
    *check_signals* is set when the caller must run PyErr_CheckSignals().
    """
    cdef PyLockStatus r
    cdef PY_TIMEOUT_T us = -1
    cdef int64_t left
    cdef bint is_main = PyThread_get_thread_ident() == _main_thread_ident
    if deadline != NO_DEADLINE:
        left = deadline - ringq_monotonic_ns()
        us = (left + 999) // 1000 if left > 0 else 0
        if us > PY_TIMEOUT_MAX:
            us = PY_TIMEOUT_MAX
    if is_main and (us < 0 or us > MAIN_THREAD_SLICE_US):
        us = MAIN_THREAD_SLICE_US
    with nogil:
        r = PyThread_acquire_lock_timed(parker, us, 1)
    check_signals[0] = r == PY_LOCK_INTR or (is_main and r == PY_LOCK_FAILURE)
    return r == PY_LOCK_ACQUIRED


cdef inline int64_t _earlier(int64_t a, int64_t b) noexcept nogil:
    """The earlier of two deadlines (NO_DEADLINE is the latest)."""
    if a == NO_DEADLINE:
        return b
    if b == NO_DEADLINE or a < b:
        return a
    return b


cdef int _refuse_in_loop(str call) except -1:
    """Before a blocking *call*'s first wait: raise LoopBlockingError if this thread runs an event loop.

    Called without the lock, on the path that is about to wait only (never on a fast
    path), and before the call has changed the queue. Waiting here would freeze every
    task of the loop; ringq.allow_blocking() lets it wait anyway (see _loopguard.py).
    """
    if _running_loop_or_none() is not None:
        _refuse_blocking(call)
    return 0


@cython.final
@cython.auto_pickle(False)
@cython.trashcan(True)  # a long chain of tokens, each holding its parent, is freed without deep C recursion
cdef class CancelToken:
    """CancelToken(timeout=None)

    A cancellation signal for blocking calls: Go's ``context`` done the Python way.

    Pass it as ``cancel=token`` to any blocking call of ringq (put, get, put_many,
    get_many, join, select); ``token.cancel()`` from any thread makes every such
    call raise :class:`ringq.Cancelled` at once. With ``timeout`` the token also
    fires by itself once that many seconds have passed (a deadline). A child token
    fires when its parent does, or at its own earlier deadline::

        stop = ringq.CancelToken()
        def worker():
            try:
                while True:
                    handle(q.get(cancel=stop))
            except ringq.Cancelled:
                pass                      # told to stop; nothing was taken
        ...
        stop.cancel()

        step = stop.child(timeout=5.0)    # this step: at most 5 s, and stops with `stop`
    """

    # The tree of tokens. A child holds its parent (so root.child().child() stays linked
    # while the leaf lives: Go's contexts do the same); a parent holds its children only
    # weakly, in a plain set of weak references. No lock guards that set or the dict of
    # async waits: each change or snapshot of them is one C call (set.add, list(set),
    # dict.pop...) that runs no Python code, and the containers are created outside
    # self._mutex and installed under it (a pointer store). So a __del__ that the GC
    # runs during child() or an async wait's registration may itself call cancel() or
    # child(): no lock is held there. cancel() walks the tree with a list, not by
    # recursion, and child() prunes dead references once the set has doubled.
    cdef:
        # Set in __cinit__ (or by child() before the token is shared), then read-only.
        ringq_mutex _mutex
        int64_t _deadline          # monotonic ns, or NO_DEADLINE
        CancelToken _parent        # the token this one is a child of (kept alive by it), or None
        object __weakref__

        # ---- guarded by self._mutex (the lock rules of Queue apply) ----
        bint _cancelled            # cancel() was called (an expired deadline is checked on the clock)
        WaitList _waiters          # links of blocked calls that this token wakes
        # Installed once (None -> container) under _mutex; the containers themselves
        # are changed only outside it, by single C calls.
        object _children           # set of weakref.ref to child tokens, created by the first child()
        object _callbacks          # {key: (loop, future)} of async waits, created by the first one
        Py_ssize_t _prune_at       # child() prunes _children's dead references at this size

    def __cinit__(self, timeout=None):
        self._deadline = _deadline(timeout)
        self._prune_at = 16
        if ringq_mutex_init(&self._mutex) < 0:
            raise MemoryError()

    def __dealloc__(self):
        ringq_mutex_free(&self._mutex)

    cdef inline bint _expired(self) noexcept:
        return self._deadline != NO_DEADLINE and ringq_monotonic_ns() >= self._deadline

    cdef bint _fired(self) noexcept:
        cdef bint cancelled
        ringq_mutex_lock(&self._mutex)
        cancelled = self._cancelled
        ringq_mutex_unlock(&self._mutex)
        return cancelled or self._expired()

    cdef int _raise(self) except -1:
        if self._expired() and not self._fired_explicitly():
            raise Cancelled("the cancel token's deadline has passed")
        raise Cancelled("the cancel token was cancelled")

    cdef bint _fired_explicitly(self) noexcept:
        cdef bint cancelled
        ringq_mutex_lock(&self._mutex)
        cancelled = self._cancelled
        ringq_mutex_unlock(&self._mutex)
        return cancelled

    cdef bint _link(self, Waiter *w, PyThread_type_lock parker, int *claim, int tag) noexcept:
        """Link *w* (a call's extra link) into this token's list; False if the token has fired."""
        cdef bint ok
        w.parker = parker
        w.task = NULL
        w.claim = claim
        w.tag = tag
        w.unlinked = False
        ringq_mutex_lock(&self._mutex)
        ok = not self._cancelled and not self._expired()
        if ok:
            wl_append(&self._waiters, w)
        ringq_mutex_unlock(&self._mutex)
        return ok

    cdef void _unlink(self, Waiter *w) noexcept:
        ringq_mutex_lock(&self._mutex)
        if not w.unlinked:
            wl_remove(&self._waiters, w)
        ringq_mutex_unlock(&self._mutex)

    @property
    def cancelled(self):
        """True once cancel() was called, the deadline passed, or a parent fired."""
        return self._fired()

    @property
    def deadline(self):
        """The deadline on the ``time.monotonic()`` clock, or None."""
        if self._deadline == NO_DEADLINE:
            return None
        return self._deadline / 1e9

    cdef bint _fire(self) noexcept:
        """Mark the token cancelled and wake its blocked calls; False if it already was."""
        cdef Waiter *chain
        ringq_mutex_lock(&self._mutex)
        if self._cancelled:
            ringq_mutex_unlock(&self._mutex)
            return False
        self._cancelled = True
        chain = wl_claim(&self._waiters, PY_SSIZE_T_MAX)
        ringq_mutex_unlock(&self._mutex)
        wake_chain(chain)
        return True

    cdef object _installed(self, bint callbacks):
        """self._callbacks (or self._children) as it is now: the container, or None."""
        cdef object found
        ringq_mutex_lock(&self._mutex)
        found = self._callbacks if callbacks else self._children  # an INCREF: allowed under the lock
        ringq_mutex_unlock(&self._mutex)
        return found

    cdef object _install(self, bint callbacks, object new):
        """Install *new* as self._callbacks (or _children) unless one is there; return the one in place."""
        cdef object found
        ringq_mutex_lock(&self._mutex)
        found = self._callbacks if callbacks else self._children
        if found is None:
            # Stores and INCREFs only: the None replaced is never freed.
            if callbacks:
                self._callbacks = new
            else:
                self._children = new
            found = new
        ringq_mutex_unlock(&self._mutex)
        return found  # an unused *new* is dropped by the caller, after unlocking

    def cancel(self):
        """Fire the token: every call blocked with it raises Cancelled, and so does every later one.

        Its children, their children and so on fire too, however deep the tree (it is
        walked with a list, not by recursion). Calling it again does nothing.
        """
        cdef list pending = [self]
        cdef CancelToken token
        error = None
        while pending:
            token = <CancelToken>pending.pop()
            try:
                if not token._fire():
                    continue
                # Fired first, then read: a child() or an async wait that registers now
                # either is in these snapshots or sees the token fired and fires by itself.
                kids = token._installed(False)
                waits = token._installed(True)
                if waits:
                    for loop, fut in list(waits.values()):
                        _wake_future(loop, fut)
                if kids:
                    for ref in list(kids):
                        kid = ref()
                        if kid is not None:
                            pending.append(kid)
            except BaseException as exc:  # e.g. a signal handler's: the rest still fire
                if error is None:
                    error = exc
        if error is not None:
            try:
                raise error
            finally:
                error = None

    def _add_callback(self, loop, fut):
        """Register an async wait: cancel() resolves *fut* on *loop*. Returns the key for _remove_callback."""
        key = object()
        entry = (loop, fut)
        waits = self._installed(True)
        if waits is None:
            waits = self._install(True, {})
        waits[key] = entry
        if self._fired():  # cancel() may have copied the callbacks before the add
            _wake_future(loop, fut)
        return key

    def _remove_callback(self, key):
        waits = self._installed(True)
        if waits is not None:
            waits.pop(key, None)

    def child(self, timeout=None):
        """A new token that fires when this one does, or after *timeout* seconds, whichever is first.

        The child keeps this token alive; this token does not keep the child alive.
        """
        cdef CancelToken kid = CancelToken(timeout)
        cdef Py_ssize_t size
        cdef bint prune
        kid._deadline = _earlier(kid._deadline, self._deadline)
        kid._parent = self
        ref = weakref.ref(kid)
        kids = self._installed(False)
        if kids is None:
            kids = self._install(False, set())
        kids.add(ref)
        size = len(kids)
        ringq_mutex_lock(&self._mutex)
        prune = size >= self._prune_at
        if prune:
            self._prune_at = PY_SSIZE_T_MAX  # one thread prunes; the others go on
        ringq_mutex_unlock(&self._mutex)
        if prune:
            for ref in list(kids):
                if ref() is None:
                    kids.discard(ref)
            size = max(16, 2 * len(kids))
            ringq_mutex_lock(&self._mutex)
            self._prune_at = size
            ringq_mutex_unlock(&self._mutex)
        if self._fired_explicitly():  # cancel() may have copied the children before the add
            kid.cancel()
        return kid

    def raise_if_cancelled(self):
        """Raise Cancelled if the token has fired (a check point for loops that do not block)."""
        if self._fired():
            self._raise()

    def wait(self, timeout=None):
        """Block until the token fires or *timeout* seconds pass; return ``self.cancelled``.

        Ctrl-C interrupts it, like every wait of ringq.
        """
        cdef int64_t deadline = _earlier(_deadline(timeout), self._deadline)
        cdef Waiter w
        cdef int claim
        cdef bint acquired, check_signals
        cdef PyThread_type_lock parker = PyThread_allocate_lock()
        if parker == NULL:
            raise MemoryError()
        PyThread_acquire_lock(parker, NOWAIT_LOCK)
        try:
            while True:
                claim = 0
                if not self._link(&w, parker, &claim, 1):
                    return True
                acquired = _block(parker, deadline, &check_signals)
                self._unlink(&w)
                if ringq_claim_read(&claim) != 0:
                    if not acquired:
                        with nogil:
                            PyThread_acquire_lock(parker, WAIT_LOCK)
                    return True
                if check_signals:
                    _check_signals()
                if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                    return self._fired()
        finally:
            PyThread_release_lock(parker)
            PyThread_free_lock(parker)

    def await_cancelled(self, timeout=None):
        """``await token.await_cancelled(timeout=None)``: wait in a coroutine until the token fires.

        Returns ``self.cancelled``: True once it fired (``cancel()`` from any thread or
        task, its deadline, or a parent's), False if *timeout* seconds passed first.
        The loop is never blocked; *timeout* is checked when it is called, as by
        ``wait()``. Cancelling the awaiting task cancels the wait.
        """
        return _tokenasync.await_cancelled(self, timeout)

    def scope(self):
        """``async with token.scope():`` the token firing cancels the block.

        The task running the block is cancelled when the token fires (and with it
        what the block awaits: a ``gather``, an ``asyncio.TaskGroup``); on leaving,
        that cancellation is raised as :class:`ringq.Cancelled`, chained to the
        CancelledError. A token that has already fired raises Cancelled on entering.
        See docs/api.md.
        """
        return _tokenasync.CancelScope(self)

    def __repr__(self):
        state = "cancelled" if self._fired() else "active"
        return f"<ringq.CancelToken {state}>"


def _wake_future(loop, fut):
    """Resolve *fut* on *loop* from any thread; a closed loop has no task left to wake."""
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:
        pass


cdef int _check_token(object token) except -1:
    """Raise Cancelled if *token* (a CancelToken or None) has fired: an async call's check before each wait."""
    if token is not None and (<CancelToken>token)._fired():
        (<CancelToken>token)._raise()
    return 0


cdef CancelToken _as_token(object cancel):
    """*cancel* as a CancelToken (None stays None); raises Cancelled if it has already fired."""
    cdef CancelToken token
    if type(cancel) is not CancelToken:
        raise TypeError(f"cancel must be a ringq.CancelToken or None, not {type(cancel).__name__!r}")
    token = <CancelToken>cancel
    if token._fired():
        token._raise()
    return token


cdef object _with_put_count(object exc, Py_ssize_t count):
    """*exc* (raised by a batch put) carrying how many of the batch's items went in."""
    exc.put_count = count
    return exc


cdef CancelToken _as_token_put_many(object cancel):
    """_as_token for a batch put: a token that has already fired raises Cancelled with put_count 0."""
    try:
        return _as_token(cancel)
    except Cancelled as e:
        raise _with_put_count(e, 0)


cdef int _check_token_put_many(object token, Py_ssize_t done) except -1:
    """_check_token for aput_many: Cancelled carries the *done* items as put_count."""
    try:
        _check_token(token)
    except Cancelled as e:
        raise _with_put_count(e, done)
    return 0


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


cdef str _type_name(object q):
    """How repr and error messages name *q*: ringq.Queue, ringq.PriorityQueue, or a subclass's module.qualname."""
    cls = type(q)
    if cls is Queue:
        return "ringq.Queue"
    if cls is PriorityQueue:
        return "ringq.PriorityQueue"
    return f"{cls.__module__}.{cls.__qualname__}"


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
    if n > PY_SSIZE_T_MAX:
        raise OverflowError(f"levels must be at most sys.maxsize ({PY_SSIZE_T_MAX}), not {n}")
    return n


@cython.auto_pickle(False)
cdef class PriorityQueue(Queue):
    """PriorityQueue(levels=3, maxsize=0)
--

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

    def __init__(self, *args, **kwargs):
        levels, maxsize = _priority_queue_args(*args, **kwargs)  # a bad call names PriorityQueue()
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

    def put(self, item, priority=None, bint block=True, timeout=None, *, cancel=None):
        """Put *item* at the tail of level *priority*, waiting up to *timeout* seconds for room.

        *priority* is an int from 0 (most urgent) to ``levels - 1``; None (the
        default) means ``levels // 2``. Raises Full, ShutDown and Cancelled like Queue.put::

            q.put(job, 0)                  # most urgent
            q.put(job, priority=2, timeout=1.0)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token(cancel)
        self._put(item, block, deadline, level, token)

    def put_nowait(self, item, priority=None):
        """Put *item* at level *priority* without waiting; Full if there is no room.

        In a subclass it calls ``self.put(item, priority, block=False)``.
        """
        if type(self) is not PriorityQueue:
            self.put(item, priority, block=False)
            return
        self._put(item, False, NO_DEADLINE, self._level_of(priority), None)

    def put_many(self, items, priority=None, bint block=True, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, at level *priority*; otherwise like Queue.put_many.

        For example::

            q.put_many(batch, priority=2)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef CancelToken token = None
        if block and timeout is not None:
            deadline = _deadline(timeout)
        if cancel is not None:
            token = _as_token_put_many(cancel)
        self._put_batch(items, block, deadline, level, token)

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

    # The async puts, with a level: Queue's loops, on the same steps and waiter lists.

    async def aput(self, item, priority=None, timeout=None, *, cancel=None):
        """Put *item* at level *priority* (None: ``levels // 2``), awaiting room like Queue.aput.

        For example::

            await q.aput(alert, 0)
            await q.aput(job, priority=2, timeout=1.0)
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef tuple batch
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token(cancel) if cancel is not None else None
        if self._try_put(item, level):
            return
        batch = (item,)
        if self._put_or_link(None, batch, 0, deadline, level):
            return
        while True:
            _check_token(token)
            rec = self._new_task_waiter(&self._putters)
            if self._put_or_link(rec, batch, 0, deadline, level):
                return
            await self._sleep(rec, deadline, token)
            if self._put_or_link(None, batch, 0, deadline, level):
                return

    async def aput_many(self, items, priority=None, timeout=None, *, cancel=None):
        """Put every item of *items*, in order, at level *priority*, awaiting room like Queue.aput_many.
        """
        cdef Py_ssize_t level = self._level_of(priority)
        cdef int64_t deadline = NO_DEADLINE
        cdef _AsyncWaiter rec
        cdef tuple batch
        cdef Py_ssize_t done, n
        if timeout is not None:
            deadline = _deadline(timeout)
        token = _as_token_put_many(cancel) if cancel is not None else None
        batch = items if type(items) is tuple else tuple(items)
        n = len(batch)
        done = self._put_or_link(None, batch, 0, deadline, level)
        while done < n:
            _check_token_put_many(token, done)
            rec = self._new_task_waiter(&self._putters)
            done = self._put_or_link(rec, batch, done, deadline, level)
            if done < n:
                await self._sleep(rec, deadline, token)
                done = self._put_or_link(None, batch, done, deadline, level)

    def __repr__(self):
        cdef Py_ssize_t n
        cdef bint down
        self._lock()
        n = self._size()
        down = self._shutdown
        self._unlock()
        return (f"<{_type_name(self)} levels={self._nlower + 1} maxsize={self.maxsize!r} "
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
    callback = q._wm_callback       # moved out; dropped after unlocking (rule 3)
    cause = q._shutdown_cause
    q._wm_callback = None           # these stores decref the old values, which the locals keep alive
    q._shutdown_cause = None
    q._wm_high = 0
    q._set_alerts()
    q._unlock()
    _drop_tasks(tasks)
    del callback, cause
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

# Cython stores each cdef class's vtable in a "__pyx_vtable__" capsule in the type's dict,
# so help() lists it. That is left as it is: Cython has no switch to leave it out, and
# deleting it means writing into a type's dict, which free-threaded builds share between
# threads; a cosmetic line in help() is not worth that risk.


# Python code may subclass Queue and PriorityQueue (see "Subclassing" in docs/api.md).
# A Python subclass's own slots (its __dict__) are traversed and cleared by CPython's
# subtype_traverse/subtype_clear, which then call the slots set above.


# ---------------------------------------------------------------------------
# select(): wait on several queues at once.
#
# A select that finds no queue ready links one Waiter per queue into the queues'
# getters lists. The links share one parker and one claim flag: a waker of any
# queue claims the whole call (wl_claim), and a later waker of another queue
# finds it claimed, unlinks that link and wakes its next waiter instead. The
# woken select unlinks its other links and scans again; nothing is handed over,
# so it never holds an item it did not take. If it then takes from another queue
# (or from none) while the queue that woke it still has items, it passes that
# wake-up on, so no getter of that queue sleeps through an item.
# ---------------------------------------------------------------------------

cdef uint64_t _select_counter = 0  # a Weyl sequence, advanced atomically (see _sync.h)
cdef enum:
    SELECT_ON_STACK = 16  # queues whose links fit on the stack; more use the heap


cdef void _pass_on(Queue q) noexcept:
    """Wake one getter of *q* if it has items: a wake-up we received from it and did not use."""
    cdef Waiter *chain = NULL
    q._lock()
    if q._size() > 0:
        chain = q._claim(&q._getters, 1)
    q._unlock()
    wake_chain(chain)


cdef void _scan_order(Py_ssize_t *order, Py_ssize_t k, bint priority) noexcept:
    """Fill order[0..k) with the queues' indices: as given, or a uniformly random permutation."""
    cdef Py_ssize_t i, j, t
    cdef uint64_t r = 0, seed
    for i in range(k):
        order[i] = i
    if priority or k < 2:
        return
    seed = ringq_next_seed(&_select_counter)
    r = ringq_mix64(seed)
    for i in range(k - 1, 0, -1):
        if i >= 20:
            r = ringq_mix64(seed + <uint64_t>i)  # k! outgrows 64 bits: fresh bits per step
            j = <Py_ssize_t>(r % <uint64_t>(i + 1))
        else:
            j = <Py_ssize_t>(r % <uint64_t>(i + 1))
            r //= <uint64_t>(i + 1)
        t = order[i]
        order[i] = order[j]
        order[j] = t


def select(*queues, timeout=None, priority=False, cancel=None):
    """select(*queues, timeout=None, priority=False, cancel=None)

    Wait until any of *queues* has an item; take it and return ``(queue, item)``.

    The item is taken from exactly one queue, in one locked section; nothing is
    taken from the others. When several queues have items the choice is random
    and fair, or in argument order with ``priority=True``. A queue that is shut
    down and drained is skipped; once all of them are, select raises ShutDown
    (chained to a producer's cause, if one was passed on). It raises Empty after
    *timeout* seconds (``timeout=0``: do not wait), and Cancelled when the
    ``cancel`` token fires. Ctrl-C interrupts it::

        while True:
            try:
                source, item = ringq.select(orders, alerts, timeout=5.0)
            except ringq.ShutDown:
                break                 # every queue is shut down and drained
            except ringq.Empty:
                continue              # nothing for 5 s
            handle(source, item)
    """
    cdef Py_ssize_t k = len(queues)
    cdef CancelToken token = None
    cdef int64_t deadline
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q in queues:
        if not isinstance(q, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q).__name__!r}")
    deadline = _deadline(timeout)
    if cancel is not None:
        token = _as_token(cancel)
    return _select(queues, k, deadline, priority, token)


cdef object _select(tuple queues, Py_ssize_t k, int64_t deadline, bint priority, CancelToken token):
    cdef Py_ssize_t order_stack[SELECT_ON_STACK]
    cdef Waiter links_stack[SELECT_ON_STACK + 1]
    cdef Py_ssize_t *order = order_stack
    cdef Waiter *links = links_stack
    cdef PyThread_type_lock parker = NULL
    cdef Queue first = <Queue>queues[0]
    cdef Queue q
    cdef PyObject *item
    cdef Waiter *chain
    cdef Py_ssize_t i, j, closed, linked
    cdef int claim = 0
    cdef int won = 0
    cdef bint event, ready, acquired, check_signals, cancelled, token_linked
    if k > SELECT_ON_STACK:
        order = <Py_ssize_t *>PyMem_RawMalloc(<size_t>k * sizeof(Py_ssize_t))
        links = <Waiter *>PyMem_RawMalloc(<size_t>(k + 1) * sizeof(Waiter))
        if order == NULL or links == NULL:
            PyMem_RawFree(order)
            PyMem_RawFree(links)
            raise MemoryError()
    try:
        while True:
            # Scan: take from the first ready queue in scan order.
            _scan_order(order, k, priority)
            closed = 0
            for j in range(k):
                i = order[j]
                q = <Queue>queues[i]
                q._lock()
                if q._size() > 0:
                    item = q._pop_first()
                    q._gets += 1
                    event = q._size() <= q._alert_down and q._shrank()
                    chain = q._claim(&q._putters, 1)
                    q._unlock()
                    wake_chain(chain)
                    obj = ringq_steal(item)
                    if won != 0 and won - 1 != i:
                        _pass_on(<Queue>queues[won - 1])
                    if event:
                        q._deliver_watermark()
                    return (q, obj)
                links[i].unlinked = q._shutdown  # closed and drained: never linked below
                if q._shutdown:
                    closed += 1
                q._unlock()
            if won != 0:
                _pass_on(<Queue>queues[won - 1])
                won = 0
            if closed == k:
                for q in queues:
                    q._lock()
                    cause = q._shutdown_cause
                    q._unlock()
                    if cause is not None:
                        _raise_shutdown(cause)
                raise ShutDown
            if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                raise Empty
            if token is not None and token._fired():
                token._raise()
            if parker == NULL:
                _refuse_in_loop("select")  # the first wait: not on a thread that runs an event loop
                parker = first._take_parker()
                continue  # scan again before sleeping, as the queue's own waits do

            # Link one waiter per open queue; any change seen meanwhile means scan again.
            claim = 0
            ready = False
            linked = 0
            for i in range(k):
                links[i].parker = parker
                links[i].task = NULL
                links[i].claim = &claim
                links[i].tag = <int>(i + 1)
                if links[i].unlinked:
                    linked = i + 1
                    continue  # shut down and drained at the scan: it stays so
                q = <Queue>queues[i]
                q._lock()
                if q._size() > 0 or q._shutdown:
                    q._unlock()
                    links[i].unlinked = True
                    ready = True
                    break
                if q._fork_gen != _fork_generation:
                    q._forget_waiters_after_fork()
                wl_append(&q._getters, &links[i])
                q._unlock()
                linked = i + 1
            acquired = check_signals = cancelled = token_linked = False
            if not ready:
                if token is not None:
                    token_linked = token._link(&links[k], parker, &claim, <int>(k + 1))
                    cancelled = not token_linked
                if not cancelled:
                    acquired = _block(parker, _earlier(deadline, token._deadline if token is not None else NO_DEADLINE),
                                      &check_signals)
            for i in range(linked):
                q = <Queue>queues[i]
                q._lock()
                if not links[i].unlinked:
                    wl_remove(&q._getters, &links[i])
                q._unlock()
            if token_linked:
                token._unlink(&links[k])
            won = ringq_claim_read(&claim)  # final: no link is reachable any more
            if won != 0 and not acquired:
                with nogil:
                    PyThread_acquire_lock(parker, WAIT_LOCK)  # the waker has yet to release it (rule 5)
            if won == k + 1:
                won = 0
                cancelled = True
            if cancelled:
                if won != 0:
                    _pass_on(<Queue>queues[won - 1])
                token._raise()
            if check_signals and PyErr_CheckSignals() < 0:
                if won != 0:
                    _pass_on(<Queue>queues[won - 1])  # touches no Python state: the exception stays set
                _propagate()
    finally:
        if parker != NULL:
            first._give_parker(parker)
        if order != order_stack:
            PyMem_RawFree(order)
            PyMem_RawFree(links)


# ---------------------------------------------------------------------------
# aselect(): select() for asyncio tasks. One _AsyncWaiter per open queue, all
# sharing the task's future and the claim flag of the first record (the owner);
# a waker claims the task through one of them, and a later waker of another queue
# drops its link uncounted (wl_claim / wake_chain). The task then leaves every
# list, reads which queue won, scans again, and passes on a wake-up it did not use.
# ---------------------------------------------------------------------------

cdef int _aselect_link(_AsyncWaiter rec) except -1:
    """Link *rec* into its queue's getters: 0, or 2 if the queue is shut down; 1 (not linked) if it has items."""
    cdef Queue q = <Queue>rec.queue
    cdef int down
    q._lock()
    if q._size() > 0:
        q._unlock()
        return 1
    down = 2 if q._shutdown else 0
    if q._fork_gen != _fork_generation:
        q._forget_waiters_after_fork()
    rec.fork_gen = q._fork_gen
    rec.node.unlinked = False
    incref(<PyObject *>rec)  # the list's reference
    wl_append(rec.wl, &rec.node)
    q._unlock()
    return down


cdef int _aselect_leave(list recs) except -1:
    """Take every link of an aselect out of its list (dropping the list's reference); return the winning tag or 0."""
    cdef _AsyncWaiter rec
    cdef Queue q
    cdef bint unlinked
    for r in recs:
        rec = <_AsyncWaiter>r
        q = <Queue>rec.queue
        unlinked = False
        q._lock()
        if rec.fork_gen == q._fork_gen and not rec.node.unlinked:
            wl_remove(rec.wl, &rec.node)
            unlinked = True
        q._unlock()
        if unlinked:
            decref(<PyObject *>rec)
    if not recs:
        return 0
    return ringq_claim_read(&(<_AsyncWaiter>recs[0]).claim)


async def aselect(*queues, timeout=None, priority=False, cancel=None):
    """aselect(*queues, timeout=None, priority=False, cancel=None)

    select() for asyncio: await an item from whichever of *queues* has one first,
    and return ``(queue, item)``. Same contract as select() (fair, exactly one item
    from exactly one queue, shut-down queues skipped, ShutDown once all are, Empty
    after *timeout*); the task waits on the queues' own waiter lists, so the event
    loop never blocks. Cancelled (``task.cancel()``, ``asyncio.timeout``), it has
    taken nothing, and a wake-up it received is passed on. With ``cancel=token`` it
    raises Cancelled, having taken nothing, once the token fires::

        source, item = await ringq.aselect(orders, alerts)
        source, item = await ringq.aselect(orders, alerts, cancel=shutdown_token)
    """
    cdef Py_ssize_t k = len(queues)
    cdef int64_t deadline
    cdef int won = 0
    cdef _AsyncWaiter rec, first
    cdef Queue q
    cdef bint ready
    cdef int linked
    cdef Py_ssize_t open_queues
    if k == 0:
        raise TypeError("select() needs at least one queue")
    for q_obj in queues:
        if not isinstance(q_obj, Queue):
            raise TypeError(f"select() takes ringq.Queue objects, not {type(q_obj).__name__!r}")
    deadline = _deadline(timeout)
    token = _as_token(cancel) if cancel is not None else None
    while True:
        try:
            _check_token(token)  # as select(): a fired token ends the call before the next scan
            got = _select(queues, k, ringq_monotonic_ns(), priority, None)  # a scan that does not wait
        except Empty:
            got = None
        except BaseException:
            if won != 0:
                _pass_on(<Queue>queues[won - 1])
            raise
        if won != 0 and (got is None or got[0] is not queues[won - 1]):
            _pass_on(<Queue>queues[won - 1])
        won = 0
        if got is not None:
            return got
        if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
            raise Empty
        loop = _get_running_loop()
        fut = loop.create_future()
        recs = []
        first = None
        ready = False
        open_queues = 0
        for i in range(k):
            q = <Queue>queues[i]
            rec = _AsyncWaiter.__new__(_AsyncWaiter)
            rec.queue = q
            rec.loop = loop
            rec.fut = fut
            rec.thread_ident = PyThread_get_thread_ident()
            rec.wl = &q._getters
            rec.node.task = <PyObject *>rec
            rec.node.parker = NULL
            rec.node.tag = <int>(i + 1)
            if first is None:
                first = rec
                first.claim = 0
            rec.owner = first
            rec.node.claim = &first.claim
            linked = _aselect_link(rec)
            if linked == 1:
                ready = True
                break
            recs.append(rec)
            if linked == 0:
                open_queues += 1
        if open_queues == 0:
            ready = True  # all shut down meanwhile: no wake-up would come; the scan raises ShutDown
        if not ready:
            timer = None
            key = None
            wake_at = deadline
            if token is not None:
                # The token resolves the future like a waker would; the next pass raises Cancelled.
                wake_at = _earlier(deadline, (<CancelToken>token)._deadline)
                key = (<CancelToken>token)._add_callback(loop, fut)
            if wake_at != NO_DEADLINE:
                timer = loop.call_later((wake_at - ringq_monotonic_ns()) / 1e9, _resolve, fut)
            try:
                await fut
            except BaseException:
                won = _aselect_leave(recs)
                if won != 0:
                    _pass_on(<Queue>queues[won - 1])
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                if key is not None:
                    (<CancelToken>token)._remove_callback(key)
        won = _aselect_leave(recs)
