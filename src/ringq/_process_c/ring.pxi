# Included by _process_c.pyx: copying records into the ring and out of it.

# Each call takes the mutex, copies under it (without the GIL when the copy is
# long) and releases it before it decodes or wakes anybody; the copies themselves
# are rq_put_locked / rq_take_locked / rq_take_big in _shm.h.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free

from ._errors import Empty


cdef uint64_t pq_put_items(ProcessQueue q, rq_item *items, uint64_t n, int all_or_nothing, uint64_t nbytes,
                           int *why) except? 0xFFFFFFFFFFFFFFFF:
    cdef int wake = 0
    cdef uint64_t done
    cdef rq_header *h = q._h
    if nbytes > NOGIL_COPY:
        pq_lock(q)
        with nogil:  # a long copy: other threads run meanwhile; the GIL is taken back after unlocking
            done = rq_put_locked(h, items, n, all_or_nothing, why, &wake)
            rq_unlock(h)
    else:
        pq_lock(q)
        done = rq_put_locked(h, items, n, all_or_nothing, why, &wake)
        rq_unlock(h)
    if wake:
        rq_futex_wake(&h.seq_get, wake)
    return done


cdef object pq_take(ProcessQueue q, uint64_t max_items, bint block, double deadline, bint single):
    """get_many(max_items) (a list), or get() (the item) when *single*."""
    cdef rq_header *h = q._h
    cdef char *buf = NULL
    cdef uint64_t bufcap = 0, nbytes = 0, need = 0, k, i, pos, payload
    cdef uint32_t kind = 0, nbuf = 0
    cdef int why = 0, wake = 0, spun = 0
    cdef list out
    try:
        while True:
            pq_lock(q)
            k = rq_take_locked(h, max_items, &buf, &bufcap, BIG, &nbytes, &need, &kind, &why, &wake)
            if why == RQ_BIG:
                rq_unlock(h)
                item = pq_take_big(q, need, kind, block, deadline)
                return item if single else [item]
            if k:
                rq_unlock(h)
                if wake:
                    rq_futex_wake(&h.seq_put, wake)
                if single:
                    return pq_decode(q, <uint32_t>_u32_le(buf + 8), <uint32_t>_u32_le(buf + 12),
                                     buf + RQ_REC, _u64_le(buf))
                out = []
                pos = 0
                for i in range(k):
                    payload = _u64_le(buf + pos)
                    kind = <uint32_t>_u32_le(buf + pos + 8)
                    nbuf = <uint32_t>_u32_le(buf + pos + 12)
                    out.append(pq_decode(q, kind, nbuf, buf + pos + RQ_REC, payload))
                    pos += RQ_REC + rq_pad8(payload)
                return out
            if why == RQ_NOMEM:
                rq_unlock(h)
                raise MemoryError()
            if why == RQ_SHUT:
                rq_unlock(h)
                raise q._shutdown_error()
            if not block:
                rq_unlock(h)
                raise Empty
            if not spun:
                spun = 1
                rq_unlock(h)
                with nogil:
                    rq_spin_items(h, SPIN)
                continue
            if not pq_wait(q, 0, deadline):
                raise Empty
    finally:
        free(buf)


cdef object pq_take_big(ProcessQueue q, uint64_t payload, uint32_t kind, bint block, double deadline):
    """The oldest record is big: copy its payload straight into its final object."""
    cdef rq_header *h = q._h
    cdef uint32_t nbuf = 0
    cdef int why = 0, wake = 0, got = 0
    cdef char *dst
    if kind == RQ_KIND_RAW:
        target = PyBytes_FromStringAndSize(NULL, payload)  # not seen by anyone until filled
        dst = PyBytes_AS_STRING(target)
    else:
        target = PyByteArray_FromStringAndSize(NULL, payload)
        dst = PyByteArray_AS_STRING(target)
    pq_lock(q)
    with nogil:
        got = rq_take_big(h, dst, payload, &kind, &nbuf, &why, &wake)
        rq_unlock(h)
    if wake:
        rq_futex_wake(&h.seq_put, wake)
    if not got:
        # The oldest record changed (another consumer took it) or is gone: start again.
        return pq_take(q, 1, block, deadline, True)
    if kind == RQ_KIND_RAW:
        return target
    if kind == RQ_KIND_CUSTOM:
        return q._uloads(target)
    if nbuf == 0:
        return _loads(target)
    return pq_decode_oob(q, nbuf, target)
