# Included by _queue_c.pyx: waiter lists, parking and wake chains.

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


# -- parkers and parking (a queue's spare parkers; the sleep of one wait) ----------


cdef PyThread_type_lock _take_parker(Queue q) except NULL:
    """A parker in the acquired state, reused from the queue's spares if possible."""
    cdef PyThread_type_lock parker = NULL
    q._lock()
    if q._nparkers > 0:
        q._nparkers -= 1
        parker = q._parkers[q._nparkers]
    q._unlock()
    if parker != NULL:
        return parker
    parker = PyThread_allocate_lock()
    if parker == NULL:
        raise MemoryError()
    PyThread_acquire_lock(parker, NOWAIT_LOCK)
    return parker


cdef void _give_parker(Queue q, PyThread_type_lock parker) noexcept:
    """Return an acquired parker to the spares (or free it when there are enough)."""
    q._lock()
    if q._parkers == NULL:
        q._parkers = <PyThread_type_lock *>PyMem_RawMalloc(PARKERS_KEPT * sizeof(PyThread_type_lock))
    if q._parkers != NULL and q._nparkers < PARKERS_KEPT:
        q._parkers[q._nparkers] = parker
        q._nparkers += 1
        parker = NULL
    q._unlock()
    if parker != NULL:
        PyThread_free_lock(parker)


cdef int _park(Queue q, WaitList *wl, PyThread_type_lock parker, int64_t deadline,
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
    if q._fork_gen != _fork_generation:
        q._forget_waiters_after_fork()  # before we join a list, not after (it clears them)
    wl_append(wl, &w)
    q._unlock()

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

    q._lock()
    if not w.unlinked:
        wl_remove(wl, &w)
    q._unlock()
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
            q._lock()
            baton = q._claim(wl, 1)
            q._unlock()
            wake_chain(baton)
        if cancelled and not raised:
            token._raise()
        return -1
    return 0
