# Included by _queue_c.pyx: the steps of Queue's async calls (aput, aget, aput_many,
# aget_many, ajoin). Each step runs one locked section and either completes the call
# or links the task's record (async_waiters.pxi) for the async def in queue.pxi to await.


cdef inline bint _try_put(Queue q, object item, Py_ssize_t level) except -1:
    """aput's fast path (the same as _put's): put *item* at *level* if it fits in its ring as it is."""
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


cdef object _get_or_link(Queue q, _AsyncWaiter rec, Py_ssize_t max_items, int64_t deadline):
    """Take one item (max_items == 0) or a list of 1..max_items; else raise, or link *rec* and return _WAIT."""
    cdef PyObject *item
    cdef Waiter *chain
    while True:
        q._lock()
        if q._size() > 0:
            if max_items == 0:
                item = q._pop_first()
                q._gets += 1
                if q._size() <= q._alert_down:
                    return _got_at_alert(q, item)
                chain = q._claim(&q._putters, 1)
                q._unlock()
                wake_chain(chain)
                return ringq_steal(item)
            q._unlock()
            try:
                return _get_slow(q, max_items, False, NO_DEADLINE, None)
            except Empty:
                continue  # others took the items meanwhile: check again
        if q._shutdown:
            cause = q._shutdown_cause  # a new reference: allowed under the lock
            q._unlock()
            _raise_shutdown(cause)
        if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
            q._unlock()
            raise Empty
        if rec is not None:
            _link_task(q, rec)
        q._unlock()
        return _WAIT


cdef Py_ssize_t _put_or_link(Queue q, _AsyncWaiter rec, tuple batch, Py_ssize_t done,
                             int64_t deadline, Py_ssize_t level) except -1:
    """Put what fits of batch[done:] at *level*; return the new *done*. Unless all are in, raise or link *rec*."""
    cdef Py_ssize_t n = len(batch)
    cdef Py_ssize_t take
    cdef Waiter *chain = NULL
    cdef object failure = None
    cdef Ring *r
    cdef bint event = False
    q._lock()
    r = q._level_ring(level)
    if q._shutdown:
        failure = ShutDown
    else:
        take = q._room()
        if take > n - done:
            take = n - done
        if take > 0 and ring_reserve(r, take, q._bound) < 0:
            take = min(take, r.cap - r.count)  # out of memory: use what fits
            if take == 0:
                failure = MemoryError
        if take > 0:
            ring_extend(r, ringq_tuple_items(batch) + done, take)
            done += take
            q._added(level, take)
            q._puts += take
            if q._size() >= q._alert_up:
                event = _grew(q)
            chain = q._claim(&q._getters, take)
        if failure is None and done < n:
            if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
                failure = Full
            elif rec is not None:
                _link_task(q, rec)
    q._unlock()
    wake_chain(chain)
    if event:
        _deliver_watermark(q)
    if failure is not None:
        raise _with_put_count(failure(), done)  # for aput_many; aput ignores it
    return done


cdef bint _joined_or_link(Queue q, _AsyncWaiter rec, int64_t deadline) except -1:
    """True if no task is unfinished; else raise TimeoutError past *deadline*, or link *rec*."""
    q._lock()
    if q._unfinished == 0:
        q._unlock()
        return True
    if deadline != NO_DEADLINE and ringq_monotonic_ns() >= deadline:
        q._unlock()
        raise TimeoutError("ajoin() timed out with unfinished tasks")
    if rec is not None:
        _link_task(q, rec)
    q._unlock()
    return False
