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

# Used by the included files: cython-lint reads one file at a time, so it would call
# these unused (hence the no-cython-lint marks).
cimport cython  # no-cython-lint
from cpython.exc cimport PyErr_CheckSignals, PyErr_Fetch, PyErr_Restore  # no-cython-lint
from cpython.list cimport PyList_New  # no-cython-lint
from cpython.object cimport PyObject, PyTypeObject, traverseproc, inquiry, visitproc  # no-cython-lint
from cpython.ref cimport Py_INCREF  # no-cython-lint
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy  # no-cython-lint

import asyncio  # no-cython-lint
import math  # no-cython-lint
import operator  # no-cython-lint
import os  # no-cython-lint
import threading  # no-cython-lint
import weakref  # no-cython-lint
from types import GenericAlias  # no-cython-lint

from . import _tokenasync  # no-cython-lint
from ._asyncview import AsyncQueueView  # no-cython-lint
from ._ctor import priority_queue_args as _priority_queue_args, queue_args as _queue_args  # no-cython-lint
from ._errors import Cancelled, Empty, Full, ShutDown, report_callback_error  # no-cython-lint
from ._loopguard import refuse as _refuse_blocking  # no-cython-lint
from ._stats import QueueStatistics as _QueueStatistics  # no-cython-lint

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


# The concerns, one file each (src/ringq/_queue_c/; the pure twin _queue_py/ has the same
# file names). An include pastes its file here, so module-level statements run in this
# order. Reading order: queue.pxi (the class), then queue_sync.pxi and queue_async.pxi.
include "_queue_c/ring.pxi"  # the ring buffer: Ring, ring_*
include "_queue_c/waiters.pxi"  # waiter lists, parking and wake chains: Waiter, WaitList, wl_*, wake_chain
include "_queue_c/async_waiters.pxi"  # _AsyncWaiter: an asyncio task's wait, linked in the same lists
include "_queue_c/timeouts.pxi"  # deadlines, Ctrl-C slices, fork handling
include "_queue_c/tokens.pxi"  # CancelToken and the cancel= helpers
include "_queue_c/bucket.pxi"  # TokenBucket: a RateLimiter's state
include "_queue_c/stats.pxi"  # statistics, watermarks, producer handles
include "_queue_c/queue.pxi"  # the Queue class: its state and public methods
include "_queue_c/queue_sync.pxi"  # put/get/put_many/get_many/put_evict/join/shutdown/clear internals; the shared wait
include "_queue_c/queue_async.pxi"  # the steps of aput/aget/aput_many/aget_many/ajoin
include "_queue_c/priority.pxi"  # PriorityQueue
include "_queue_c/gc.pxi"  # GC support: installs Queue's tp_traverse/tp_clear (after both classes)
include "_queue_c/select.pxi"  # select() and aselect()
