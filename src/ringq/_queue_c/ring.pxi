# Included by _queue_c.pyx: the ring buffer that stores a queue's items.

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
