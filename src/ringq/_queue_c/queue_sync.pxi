# Included by _queue_c.pyx: the internals of Queue's sync calls (put, get, put_many,
# get_many, put_evict, join, shutdown, clear) and the one waiting routine they share.
# Each is a module-level function taking the queue (CPython's _queuemodule.c style);
# the class in queue.pxi keeps the public methods. Lock rules: top of _queue_c.pyx.


# -- the one waiting routine -----------------------------------------------------
#
# put, put_many, get, get_many and join wait the same way: a *step* runs one locked
# section and either answers the call (returns its result, or raises) or, finding it
# must wait, returns _WAIT with the lock still held. The call runs its step once
# directly (its fast path: no parker, no try block); only on _WAIT does it enter
# _wait_for, which parks the thread on the call's list and runs the step again.

ctypedef struct Call:
    # One blocking call across its waits: what its step reads and writes.
    WaitList *wl               # the list it waits on
    int64_t deadline           # NO_DEADLINE, or monotonic ns
    bint block                 # False: answer at once (Full, Empty), never wait
    bint waiting               # its first wait is behind it (it holds a parker)
    Py_ssize_t level           # put: the level the items go to
    PyObject **items           # put: items[0..n), kept alive by the caller
    Py_ssize_t n
    Py_ssize_t done            # put: how many of them went in so far
    Py_ssize_t max_items       # get: 0 for one item, else the most to return

ctypedef object (*CallStep)(Queue q, Call *c)


cdef object _wait_for(Queue q, Call *c, CallStep step, CancelToken token, str call):
    """Lock held, *step* having just returned _WAIT: wait on c.wl (see _wait) and run it again, until it answers.

    Raises what the step raises, and what a wait raises: Cancelled (*token*),
    KeyboardInterrupt (a signal handler), LoopBlockingError (blocking *call* on a
    thread that runs an event loop, at the first wait). The parker the first wait
    took goes back to the queue's spares however the call ends.
    """
    cdef PyThread_type_lock parker = NULL
    try:
        while True:
            _wait(q, c.wl, &parker, c.deadline, token, call)
            c.waiting = parker != NULL
            answer = step(q, c)
            if answer is not _WAIT:
                return answer
    finally:
        if parker != NULL:
            _give_parker(q, parker)


cdef int _wait(Queue q, WaitList *wl, PyThread_type_lock *parker, int64_t deadline,
               CancelToken token, str call) except -1:
    """Lock held on entry, released on return: park on *wl* (see _park).

    A caller's first wait only takes a parker into *parker* and returns, so the
    caller re-checks the queue before it sleeps; it gives the parker back with
    _give_parker when its loop ends. That first wait is where blocking *call*
    ("get", "put", ...) refuses to wait on a thread that runs an event loop.
    """
    if parker[0] == NULL:
        q._unlock()
        _refuse_in_loop(call)
        parker[0] = _take_parker(q)
        return 0
    return _park(q, wl, parker[0], deadline, token)


cdef inline int _put(Queue q, object item, bint block, int64_t deadline, Py_ssize_t level,
                     CancelToken token) except -1:
    """Put *item* at *level* (0 for a plain queue: the ring lookup then folds away)."""
    cdef PyObject *one
    if _try_put(q, item, level):
        return 0
    one = <PyObject *>item
    return _put_items(q, &one, 1, block, deadline, level, token, "put")


cdef inline bint _try_put(Queue q, object item, Py_ssize_t level) except -1:
    """The fast path of put and aput: put *item* at *level* if it fits in its ring as it is; else False."""
    cdef Waiter *chain
    cdef Ring *r
    q._lock()
    r = q._level_ring(level)
    if not q._shutdown and r.count < r.cap and (
            q._bound <= 0 or q._size() < q._bound):
        Py_INCREF(item)
        ring_push(r, <PyObject *>item)
        q._added(level, 1)
        q._puts += 1
        if q._size() >= q._alert_up:
            _put_done_at_alert(q)
            return True
        chain = q._claim(&q._getters, 1)
        q._unlock()
        wake_chain(chain)
        return True
    q._unlock()
    return False


