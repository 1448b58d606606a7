# Included by _queue_c.pyx: statistics, watermarks and producer handles.

QueueStatistics = _QueueStatistics
# producer() on a queue that its last registered producer shut down: name the rule (as the twin).
_PRODUCERS_LEFT = (
    "cannot register a producer: the queue was shut down when its last registered producer "
    "closed. Register every producer before starting any of them (call q.producer() in the "
    "thread that starts them, and close it in the producer): a producer that finishes first "
    "shuts the queue down while the others are still starting"
)
_config_lock = threading.Lock()  # serialises one-time set-up of a queue's watermark delivery lock


cdef int _raise_shutdown(object cause) except -1:
    """Raise ShutDown, chained to *cause* when a producer passed one on."""
    if cause is not None:
        raise ShutDown from cause
    raise ShutDown


cdef tuple _watermark_sizes(object high, object low, object maxsize):
    """(high, low) as sizes: floats are fractions of a bounded maxsize, ints are sizes."""
    cdef double h, frac_low
    if isinstance(high, bool) or isinstance(low, bool):
        raise TypeError("high and low must be numbers")
    if isinstance(high, int) and isinstance(low, int):
        if not 0 <= low < high:
            raise ValueError("watermark sizes need 0 <= low < high")
        return min(high, PY_SSIZE_T_MAX), low
    try:
        h = high
        frac_low = low
    except TypeError:
        raise TypeError("high and low must be numbers") from None
    if not (0.0 <= frac_low < h <= 1.0):
        raise ValueError("watermark fractions need 0 <= low < high <= 1")
    if maxsize <= 0:
        raise ValueError("fractional watermarks need a bounded queue (maxsize > 0); give sizes as ints")
    hi = math.ceil(h * maxsize)
    lo = math.floor(frac_low * maxsize)
    if lo >= hi:
        lo = hi - 1
    return max(hi, 1), lo


@cython.final
@cython.auto_pickle(False)
cdef class Producer:
    """A registered producer of a queue (see Queue.producer()); close it once, or use it as a context manager."""

    cdef:
        readonly Queue queue
        bint _closed  # read and written by the thread that owns the handle

    def __cinit__(self, Queue queue):
        self.queue = queue

    @property
    def closed(self):
        return self._closed

    def close(self, exc=None):
        """Unregister; the last producer to close shuts the queue down.

        *exc* (an exception instance) is passed on: getters that find the queue shut
        down and drained raise ShutDown chained to the first one passed. Closing
        again does nothing.
        """
        if exc is not None and not isinstance(exc, BaseException):
            raise TypeError("exc must be an exception instance or None")
        if self._closed:
            return
        self._closed = True
        _producer_closed(self.queue, exc)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(exc)

    def __repr__(self):
        return f"<ringq.Producer {'closed' if self._closed else 'open'} of {self.queue!r}>"


cdef inline void _set_alerts(Queue q) noexcept:
    """Lock held. Recompute _alert_up and _alert_down from the high-water mark and the watermark."""
    cdef Py_ssize_t up = q._high_water + 1 if q._high_water < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX
    if q._wm_high > 0 and not q._wm_above and q._wm_high < up:
        up = q._wm_high
    q._alert_up = up
    q._alert_down = q._wm_low if (q._wm_high > 0 and q._wm_above) else -1


cdef bint _grew(Queue q) noexcept:
    """Lock held; the size reached _alert_up. True if the high watermark was just crossed."""
    cdef bint crossed = False
    if q._size() > q._high_water:
        q._high_water = q._size()
    if q._wm_high > 0 and not q._wm_above and q._size() >= q._wm_high:
        q._wm_above = True
        crossed = True
    _set_alerts(q)
    return crossed


cdef bint _shrank(Queue q) noexcept:
    """Lock held; the size fell to _alert_down. True if it just fell back to the low watermark."""
    if q._wm_high > 0 and q._wm_above and q._size() <= q._wm_low:
        q._wm_above = False
        _set_alerts(q)
        return True
    return False


cdef int _deliver_watermark(Queue q) except -1:
    """Call the watermark callback with the current state, if it differs from the last one delivered.

    Runs outside the state lock, in the thread whose put or get crossed a
    watermark. Deliveries are serialised by _wm_delivery and always report
    the state as it is now, so "high" and "low" strictly alternate and the
    last event delivered matches the queue; two crossings in quick succession
    by different threads may coalesce into none. A callback that raises is
    reported to sys.unraisablehook; the put or get that ran it has completed.
    """
    cdef bint above
    delivery = q._wm_delivery
    if delivery is None:
        return 0
    with delivery:
        q._lock()
        above = q._wm_above
        callback = q._wm_callback  # a new reference: allowed under the lock
        q._unlock()
        if callback is None or above == q._wm_delivered_above:
            return 0
        q._wm_delivered_above = above
        try:
            callback("high" if above else "low")
        except Exception:
            report_callback_error(callback, "ringq watermark callback")
    return 0


cdef int _producer_closed(Queue q, exc) except -1:
    """Producer.close()'s work: count the producer out, keep the first cause; the last one shuts *q* down."""
    cdef bint last
    q._lock()
    if exc is not None and q._shutdown_cause is None:
        q._shutdown_cause = exc  # replaces None, whose decref cannot run code
    q._producers -= 1
    last = q._producers == 0
    if last and not q._shutdown:
        q._producers_left = True
    q._unlock()
    if last:
        q.shutdown()
    return 0


cdef int _set_watermark(Queue q, object high, object low, object callback) except -1:
    """on_watermark()'s work: check the arguments, then swap the watermark in under the lock."""
    cdef Py_ssize_t hi = 0, lo = 0
    if callback is not None:
        if not callable(callback):
            raise TypeError("callback must be callable or None")
        from ._asyncfn import refuse_async  # here, not at import: it loads inspect
        refuse_async(callback, "Queue.on_watermark(callback=)",
                     "The callback runs inside the put or get that crossed the mark, which cannot "
                     "await it: pass a plain function (in a coroutine program it can set or clear "
                     "an asyncio.Event).")
        hi, lo = _watermark_sizes(high, low, q.maxsize)
        with _config_lock:
            if q._wm_delivery is None:
                q._wm_delivery = threading.RLock()
    q._lock()
    old = q._wm_callback   # released after unlocking (rule 3)
    q._wm_callback = callback
    q._wm_high = hi
    q._wm_low = lo
    q._wm_above = False
    _set_alerts(q)
    q._unlock()
    q._wm_delivered_above = False
    del old
    return 0


cdef object _statistics(Queue q):
    """statistics()'s work: one locked snapshot of the counters, as a QueueStatistics."""
    cdef Py_ssize_t size, high_water, putters, getters
    cdef int64_t puts, gets
    q._lock()
    size = q._size()
    high_water = q._high_water
    puts = q._puts
    gets = q._gets
    if q._fork_gen != _fork_generation:
        q._forget_waiters_after_fork()
    putters = wl_length(&q._putters)
    getters = wl_length(&q._getters)
    maxsize = q._maxsize
    q._unlock()
    return QueueStatistics(size, maxsize, high_water, puts, gets, putters, getters)


cdef Producer _register_producer(Queue q):
    """producer()'s work: count one more registered producer, or raise ShutDown."""
    cdef bint left
    q._lock()
    if q._shutdown:
        left = q._producers_left
        q._unlock()
        if left:
            raise ShutDown(_PRODUCERS_LEFT)
        raise ShutDown("cannot register a producer: the queue is shut down")
    q._producers += 1
    q._unlock()
    return Producer(q)
