# Included by _queue_c.pyx: GC support (the tp_traverse/tp_clear slots of Queue and PriorityQueue).

# ---------------------------------------------------------------------------
# Garbage collection. The ring's references are invisible to Cython, so the
# type's traverse and clear slots are extended here: a queue that holds itself
# (directly or through its items) is then collected like any other cycle.
# ---------------------------------------------------------------------------

cdef traverseproc _cython_traverse = (<PyTypeObject *>Queue).tp_traverse


cdef int _queue_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    # The GC runs with the world stopped (or under the GIL), never inside a
    # locked section (rule 2), so the ring is consistent here without the lock.
    cdef Queue q = <Queue>o
    cdef Py_ssize_t level
    cdef int err
    if _cython_traverse != NULL:
        err = _cython_traverse(o, visit, arg)
        if err:
            return err
    for level in range(q._nlower + 1):
        err = _ring_traverse(q._level_ring(level), visit, arg)
        if err:
            return err
    # The async records the lists own (a record holds its queue: a cycle). In a fork
    # child the lists may still name the parent's waiters: they are not walked.
    if q._fork_gen != _fork_generation:
        return 0
    err = _visit_tasks(&q._getters, visit, arg)
    if err == 0:
        err = _visit_tasks(&q._putters, visit, arg)
    if err == 0:
        err = _visit_tasks(&q._joiners, visit, arg)
    return err


cdef int _ring_traverse(Ring *r, visitproc visit, void *arg) noexcept:
    cdef Py_ssize_t i = r.head
    cdef Py_ssize_t _
    cdef int err
    for _ in range(r.count):
        err = visit(r.slots[i], arg)
        if err:
            return err
        i += 1
        if i == r.cap:
            i = 0
    return 0


cdef int _visit_tasks(WaitList *wl, visitproc visit, void *arg) noexcept:
    cdef Waiter *w = wl.head
    cdef int err
    while w != NULL:
        if w.task != NULL:
            err = visit(w.task, arg)
            if err:
                return err
        w = w.next
    return 0


cdef int _queue_clear(PyObject *o) noexcept:
    # One level at a time: nothing else can reach a queue the GC is clearing.
    cdef Queue q = <Queue>o
    cdef Ring ring
    cdef Waiter *tasks = NULL
    cdef Py_ssize_t level
    for level in range(q._nlower + 1):
        q._lock()
        ring = ring_detach(q._level_ring(level))
        if level:
            q._lower_count -= ring.count
        q._unlock()
        ring_release(ring)  # outside the lock (rule 3)
    q._lock()
    # Async records of tasks that are garbage too (a closed loop's): the lists let go of them.
    if q._fork_gen == _fork_generation:
        tasks = _unlink_tasks(&q._getters, tasks)
        tasks = _unlink_tasks(&q._putters, tasks)
        tasks = _unlink_tasks(&q._joiners, tasks)
    callback = q._wm_callback       # moved out; dropped after unlocking (rule 3)
    cause = q._shutdown_cause
    q._wm_callback = None           # these stores decref the old values, which the locals keep alive
    q._shutdown_cause = None
    q._wm_high = 0
    _set_alerts(q)
    q._unlock()
    _drop_tasks(tasks)
    del callback, cause
    return 0


cdef Waiter *_unlink_tasks(WaitList *wl, Waiter *out) noexcept nogil:
    """Lock held. Unlink every async node of *wl* and push it on *out* (linked by next); thread nodes stay."""
    cdef Waiter *w = wl.head
    cdef Waiter *nxt
    while w != NULL:
        nxt = w.next
        if w.task != NULL:
            wl_remove(wl, w)
            w.next = out
            out = w
        w = nxt
    return out


cdef void _drop_tasks(Waiter *w) noexcept:
    """Drop the lists' references to unlinked async records; after unlocking (it may run code)."""
    cdef Waiter *nxt
    while w != NULL:
        nxt = w.next
        decref(w.task)
        w = nxt


cdef Waiter *_claim_next(_AsyncWaiter rec) noexcept:
    """Claim the waiter after *rec* in its list, to take over a wake-up *rec* cannot use."""
    cdef Queue q = <Queue>rec.queue
    cdef Waiter *w
    q._lock()
    w = q._claim(rec.wl, 1)
    q._unlock()
    return w


# PriorityQueue adds no object field, so Queue's slots serve it as they are. Its
# type was readied before these lines ran, with a copy of Queue's old slots: set both.
(<PyTypeObject *>Queue).tp_traverse = <traverseproc>_queue_traverse
(<PyTypeObject *>Queue).tp_clear = <inquiry>_queue_clear
(<PyTypeObject *>PriorityQueue).tp_traverse = <traverseproc>_queue_traverse
(<PyTypeObject *>PriorityQueue).tp_clear = <inquiry>_queue_clear

# Cython stores each cdef class's vtable in a "__pyx_vtable__" capsule in the type's dict,
# so help() lists it. That is left as it is: Cython has no switch to leave it out, and
# deleting it means writing into a type's dict, which free-threaded builds share between
# threads; a cosmetic line in help() is not worth that risk.


# Python code may subclass Queue and PriorityQueue (see "Subclassing" in docs/api.md).
# A Python subclass's own slots (its __dict__) are traversed and cleared by CPython's
# subtype_traverse/subtype_clear, which then call the slots set above.