cdef int _put_done_at_alert(Queue q) except -1:
    """Lock held, one item just put and the size at _alert_up: finish the put (unlock, wake, deliver)."""
    cdef bint event = _grew(q)
    cdef Waiter *chain = q._claim(&q._getters, 1)
    q._unlock()
    wake_chain(chain)
    if event:
        _deliver_watermark(q)
    return 0


cdef tuple _put_evict(Queue q, object item, Py_ssize_t level):
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
        q._lock()
        if q._shutdown:
            q._unlock()
            raise ShutDown
        r = q._level_ring(level)
        # Room in the ring first, so that nothing has changed if memory runs out.
        if ring_reserve(r, 1, q._bound) < 0:
            q._unlock()
            raise MemoryError()
        if q._bound > 0 and q._size() >= q._bound:
            vlevel = q._least_urgent_level()
            if level > vlevel:
                # Less urgent than everything queued: item itself is refused.
                q._unlock()
                if evicted is None:
                    return (item,)
                evicted.append(item)
                return tuple(evicted)
            vr = q._level_ring(vlevel)
            victim = ring_pop(vr)
            if vlevel:
                q._lower_count -= 1
            if q._unfinished > 0:
                q._unfinished -= 1  # an evicted item will never be task_done()
        if (q._bound <= 0 or q._size() < q._bound) and r.count < r.cap:
            Py_INCREF(item)
            ring_push(r, <PyObject *>item)
            q._added(level, 1)
            q._puts += 1
            if q._size() >= q._alert_up:
                event = _grew(q)
            chain = q._claim(&q._getters, 1)
            done = True
        elif q._unfinished == 0:
            chain = q._claim(&q._joiners, PY_SSIZE_T_MAX)
        q._unlock()
        wake_chain(chain)
        if victim != NULL:
            stolen = ringq_steal(victim)  # owned by this frame from here on
            if evicted is None:
                evicted = []
            evicted.append(stolen)
        if done:
            if event:
                _deliver_watermark(q)
            return () if evicted is None else tuple(evicted)


cdef int _put_batch(Queue q, object items, bint block, int64_t deadline, Py_ssize_t level,
                    CancelToken token) except -1:
    """put_many's work, at *level*."""
    cdef tuple batch
    if RINGQ_GIL_BUILD and type(items) is list and _put_list_at_once(q, <list>items, level):
        return 0
    # A private tuple: a caller's list could change while we wait for room.
    batch = items if type(items) is tuple else tuple(items)
    return _put_items(q, ringq_tuple_items(batch), len(batch), block, deadline, level, token, "put_many")


cdef bint _put_list_at_once(Queue q, list items, Py_ssize_t level) except -1:
    """GIL builds only: copy all of *items* straight from the list if they fit now.

    With the GIL held and no Python code run, nothing can change the list during
    the locked section, so no private copy is needed. Returns False (nothing
    put) when the items do not all fit at once; put_many then takes the general path.
    """
    cdef Py_ssize_t n = len(items)
    cdef Waiter *chain
    cdef Ring *r
    cdef bint event = False
    q._lock()
    r = q._level_ring(level)
    if q._shutdown or n == 0 or q._room() < n or ring_reserve(r, n, q._bound) < 0:
        q._unlock()
        return False
    ring_extend(r, ringq_list_items(items), n)
    q._added(level, n)
    q._puts += n
    if q._size() >= q._alert_up:
        event = _grew(q)
    chain = q._claim(&q._getters, n)
    q._unlock()
    wake_chain(chain)
    if event:
        _deliver_watermark(q)
    return True


