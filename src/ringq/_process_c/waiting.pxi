# Included by _process_c.pyx: taking the shared mutex and waiting on the futexes.

# Every wait is a slice of at most SLICE_NS with the GIL released, with
# PyErr_CheckSignals() between slices, so Ctrl-C interrupts it; the mutex is
# tried with the GIL held first, and waited for only without it.

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EBUSY, ETIMEDOUT
from libc.stdint cimport int64_t, uint64_t

import os

cdef object _monotonic
from time import monotonic as _monotonic


cdef int pq_lock(ProcessQueue q) except -1:
    """Take the shared mutex: tried with the GIL, else waited for without it, in slices (Ctrl-C)."""
    cdef int r = rq_trylock(q._h)
    while r != 0:
        if r != EBUSY and r != ETIMEDOUT:
            raise OSError(r, f"cannot lock the ProcessQueue's shared mutex: {os.strerror(r)}")
        with nogil:
            r = rq_lock_slice(q._h, SLICE_NS)
        if r == ETIMEDOUT:
            PyErr_CheckSignals()
    return 0


cdef int pq_wait(ProcessQueue q, int which, double deadline) except -1:
    """Wait one slice (lock held on entry, not on return); 0 once the deadline passed."""
    cdef int64_t ns = SLICE_NS
    cdef double left
    cdef rq_header *h = q._h
    if deadline >= 0:
        left = deadline - _monotonic()
        if left <= 0:
            rq_unlock(h)
            return 0
        if left * 1e9 < ns:
            ns = <int64_t>(left * 1e9) + 1
    with nogil:
        if which == 0:
            rq_wait(h, &h.seq_get, &h.w_get, ns)
        elif which == 1:
            rq_wait(h, &h.seq_put, &h.w_put, ns)
        else:
            rq_wait(h, &h.seq_join, &h.w_join, ns)
    PyErr_CheckSignals()
    if q._closed:
        raise ValueError("this ProcessQueue handle was closed while a call waited on it")
    return 1


cdef bint pq_retry_put(ProcessQueue q, rq_item *it, uint64_t n) noexcept:
    """Lock held: True (lock released) if the first item fits now or the queue was shut down."""
    cdef const rq_state *st = rq_live(q._h)
    if st.shutdown or ((st.maxsize <= 0 or st.count < <uint64_t>st.maxsize) and st.used + it.size <= q._cap):
        rq_unlock(q._h)
        return True
    return False


cdef void pq_wake_all_locked(ProcessQueue q) noexcept:
    q._h.seq_get += 1
    q._h.seq_put += 1
    q._h.seq_join += 1


cdef void pq_wake_all(ProcessQueue q) noexcept:
    rq_futex_wake(&q._h.seq_get, INT_MAX)
    rq_futex_wake(&q._h.seq_put, INT_MAX)
    rq_futex_wake(&q._h.seq_join, INT_MAX)
