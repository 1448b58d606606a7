# Included by _queue_c.pyx: the records of asyncio tasks' waits.

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
        bint swept                   # taken out by _sweep_closed_loops (its loop closed): owes no wake-up

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


cdef _AsyncWaiter _new_task_waiter(Queue q, WaitList *wl):
    """A record for the running task's next wait on *wl*; RuntimeError outside a running loop."""
    cdef _AsyncWaiter rec = _AsyncWaiter.__new__(_AsyncWaiter)
    loop = _get_running_loop()
    _sweep_closed_loops(q)
    rec.queue = q
    rec.loop = loop
    rec.fut = loop.create_future()
    rec.thread_ident = PyThread_get_thread_ident()
    rec.wl = wl
    rec.node.task = <PyObject *>rec
    rec.node.parker = NULL
    return rec


cdef inline void _link_task(Queue q, _AsyncWaiter rec) noexcept:
    """Lock held. Append *rec* to its list, which takes a reference (allowed: rule 2)."""
    if q._fork_gen != _fork_generation:
        q._forget_waiters_after_fork()
    rec.fork_gen = q._fork_gen
    # One link only, so a waker's claim always wins: no claimed-elsewhere skip can
    # drop this node (and the list's reference) without waking it.
    rec.claim = 0
    rec.node.claim = &rec.claim
    rec.node.tag = 1
    rec.node.unlinked = False
    incref(<PyObject *>rec)
    wl_append(rec.wl, &rec.node)


cdef void _leave_task(Queue q, _AsyncWaiter rec, bint pass_on) noexcept:
    """After a wait: unlink *rec* unless a waker claimed it; if one did and *pass_on*, wake the next waiter."""
    cdef bint unlinked = False
    cdef Waiter *baton = NULL
    q._lock()
    if rec.fork_gen == q._fork_gen:  # else a fork child forgot the lists
        if rec.node.unlinked:
            if pass_on and not rec.swept:  # a swept record was never woken
                baton = q._claim(rec.wl, 1)
        else:
            wl_remove(rec.wl, &rec.node)
            unlinked = True
    q._unlock()
    wake_chain(baton)
    if unlinked:
        decref(<PyObject *>rec)  # the list's reference; the caller still holds one


cdef int _sweep_closed_loops(Queue q) except -1:
    """Lock not held. Every _sweep_at async waits, unlink the records of tasks whose loop is closed.

    A task still waiting when its loop is closed can never run again: its record
    would keep the task, its coroutine and the loop alive, and count as waiting,
    until a wake-up reached it. The sweep snapshots the linked records under the
    lock (PyMem_Raw and Py_INCREF only: rule 2), asks each loop ``is_closed()``
    unlocked, then unlinks the dead ones under the lock and drops them after.
    _sweep_at doubles with the records still linked, so a sweep of n records
    follows at least n new waits: O(1) amortised per wait, and the dead records
    linked at any time stay fewer than the live ones plus _SWEEP_MIN.
    """
    cdef Py_ssize_t n = 0, i, live = 0
    cdef PyObject **recs
    cdef Waiter *w
    cdef WaitList *lists[3]
    cdef _AsyncWaiter rec
    cdef bint unlinked
    q._lock()
    q._task_waits += 1
    if q._task_waits < q._sweep_at or q._fork_gen != _fork_generation:
        q._unlock()
        return 0
    lists[0] = &q._getters
    lists[1] = &q._putters
    lists[2] = &q._joiners
    for i in range(3):
        w = lists[i].head
        while w != NULL:
            n += w.task != NULL
            w = w.next
    recs = <PyObject **>PyMem_RawMalloc((n + 1) * sizeof(PyObject *))
    if recs != NULL:
        n = 0
        for i in range(3):
            w = lists[i].head
            while w != NULL:
                if w.task != NULL:
                    incref(w.task)
                    recs[n] = w.task
                    n += 1
                w = w.next
    q._task_waits = 0
    q._sweep_at = max(_SWEEP_MIN, 2 * n)
    q._unlock()
    if recs == NULL:
        return 0
    for i in range(n):
        rec = <_AsyncWaiter>recs[i]
        try:
            closed = rec.loop.is_closed()
        except Exception:  # a loop that cannot answer is left alone
            closed = False
        if not closed:
            live += 1
            continue
        unlinked = False
        q._lock()
        if rec.fork_gen == q._fork_gen and not rec.node.unlinked:
            wl_remove(rec.wl, &rec.node)
            rec.node.unlinked = True
            rec.swept = True
            unlinked = True
        q._unlock()
        if unlinked:
            decref(recs[i])  # the list's reference
    rec = None
    for i in range(n):
        decref(recs[i])  # the snapshot's
    PyMem_RawFree(recs)
    q._lock()
    q._sweep_at = max(_SWEEP_MIN, 2 * live)
    q._unlock()
    return 0


async def _sleep(Queue q, _AsyncWaiter rec, int64_t deadline, token=None):
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
        _leave_task(q, rec, True)
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if key is not None:
            (<CancelToken>token)._remove_callback(key)
    _leave_task(q, rec, False)