cdef int _put_items(Queue q, PyObject **items, Py_ssize_t n, bint block, int64_t deadline,
                    Py_ssize_t level, CancelToken token, str call) except -1:
    """Put items[0..n) (kept alive by the caller) at *level*, waiting for room as needed.

    With block=False, all or nothing. Raises ShutDown, Full, Cancelled or MemoryError,
    each with put_count (the items that went in), and LoopBlockingError (before any
    item went in) if blocking *call* would wait on a thread that runs an event loop.
    """
    cdef Call c
    c.wl = &q._putters
    c.deadline = deadline
    c.block = block
    c.level = level
    c.items = items
    c.n = n
    c.done = 0
    c.waiting = False
    if _put_step(q, &c) is _WAIT:
        try:
            _wait_for(q, &c, _put_step, token, call)
        except Cancelled as e:
            raise _with_put_count(e, c.done)
    return 0


cdef object _put_step(Queue q, Call *c):
    """_put_items' step: put what fits of c.items[c.done:]; None when all are in, or raise, or _WAIT."""
    cdef Py_ssize_t take
    cdef Waiter *chain
    cdef object failure
    cdef Ring *r
    cdef bint event
    while True:
        chain = NULL
        failure = None
        event = False
        q._lock()
        r = q._level_ring(c.level)
        if q._shutdown:
            failure = ShutDown
        else:
            take = q._room()
            if take > c.n - c.done:
                take = c.n - c.done
            if not c.block and take < c.n:
                failure = Full
            elif take < c.n - c.done and not c.waiting and (
                    c.deadline == NO_DEADLINE or ringq_monotonic_ns() < c.deadline):
                # Not all fit, so this call will wait: its first wait (a parker, and
                # the event-loop check) comes before any item goes in, so a refused
                # call has put nothing. Then decide again.
                return _WAIT
            elif take > 0:
                if ring_reserve(r, take, q._bound) < 0:
                    # Out of memory: with block=False put nothing; else use what fits.
                    take = 0 if not c.block else min(take, r.cap - r.count)
                    if take == 0:
                        failure = MemoryError
                if take > 0:
                    ring_extend(r, c.items + c.done, take)
                    c.done += take
                    q._added(c.level, take)
                    q._puts += take
                    if q._size() >= q._alert_up:
                        event = _grew(q)
                    chain = q._claim(&q._getters, take)
            if failure is None and c.done < c.n and c.deadline != NO_DEADLINE and (
                    ringq_monotonic_ns() >= c.deadline):
                failure = Full
        if failure is not None or c.done == c.n or chain != NULL or event:
            q._unlock()
            wake_chain(chain)
            if event:
                _deliver_watermark(q)
            if failure is not None:
                raise _with_put_count(failure(), c.done)
            if c.done == c.n:
                return None
            continue  # woke getters; now re-check and wait for the rest
        return _WAIT


cdef inline object _get(Queue q, bint block, int64_t deadline, CancelToken token):
    cdef PyObject *item
    cdef Waiter *chain
    q._lock()
    if q._ring.count > 0:
        item = ring_pop(&q._ring)
        q._gets += 1
        q._maybe_shrink()
        if q._size() <= q._alert_down:
            return _got_at_alert(q, item)  # out of line: keeps this path small enough to inline
        chain = q._claim(&q._putters, 1)
        q._unlock()
        wake_chain(chain)
        return ringq_steal(item)
    q._unlock()
    return _get_slow(q, 0, block, deadline, token)


cdef object _got_at_alert(Queue q, PyObject *item):
    """Lock held, *item* just taken and the size at _alert_down: finish the get (unlock, wake, deliver)."""
    cdef bint event = _shrank(q)
    cdef Waiter *chain = q._claim(&q._putters, 1)
    q._unlock()
    wake_chain(chain)
    obj = ringq_steal(item)
    if event:
        _deliver_watermark(q)
    return obj


