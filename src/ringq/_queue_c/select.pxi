# Included by _queue_c.pyx: select() and aselect().

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
                    event = q._size() <= q._alert_down and _shrank(q)
                    chain = q._claim(&q._putters, 1)
                    q._unlock()
                    wake_chain(chain)
                    obj = ringq_steal(item)
                    if won != 0 and won - 1 != i:
                        _pass_on(<Queue>queues[won - 1])
                    if event:
                        _deliver_watermark(q)
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
                parker = _take_parker(first)
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
            _give_parker(first, parker)
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
