# Included by _queue_c.pyx: the steps of Queue's async calls (aput, aget, aput_many,
# aget_many, ajoin). Each step runs one locked section and either completes the call
# or links the task's record (async_waiters.pxi) for the async def in queue.pxi to await.


cdef object _get_or_link(Queue q, _AsyncWaiter rec, Py_ssize_t max_items, int64_t deadline):
    """Take one item (max_items == 0) or a list of 1..max_items; else raise, or link *rec* and return _WAIT."""
    while True:
        q._lock()
        if q._size() > 0:
            if max_items == 0:
                return _take_one(q)
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


# -- the waits of the async calls (reached only when the first attempt must wait) ------

async def _aput_waits(Queue q, tuple batch, Py_ssize_t done, int64_t deadline, Py_ssize_t level,
                      token, bint many):
    """aput's and aput_many's waits: link, await, put what fits, until batch[done:] is in (or raise).

    *many*: a fired token's Cancelled carries put_count (aput_many), as its other exceptions do.
    """
    cdef Py_ssize_t n = len(batch)
    cdef _AsyncWaiter rec
    while done < n:
        if many:
            _check_token_put_many(token, done)
        else:
            _check_token(token)
        rec = _new_task_waiter(q, &q._putters)
        done = _put_or_link(q, rec, batch, done, deadline, level)
        if done < n:
            await _sleep(q, rec, deadline, token)
            done = _put_or_link(q, None, batch, done, deadline, level)


async def _aget_waits(Queue q, Py_ssize_t max_items, int64_t deadline, token):
    """aget's and aget_many's waits: link, await, take, until an item (or a list) comes (or raise)."""
    cdef _AsyncWaiter rec
    answer = _WAIT
    while answer is _WAIT:
        _check_token(token)
        rec = _new_task_waiter(q, &q._getters)
        answer = _get_or_link(q, rec, max_items, deadline)
        if answer is _WAIT:
            await _sleep(q, rec, deadline, token)
            answer = _get_or_link(q, None, max_items, deadline)
    return answer