cdef Py_ssize_t _as_max_items(object max_items) except -1:
    """get_many's and aget_many's *max_items* as a count >= 1 (clamped to PY_SSIZE_T_MAX).

    Else TypeError or ValueError.
    """
    if type(max_items) is int:
        wanted = max_items  # what operator.index() would return, without the call
    else:
        if isinstance(max_items, bool):  # True is an int, but not a count
            raise TypeError("max_items must be an integer, not 'bool'")
        try:
            wanted = operator.index(max_items)
        except TypeError:
            raise TypeError(f"max_items must be an integer, not {type(max_items).__name__!r}") from None
    if wanted < 1:
        raise ValueError("max_items must be >= 1")
    return wanted if wanted < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX


cdef object _get_slow(Queue q, Py_ssize_t max_items, bint block, int64_t deadline, CancelToken token):
    """Wait for items; return one item (max_items == 0) or a list of 1..max_items."""
    cdef Call c
    c.wl = &q._getters
    c.deadline = deadline
    c.block = block
    c.max_items = max_items
    c.waiting = False
    answer = _get_step(q, &c)
    if answer is _WAIT:
        answer = _wait_for(q, &c, _get_step, token, "get" if max_items == 0 else "get_many")
    return answer


cdef object _get_step(Queue q, Call *c):
    """_get_slow's step: one item or a list of 1..c.max_items; else raise (ShutDown, Empty), or _WAIT."""
    cdef Waiter *chain
    cdef Py_ssize_t n
    cdef list batch
    cdef bint event
    while True:
        event = False
        q._lock()
        n = q._size()
        if n > 0 and c.max_items == 0:
            return _take_one(q)
        if n > 0:
            chain = NULL
            # The list is made outside the lock (allocation may run the GC);
            # meanwhile others may take items, so re-read the count after.
            q._unlock()
            batch = PyList_New(min(n, c.max_items))
            q._lock()
            n = min(len(batch), q._size())
            if n > 0:
                q._take_first(ringq_list_items(batch), n)
                q._gets += n
                if q._size() <= q._alert_down:
                    event = _shrank(q)
                chain = q._claim(&q._putters, n)
            q._unlock()
            if n == 0:
                continue
            wake_chain(chain)
            if n < len(batch):
                Py_SET_SIZE(batch, n)  # the tail slots are still NULL
            if event:
                _deliver_watermark(q)
            return batch
        if q._shutdown:
            cause = q._shutdown_cause  # a new reference: allowed under the lock
            q._unlock()
            _raise_shutdown(cause)
        if not c.block or (c.deadline != NO_DEADLINE and ringq_monotonic_ns() >= c.deadline):
            q._unlock()
            raise Empty
        return _WAIT


cdef object _take_one(Queue q):
    """Lock held, size > 0: take the first item in priority order and finish the get (unlock, wake, deliver)."""
    cdef PyObject *item = q._pop_first()
    cdef Waiter *chain
    q._gets += 1
    if q._size() <= q._alert_down:
        return _got_at_alert(q, item)
    chain = q._claim(&q._putters, 1)
    q._unlock()
    wake_chain(chain)
    return ringq_steal(item)


cdef int _join(Queue q, object cancel) except -1:
    """join()'s work: wait on the joiners until no task is unfinished."""
    cdef Call c
    cdef CancelToken token = None
    if cancel is not None:
        token = _as_token(cancel)
    c.wl = &q._joiners
    c.deadline = NO_DEADLINE
    c.waiting = False
    if _join_step(q, &c) is _WAIT:
        _wait_for(q, &c, _join_step, token, "join")
    return 0


cdef object _join_step(Queue q, Call *c):
    """join's step: None once no task is unfinished, else _WAIT."""
    q._lock()
    if q._unfinished == 0:
        q._unlock()
        return None
    return _WAIT


ctypedef struct Drained:
    # The items shutdown(immediate=True) and clear() move out under the lock, to drop after it.
    Ring ring                  # level 0's slots
    Ring *lower                # the other levels' rings (PyMem_Raw*), or NULL
    Py_ssize_t nlower
    Py_ssize_t count           # items in them all


cdef inline void _drained_init(Drained *d) noexcept nogil:
    """Make *d* empty: nothing to drop."""
    d.ring.slots = NULL
    d.ring.cap = d.ring.head = d.ring.count = 0
    d.lower = NULL
    d.nlower = d.count = 0


cdef int _drain_reserve(Queue q, Drained *d) except -1:
    """Lock held, *d* empty. Make room in *d* for a PriorityQueue's other levels.

    MemoryError (raised unlocked) changes nothing.
    """
    if q._lower_count > 0:
        # A PriorityQueue's other levels go too; PyMem_Raw* is allowed here (rule 2).
        d.nlower = q._nlower
        d.lower = <Ring *>PyMem_RawMalloc(<size_t>d.nlower * sizeof(Ring))
        if d.lower == NULL:
            q._unlock()
            raise MemoryError()  # nothing changed
    return 0


cdef void _drain(Queue q, Drained *d) noexcept:
    """Lock held, after _drain_reserve. Move every item of *q* into *d*; d.count says how many."""
    cdef Py_ssize_t i
    d.ring = ring_detach(&q._ring)
    d.count = d.ring.count
    if d.lower != NULL:
        for i in range(d.nlower):
            d.lower[i] = ring_detach(&q._lower[i])
        d.count += q._lower_count
        q._lower_count = 0


cdef void _drop_drained(Drained *d) noexcept:
    """After unlocking (rule 3): drop the items of *d* (their __del__ runs here) and free its rings."""
    cdef Py_ssize_t i
    ring_release(d.ring)
    if d.lower != NULL:
        for i in range(d.nlower):
            ring_release(d.lower[i])
        PyMem_RawFree(d.lower)


cdef int _shutdown_queue(Queue q, bint immediate) except -1:
    """shutdown()'s work: set the flag, drop the items if *immediate*, wake every waiter."""
    cdef Drained dropped
    cdef Waiter *getters
    cdef Waiter *putters
    cdef Waiter *joiners = NULL
    cdef bint event = False
    _drained_init(&dropped)
    q._lock()
    if immediate:
        _drain_reserve(q, &dropped)
    q._shutdown = True
    if immediate:
        _drain(q, &dropped)
        q._unfinished = q._unfinished - dropped.count if q._unfinished > dropped.count else 0
        joiners = q._claim(&q._joiners, PY_SSIZE_T_MAX)
        if dropped.count > 0 and q._size() <= q._alert_down:
            event = _shrank(q)  # emptied: "low", as clear() delivers it
    getters = q._claim(&q._getters, PY_SSIZE_T_MAX)
    putters = q._claim(&q._putters, PY_SSIZE_T_MAX)
    q._unlock()
    wake_chain(getters)
    wake_chain(putters)
    wake_chain(joiners)
    _drop_drained(&dropped)
    if event:
        _deliver_watermark(q)
    return 0


cdef Py_ssize_t _clear(Queue q) except -1:
    """clear()'s work: drop every item (after unlocking), count them done, wake the putters."""
    cdef Drained dropped
    cdef Waiter *putters
    cdef Waiter *joiners = NULL
    cdef bint event = False
    _drained_init(&dropped)
    q._lock()
    _drain_reserve(q, &dropped)
    _drain(q, &dropped)
    if dropped.count > 0:
        q._unfinished = q._unfinished - dropped.count if q._unfinished > dropped.count else 0
        if q._unfinished == 0:
            joiners = q._claim(&q._joiners, PY_SSIZE_T_MAX)
        if q._size() <= q._alert_down:
            event = _shrank(q)
    putters = q._claim(&q._putters, PY_SSIZE_T_MAX)  # they re-check the room
    q._unlock()
    wake_chain(putters)
    wake_chain(joiners)
    _drop_drained(&dropped)
    if event:
        _deliver_watermark(q)
    return dropped.count
